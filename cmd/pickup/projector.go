// The projector role: the views, the retry decider and the lease watchdog,
// and the backlog figures.

package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/deciders"
	"github.com/pickup-ipfs/pickup/projections"
)

// runProjector runs the projector role, top to bottom: flags; the process
// (logger, registry, stores: b.open); the runner, the deciders and the
// metrics (addProjector) and the notifier (addNotifier); the run group
// (p.serve).
func runProjector(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "projector")
	b := addBaseFlags(f, "127.0.0.1:9466")
	pf := addProjectorFlags(f)
	nf := addNotifyFlags(f)
	if err := f.parse(args); err != nil {
		return err
	}
	p, err := b.open(ctx, e, "projector")
	if err != nil {
		return err
	}
	if err := p.addProjector(ctx, pf, b); err != nil {
		p.close()
		return err
	}
	if err := p.addNotifier(ctx, nf, *b.eventlog); err != nil {
		p.close()
		return err
	}
	return p.serve(ctx, b)
}

type projectorFlags struct {
	maxAttempts         *int
	baseDelay, maxDelay *time.Duration
	queueTimeout        *time.Duration
	metricsEvery        *time.Duration
	viewsBatch          *int
}

func addProjectorFlags(f *flags) *projectorFlags {
	return &projectorFlags{
		maxAttempts:  f.integer("max-attempts", pin.DefaultRetryPolicy().MaxAttempts, "failed attempts before the dead letter", "PICKUP_MAX_ATTEMPTS"),
		baseDelay:    f.duration("retry-base-delay", pin.DefaultRetryPolicy().BaseDelay, "first retry's wait, doubled each time", []string{"PICKUP_RETRY_BASE_DELAY"}),
		maxDelay:     f.duration("retry-max-delay", pin.DefaultRetryPolicy().MaxDelay, "longest wait between attempts", []string{"PICKUP_RETRY_MAX_DELAY"}),
		queueTimeout: f.duration("queue-timeout", deciders.DefaultQueueTimeout, "a due pin that no fetcher claims within this fails (and is retried)", []string{"PICKUP_QUEUE_TIMEOUT"}),
		metricsEvery: f.duration("metrics-interval", time.Minute, "time between updates of the backlog figures", []string{"PICKUP_METRICS_INTERVAL"}),
		viewsBatch:   f.integer("views-batch", projections.DefaultBatch, "most events applied to the views in one transaction while catching up (two batches are in memory at once)", "PICKUP_VIEWS_BATCH"),
	}
}

// addProjector adds the runner that keeps the views, the retry decider,
// the lease watchdog and the backlog metrics.
func (p *proc) addProjector(ctx context.Context, pf *projectorFlags, b *baseFlags) error {
	policy := pin.RetryPolicy{MaxAttempts: *pf.maxAttempts, BaseDelay: *pf.baseDelay, MaxDelay: *pf.maxDelay, Jitter: pin.DefaultRetryPolicy().Jitter}
	if err := policy.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *pf.viewsBatch < 1 {
		return fmt.Errorf("%w: --views-batch %d: want at least 1", errUsage, *pf.viewsBatch)
	}
	runner, err := projections.NewRunner(projections.RunnerConfig{Batch: *pf.viewsBatch}, projections.RunnerDeps{Log: p.logAs("projections"), Views: p.views, Logger: p.logger})
	if err != nil {
		return err
	}
	decider, err := deciders.NewDecider(deciders.DeciderConfig{Policy: policy}, p.views, deciders.Deps{Log: p.log, Logger: p.logger})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	watchdog, err := deciders.NewWatchdog(deciders.WatchdogConfig{QueueTimeout: *pf.queueTimeout}, p.views, deciders.Deps{Log: p.log, Logger: p.logger})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	mc := projections.MetricsConfig{Interval: *pf.metricsEvery, Registerer: p.reg, Deployment: *b.deployment}
	if *b.emf {
		mc.EMF = p.stdout
	}
	metrics, err := projections.NewMetrics(mc, projections.MetricsDeps{Views: p.views, Logger: p.logger})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// Ready once the views have caught up with the log as it was at start
	// (or, if the log did not answer then, when the check first read it):
	// a log that hiccups at start is no reason to exit.
	var mu sync.Mutex
	var head eventlog.Position
	known := false
	readHead := func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if known {
			return nil
		}
		var err error
		head, err = p.log.Head(ctx)
		known = err == nil
		return err
	}
	if err := readHead(ctx); err != nil {
		p.logger.Warn("reading the log's head", "err", err)
	}
	p.health.add("views caught up", func(ctx context.Context) error {
		if err := readHead(ctx); err != nil {
			return err
		}
		cp, err := p.views.Checkpoint(ctx)
		if err == nil && cp < head {
			err = fmt.Errorf("views at position %d of %d", cp, head)
		}
		return err
	})
	p.actor("projections", runner.Run)
	p.actor("decider", decider.Run)
	p.actor("watchdog", watchdog.Run)
	p.actor("metrics", metrics.Run)
	return nil
}
