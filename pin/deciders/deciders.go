package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
)

// The retry decider and the lease watchdog decide what nobody asks for.
// Both find candidates in the views, then read the pin's stream (the source
// of truth: the views may lag), fold it, decide with package pin's
// functions, and append at the revision they read, with an event id derived
// from the state decided on. So a decision taken twice (by a replay, two
// processes, or a retry after a lost answer) is recorded once, and a
// decision on a stale state is refused and taken again on the new one.

// streamReader reads a stream of the event log.
type streamReader interface {
	ReadStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, limit int) ([]eventlog.Event, error)
}

// pinLog is the event log as the decider and the watchdog use it.
type pinLog interface {
	streamReader
	Append(ctx context.Context, stream string, expected eventlog.Expected, events ...eventlog.Proposed) (eventlog.AppendResult, error)
}

// ReadPin reads a pin's stream and folds it into its state.
func ReadPin(ctx context.Context, log streamReader, requestID uuid.UUID) (pin.State, []eventlog.Event, error) {
	stream := pin.Stream(requestID)
	var all []eventlog.Event
	for from := uint64(0); ; {
		evs, err := log.ReadStream(ctx, stream, from, eventlog.Forwards, 1000)
		if err != nil {
			return pin.State{}, nil, fmt.Errorf("read %s: %w", stream, err)
		}
		all = append(all, evs...)
		if len(evs) < 1000 {
			break
		}
		from = evs[len(evs)-1].Revision + 1
	}
	s, err := pin.Fold(all)
	if err != nil {
		return s, all, fmt.Errorf("fold %s: %w", stream, err)
	}
	return s, all, nil
}

// maxRaces is how many times a decision is taken again after losing a race
// for the pin's revision, before giving up until the next pass.
const maxRaces = 5

