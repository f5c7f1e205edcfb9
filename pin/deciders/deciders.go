// Package deciders holds the three actors that decide what nobody asks
// for: the retry decider, which answers every failed attempt with a retry
// (with exponential backoff and jitter) or the dead letter; the lease
// watchdog, which fails attempts whose lease ran out with no word from
// their fetcher, and due pins that no fetcher claimed within the queue
// timeout; and the garbage collector (gc.go), which deletes the carpark's
// objects of a root no pin has held for the grace period. They append to
// the log, so they are not projections: each finds its candidates in the
// views (which may lag), then decides on the pin's or the root's stream
// through pin/pinlog, the one write path (which reads the stream, the
// source of truth), with package pin's decisions.
//
// pinlog's event-id rule makes a decision taken twice (by a replay, two
// processes, or a retry after a lost answer) be recorded once, and a
// decision on a stale state be refused and taken again on the new one.
//
// # The bound on how long a pin takes
//
// So no pin stays queued forever. With the watchdog and the decider running,
// a request reaches pinned or failed within
//
//	MaxAttempts × (QueueTimeout + FetchTimeout + Lease + 2 × WatchdogPeriod + DeciderPeriod) + RetryPolicy.MaxTotalDelay()
//
// (BoundConfig.Bound): in the worst attempt a fetcher claims the pin just
// before the watchdog's first pass after the queue timeout, renews its lease
// until its fetch timeout and vanishes; the next pass fails it and the
// decider decides. With the defaults (PICKUP_MAX_ATTEMPTS 5,
// PICKUP_RETRY_BASE_DELAY 30s, PICKUP_RETRY_MAX_DELAY 1h, jitter 20%,
// PICKUP_QUEUE_TIMEOUT 1h, PICKUP_FETCH_TIMEOUT 4h, PICKUP_LEASE 30s, a 5s
// watchdog and a 1s decider) that is 5 × 5h0m41s + 9m = 25h12m25s;
// TestNoPinQueuedForever drives a pin through that worst case on a clock the
// test holds, and it fails for good after 25h10m31s. The bound assumes
// fetchers stop at their fetch timeout; it does not count work handed back
// by stopping fetchers (which spends no attempt), a tenant's requeue of a
// failed pin, or the views' lag behind the log (milliseconds).
package deciders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// Defaults of the actors' settings.
const (
	DefaultDeciderPeriod  = time.Second
	DefaultWatchdogPeriod = 5 * time.Second
	DefaultQueueTimeout   = time.Hour
	DefaultBatch          = 500
)

