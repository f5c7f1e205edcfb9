// The projector role: the views, the retry decider, the lease watchdog and
// the garbage collector of released roots, and the backlog figures.

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
	gcGrace, gcPeriod   *time.Duration
	carpark             *carparkFlags
}

func addProjectorFlags(f *flags) *projectorFlags {
	return &projectorFlags{
		maxAttempts:  f.integer("max-attempts", pin.DefaultRetryPolicy().MaxAttempts, "failed attempts before the dead letter", "PICKUP_MAX_ATTEMPTS"),
		baseDelay:    f.duration("retry-base-delay", pin.DefaultRetryPolicy().BaseDelay, "first retry's wait, doubled each time", []string{"PICKUP_RETRY_BASE_DELAY"}),
		maxDelay:     f.duration("retry-max-delay", pin.DefaultRetryPolicy().MaxDelay, "longest wait between attempts", []string{"PICKUP_RETRY_MAX_DELAY"}),
		queueTimeout: f.duration("queue-timeout", deciders.DefaultQueueTimeout, "a due pin that no fetcher claims within this fails (and is retried)", []string{"PICKUP_QUEUE_TIMEOUT"}),
		metricsEvery: f.duration("metrics-interval", time.Minute, "time between updates of the backlog figures", []string{"PICKUP_METRICS_INTERVAL"}),
		viewsBatch:   f.integer("views-batch", projections.DefaultBatch, "most events applied to the views in one transaction while catching up (two batches are in memory at once)", "PICKUP_VIEWS_BATCH"),
		gcGrace: f.duration("gc-grace", deciders.DefaultGCGrace, "how long a root no pin holds keeps its CAR, index and mapping before the garbage collector deletes them; "+
			"a new pin of the root within it cancels the deletion (default a day: a pin removed or replaced by mistake and pinned again is served at once, not fetched again, for a day's storage of what was released)", []string{"PICKUP_GC_GRACE"}),
		gcPeriod: f.duration("gc-period", deciders.DefaultGCPeriod, "time between the garbage collector's passes (a released root is deleted within the grace period and one period); 0 turns the collector off", []string{"PICKUP_GC_PERIOD"}),
		carpark:  f.carparkFlags(),
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
	gc, err := p.newGC(ctx, pf)
	if err != nil {
		return err
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
	if gc != nil {
		p.actor("gc", gc.Run)
	}
	p.actor("metrics", metrics.Run)
	return nil
}

// newGC returns the garbage collector of released roots, deleting from the
// carpark the flags name (the directory unless a bucket is set: in pickup
// run, the fetcher's), or nil when --gc-period is 0.
func (p *proc) newGC(ctx context.Context, pf *projectorFlags) (*deciders.GC, error) {
	switch {
	case *pf.gcPeriod == 0:
		p.logger.Info("the garbage collector is off (--gc-period 0): released roots are kept")
		return nil, nil
	case *pf.gcPeriod < 0:
		return nil, fmt.Errorf("%w: --gc-period %v: want 0 (off) or more", errUsage, *pf.gcPeriod)
	case *pf.gcGrace <= 0:
		return nil, fmt.Errorf("%w: --gc-grace %v: want more than 0", errUsage, *pf.gcGrace)
	}
	roots, ok := rootViewsOf(p.views)
	if !ok {
		return nil, fmt.Errorf("the views (%T) keep no roots view", p.views)
	}
	carpark, err := pf.carpark.open(ctx, p)
	if err != nil {
		return nil, err
	}
	if *pf.carpark.carpark == "" {
		p.logger.Info("the garbage collector deletes from the carpark directory", "dir", *pf.carpark.carDir)
	}
	// The block-location lookup's entries go first, the carpark's objects
	// last, so that no lookup entry outlives its CAR. Hook: put the lookup's
	// removal (serve/locate's Store.Remove, behind a deciders.Deleter) in
	// front of carpark once the serving role's lookup is wired here.
	deleter := deciders.DeleteAll{carpark}
	gc, err := deciders.NewGC(deciders.GCConfig{Config: deciders.Config{Period: *pf.gcPeriod}, Grace: *pf.gcGrace}, roots, deleter,
		deciders.GCDeps{Log: p.log, Logger: p.logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return gc, nil
}

// rootViewsOf returns the roots view of the views, through the guard of
// views that may be building (a GC's question needs no guard: it waits
// for the views to reach the log, and a root it does not find is kept).
func rootViewsOf(v viewStore) (deciders.RootViews, bool) {
	if b, ok := v.(*buildingViews); ok {
		v = b.viewStore
	}
	r, ok := v.(deciders.RootViews)
	return r, ok
}