// decide reads the pin, lets decision choose what to append (nil for
// nothing), and appends it at the revision read; a refused revision means
// the pin moved: read and decide again.
func decide(ctx context.Context, log pinLog, requestID uuid.UUID, decision func(pin.State) (pin.Payload, eventlog.Metadata, string, error)) (pin.Payload, error) {
	stream := pin.Stream(requestID)
	for range maxRaces {
		s, _, err := ReadPin(ctx, log, requestID)
		if err != nil {
			return nil, err
		}
		p, meta, name, err := decision(s)
		if err != nil || p == nil {
			return nil, err
		}
		meta.CorrelationID = requestID
		ev, err := pin.Proposal(p, s.DecisionID(name), meta)
		if err != nil {
			return nil, err
		}
		_, err = log.Append(ctx, stream, s.Expected(), ev)
		if eventlog.IsWrongRevision(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("append %s to %s: %w", p.EventType(), stream, err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("decide on %s: the pin kept moving; trying again next pass", stream)
}

// ActorConfig is what the decider and the watchdog share.
type ActorConfig struct {
	// Period is the time between passes over the views. Defaults: 1s for
	// the decider, 5s for the watchdog.
	Period time.Duration
	// Batch is the most candidates taken from the views per pass. Default
	// 500.
	Batch int
	// Actor is recorded as the author of each decision. Defaults:
	// "decider", "watchdog".
	Actor string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the actor's logs. Default slog.Default().
	Logger *slog.Logger
}

func (c *ActorConfig) setDefaults(period time.Duration, actor string) {
	if c.Period == 0 {
		c.Period = period
	}
	if c.Batch == 0 {
		c.Batch = 500
	}
	if c.Actor == "" {
		c.Actor = actor
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c ActorConfig) validate(what string) error {
	switch {
	case c.Period < 0:
		return fmt.Errorf("%s: negative period %v", what, c.Period)
	case c.Batch < 0:
		return fmt.Errorf("%s: negative batch %d", what, c.Batch)
	}
	return nil
}

// runEvery calls tick every period until ctx ends, logging its failures.
func runEvery(ctx context.Context, cfg ActorConfig, logger *slog.Logger, tick func(context.Context, time.Time) (int, error)) error {
	t := time.NewTicker(cfg.Period)
	defer t.Stop()
	for {
		if _, err := tick(ctx, cfg.Now()); err != nil && ctx.Err() == nil {
			logger.Error("pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// failedLister is the view the decider reads its candidates from.
type failedLister interface {
	AwaitingDecision(ctx context.Context, limit int) ([]PinView, error)
}

// DeciderConfig configures the retry decider.
type DeciderConfig struct {
	ActorConfig
	// Policy is how failures are retried. Default pin.DefaultRetryPolicy.
	Policy pin.RetryPolicy
}

// Validate reports a configuration that cannot work.
func (c DeciderConfig) Validate() error {
	if err := c.ActorConfig.validate("decider"); err != nil {
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
	log    pinLog
	views  failedLister
	cfg    DeciderConfig
	logger *slog.Logger
}

// NewDecider returns a decider reading candidates from views and deciding on
// the log.
func NewDecider(log pinLog, views failedLister, cfg DeciderConfig) (*Decider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults(time.Second, "decider")
	if cfg.Policy == (pin.RetryPolicy{}) {
		cfg.Policy = pin.DefaultRetryPolicy
	}
	return &Decider{log: log, views: views, cfg: cfg, logger: cfg.Logger.With("component", "decider")}, nil
}

// Run decides every Period until ctx ends, and returns ctx's error.
func (d *Decider) Run(ctx context.Context) error {
	return runEvery(ctx, d.cfg.ActorConfig, d.logger, d.Tick)
}

// Tick makes one pass at time now: a decision for every pin the views show
// awaiting one. It returns how many decisions it appended.
func (d *Decider) Tick(ctx context.Context, now time.Time) (int, error) {
	cands, err := d.views.AwaitingDecision(ctx, d.cfg.Batch)
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	for _, c := range cands {
		ok, err := d.Decide(ctx, c.RequestID, now)
		if err != nil {
			d.logger.Error("retry decision failed", "pin_request_id", c.RequestID, "err", err)
			first = cmpOr(first, err)
			continue
		}
		if ok {
			n++
		}
	}
	return n, first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Decide takes the retry decision on one pin, if it awaits one, and
// reports whether it decided.
func (d *Decider) Decide(ctx context.Context, requestID uuid.UUID, now time.Time) (bool, error) {
	var cause uuid.UUID
	p, err := decide(ctx, d.log, requestID, func(s pin.State) (pin.Payload, eventlog.Metadata, string, error) {
		p, err := s.DecideRetry(d.cfg.Policy)
		if errors.Is(err, pin.ErrNotFailed) || errors.Is(err, pin.ErrRemoved) || errors.Is(err, pin.ErrNotFound) {
			return nil, eventlog.Metadata{}, "", nil // decided already, or nothing to decide
		}
		if err != nil {
			return nil, eventlog.Metadata{}, "", err
		}
		cause = s.LastFailure.EventID
		return p, eventlog.Metadata{Time: now, Actor: d.cfg.Actor, CausationID: cause}, "retry-decision", nil
	})
	if err != nil || p == nil {
		return false, err
	}
	switch p := p.(type) {
	case pin.RetryScheduled:
		d.logger.Info("retry scheduled", "pin_request_id", requestID, "failures", p.Failures, "not_before", p.NotBefore)
	case pin.DeadLettered:
		d.logger.Info("dead-lettered", "pin_request_id", requestID, "failures", p.Failures, "reason", p.Reason)
	}
	return true, nil
}

// overdueLister is the view the watchdog reads its candidates from.
type overdueLister interface {
	Overdue(ctx context.Context, now time.Time, queueTimeout time.Duration, limit int) ([]PinView, error)
}

// WatchdogConfig configures the lease watchdog.
type WatchdogConfig struct {
	ActorConfig
	// QueueTimeout fails a due pin that no fetcher claims within it
	// (PICKUP_QUEUE_TIMEOUT). Default 1h; negative means never.
	QueueTimeout time.Duration
}

// Validate reports a configuration that cannot work.
func (c WatchdogConfig) Validate() error { return c.ActorConfig.validate("watchdog") }

// Watchdog fails attempts whose lease ran out with no word from their
// fetcher (lease_expired), and due pins that no fetcher claimed within the
// queue timeout (queue_timeout). Both are transient: the decider retries
// them, so that no pin waits forever.
type Watchdog struct {
	log    pinLog
	views  overdueLister
	cfg    WatchdogConfig
	logger *slog.Logger
}

// NewWatchdog returns a watchdog reading candidates from views and deciding
// on the log.
func NewWatchdog(log pinLog, views overdueLister, cfg WatchdogConfig) (*Watchdog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults(5*time.Second, "watchdog")
	switch {
	case cfg.QueueTimeout == 0:
		cfg.QueueTimeout = time.Hour
	case cfg.QueueTimeout < 0:
		cfg.QueueTimeout = 0
	}
	return &Watchdog{log: log, views: views, cfg: cfg, logger: cfg.Logger.With("component", "watchdog")}, nil
}

// Run checks every Period until ctx ends, and returns ctx's error.
func (w *Watchdog) Run(ctx context.Context) error {
	return runEvery(ctx, w.cfg.ActorConfig, w.logger, w.Tick)
}

// Tick makes one pass at time now: every pin the views show past its
// deadline is expired. It returns how many pins it failed.
func (w *Watchdog) Tick(ctx context.Context, now time.Time) (int, error) {
	cands, err := w.views.Overdue(ctx, now, w.cfg.QueueTimeout, w.cfg.Batch)
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	for _, c := range cands {
		ok, err := w.Expire(ctx, c.RequestID, now)
		if err != nil {
			w.logger.Error("expiry failed", "pin_request_id", c.RequestID, "err", err)
			first = cmpOr(first, err)
			continue
		}
		if ok {
			n++
		}
	}
	return n, first
}

// Expire fails the pin if its deadline passed before now, and reports
// whether it did.
func (w *Watchdog) Expire(ctx context.Context, requestID uuid.UUID, now time.Time) (bool, error) {
	p, err := decide(ctx, w.log, requestID, func(s pin.State) (pin.Payload, eventlog.Metadata, string, error) {
		f, err := s.Expire(now, w.cfg.QueueTimeout)
		if errors.Is(err, pin.ErrNoDeadline) || errors.Is(err, pin.ErrRemoved) || errors.Is(err, pin.ErrNotFound) {
			return nil, eventlog.Metadata{}, "", nil // it moved on in time
		}
		if err != nil {
			return nil, eventlog.Metadata{}, "", err
		}
		return f, eventlog.Metadata{Time: now, Actor: w.cfg.Actor, CausationID: s.LastEventID}, "expire", nil
	})
	if err != nil || p == nil {
		return false, err
	}
	f := p.(pin.Failed)
	w.logger.Info("expired", "pin_request_id", requestID, "attempt", f.Attempt, "reason", f.Reason)
	return true, nil
}