// Config is what the decider and the watchdog share.
type Config struct {
	// Period is the time between passes over the views. Defaults:
	// DefaultDeciderPeriod, DefaultWatchdogPeriod.
	Period time.Duration
	// Batch is the most candidates taken from the views per pass. Default
	// DefaultBatch.
	Batch int
	// Actor is recorded as the author of each decision. Defaults:
	// "decider", "watchdog".
	Actor string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults(period time.Duration, actor string) {
	if c.Period == 0 {
		c.Period = period
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Actor == "" {
		c.Actor = actor
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c Config) validate(what string) error {
	switch {
	case c.Period < 0:
		return fmt.Errorf("%s: negative period %v", what, c.Period)
	case c.Batch < 0:
		return fmt.Errorf("%s: negative batch %d", what, c.Batch)
	}
	return nil
}

// Deps are what an actor works with.
type Deps struct {
	// Log is the event log, written through pin/pinlog.
	Log pinlog.Log
	// Logger receives the actor's logs; nil discards them.
	Logger *slog.Logger
}

// actor is what the decider and the watchdog share: a pass over candidates
// every period, each decided on through the write path.
type actor struct {
	cfg    Config
	pins   *pinlog.Committer
	logger *slog.Logger
}

func newActor(cfg Config, d Deps, component string) (actor, error) {
	if d.Log == nil {
		return actor{}, fmt.Errorf("%s: no event log", component)
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return actor{cfg: cfg, pins: pinlog.New(d.Log, cfg.Now), logger: logger.With("component", component)}, nil
}

// run calls tick every period until ctx ends, logging its failures.
func (a actor) run(ctx context.Context, tick func(context.Context, time.Time) (int, error)) error {
	t := time.NewTicker(a.cfg.Period)
	defer t.Stop()
	for {
		if _, err := tick(ctx, a.cfg.Now()); err != nil && ctx.Err() == nil {
			a.logger.Error("pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// pass decides on every candidate and returns how many decisions it
// appended, and the first error.
func (a actor) pass(ctx context.Context, cands []uuid.UUID, decide func(context.Context, uuid.UUID) (bool, error)) (int, error) {
	n := 0
	var first error
	for _, id := range cands {
		ok, err := decide(ctx, id)
		if err != nil {
			a.logger.Error("decision failed", "pin_request_id", id, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		if ok {
			n++
		}
	}
	return n, first
}

// commit decides on one pin as actor, at time now.
func (a actor) commit(ctx context.Context, id uuid.UUID, now time.Time, decide func(pin.State) (pin.Payload, uuid.UUID, error)) (pin.Payload, error) {
	c, err := a.pins.Commit(ctx, pinlog.Commit{RequestID: id, Actor: a.cfg.Actor, Decide: func(s pin.State) (pinlog.Decision, error) {
		p, cause, err := decide(s)
		return pinlog.Decision{Payload: p, Cause: cause, At: now}, err
	}})
	return c.Appended, err
}

// FailedLister is the view the decider reads its candidates from.
type FailedLister interface {
	// AwaitingDecision returns up to limit pins whose last attempt failed
	// and awaits the retry decision.
	AwaitingDecision(ctx context.Context, limit int) ([]uuid.UUID, error)
}

// DeciderConfig configures the retry decider.
type DeciderConfig struct {
	Config
	// Policy is how failures are retried. Default pin.DefaultRetryPolicy().
	Policy pin.RetryPolicy
}

// Validate reports a configuration that cannot work.
func (c DeciderConfig) Validate() error {
	if err := c.Config.validate("decider"); err != nil {
		return err
	}
	if c.Policy != (pin.RetryPolicy{}) {
		return c.Policy.Validate()
	}
	return nil
}

// Decider is the retry and dead-letter decider: every failed attempt gets a
// RetryScheduled (with exponential backoff and jitter) or, when it was
// permanent or the attempts are spent, a DeadLettered.
type Decider struct {
	actor
	views  FailedLister
	policy pin.RetryPolicy
}

// NewDecider returns a decider reading candidates from views and deciding on
// the log.
func NewDecider(cfg DeciderConfig, views FailedLister, d Deps) (*Decider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults(DefaultDeciderPeriod, "decider")
	if cfg.Policy == (pin.RetryPolicy{}) {
		cfg.Policy = pin.DefaultRetryPolicy()
	}
	if views == nil {
		return nil, errors.New("decider: no views")
	}
	a, err := newActor(cfg.Config, d, "decider")
	if err != nil {
		return nil, err
	}
	return &Decider{actor: a, views: views, policy: cfg.Policy}, nil
}

// Run decides every Period until ctx ends, and returns ctx's error.
func (d *Decider) Run(ctx context.Context) error { return d.run(ctx, d.Tick) }

// Tick makes one pass at time now: a decision for every pin the views show
// awaiting one. It returns how many decisions it appended.
func (d *Decider) Tick(ctx context.Context, now time.Time) (int, error) {
	cands, err := d.views.AwaitingDecision(ctx, d.cfg.Batch)
	if err != nil {
		return 0, err
	}
	return d.pass(ctx, cands, func(ctx context.Context, id uuid.UUID) (bool, error) { return d.Decide(ctx, id, now) })
}

// Decide takes the retry decision on one pin, if it awaits one, and
// reports whether it decided.
func (d *Decider) Decide(ctx context.Context, requestID uuid.UUID, now time.Time) (bool, error) {
	p, err := d.commit(ctx, requestID, now, func(s pin.State) (pin.Payload, uuid.UUID, error) {
		p, err := s.DecideRetry(d.policy)
		if errors.Is(err, pin.ErrNotFailed) || errors.Is(err, pin.ErrRemoved) || errors.Is(err, pin.ErrNotFound) {
			return nil, uuid.Nil, nil // decided already, or nothing to decide
		}
		if err != nil {
			return nil, uuid.Nil, err
		}
		return p, s.LastFailure.EventID, nil
	})
	switch p := p.(type) {
	case pin.RetryScheduled:
		d.logger.Info("retry scheduled", "pin_request_id", requestID, "failures", p.Failures, "not_before", p.NotBefore)
	case pin.DeadLettered:
		d.logger.Info("dead-lettered", "pin_request_id", requestID, "failures", p.Failures, "reason", p.Reason)
	}
	return p != nil, err
}

// OverdueLister is the view the watchdog reads its candidates from.
type OverdueLister interface {
	// Overdue returns up to limit pins whose lease ran out before now, or
	// that have been due for longer than queueTimeout (0: never).
	Overdue(ctx context.Context, now time.Time, queueTimeout time.Duration, limit int) ([]uuid.UUID, error)
}

// WatchdogConfig configures the lease watchdog.
type WatchdogConfig struct {
	Config
	// QueueTimeout fails a due pin that no fetcher claims within it
	// (PICKUP_QUEUE_TIMEOUT). Default DefaultQueueTimeout; negative means
	// never.
	QueueTimeout time.Duration
}

// Validate reports a configuration that cannot work.
func (c WatchdogConfig) Validate() error { return c.Config.validate("watchdog") }

// Watchdog fails attempts whose lease ran out with no word from their
// fetcher (lease_expired), and due pins that no fetcher claimed within the
// queue timeout (queue_timeout). Both are transient: the decider retries
// them, so that no pin waits forever.
type Watchdog struct {
	actor
	views        OverdueLister
	queueTimeout time.Duration
}

// NewWatchdog returns a watchdog reading candidates from views and deciding
// on the log.
func NewWatchdog(cfg WatchdogConfig, views OverdueLister, d Deps) (*Watchdog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults(DefaultWatchdogPeriod, "watchdog")
	switch {
	case cfg.QueueTimeout == 0:
		cfg.QueueTimeout = DefaultQueueTimeout
	case cfg.QueueTimeout < 0:
		cfg.QueueTimeout = 0
	}
	if views == nil {
		return nil, errors.New("watchdog: no views")
	}
	a, err := newActor(cfg.Config, d, "watchdog")
	if err != nil {
		return nil, err
	}
	return &Watchdog{actor: a, views: views, queueTimeout: cfg.QueueTimeout}, nil
}

// Run checks every Period until ctx ends, and returns ctx's error.
func (w *Watchdog) Run(ctx context.Context) error { return w.run(ctx, w.Tick) }

// Tick makes one pass at time now: every pin the views show past its
// deadline is expired. It returns how many pins it failed.
func (w *Watchdog) Tick(ctx context.Context, now time.Time) (int, error) {
	cands, err := w.views.Overdue(ctx, now, w.queueTimeout, w.cfg.Batch)
	if err != nil {
		return 0, err
	}
	return w.pass(ctx, cands, func(ctx context.Context, id uuid.UUID) (bool, error) { return w.Expire(ctx, id, now) })
}

// Expire fails the pin if its deadline passed before now, and reports
// whether it did.
func (w *Watchdog) Expire(ctx context.Context, requestID uuid.UUID, now time.Time) (bool, error) {
	p, err := w.commit(ctx, requestID, now, func(s pin.State) (pin.Payload, uuid.UUID, error) {
		f, err := s.Expire(now, w.queueTimeout)
		if errors.Is(err, pin.ErrNoDeadline) || errors.Is(err, pin.ErrRemoved) || errors.Is(err, pin.ErrNotFound) {
			return nil, uuid.Nil, nil // it moved on in time
		}
		if err != nil {
			return nil, uuid.Nil, err
		}
		return f, uuid.Nil, nil
	})
	if f, ok := p.(pin.Failed); ok {
		w.logger.Info("expired", "pin_request_id", requestID, "attempt", f.Attempt, "reason", f.Reason)
	}
	return p != nil, err
}
