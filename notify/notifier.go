package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/tenant"
)

// eventLog is the event log as the notifier uses it.
type eventLog interface {
	Append(ctx context.Context, stream string, expected eventlog.Expected, events ...eventlog.Proposed) (eventlog.AppendResult, error)
	ReadStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, limit int) ([]eventlog.Event, error)
	Head(ctx context.Context) (eventlog.Position, error)
	Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error
}

// webhookPoster sends one attempt of a webhook delivery and returns the
// receiver's HTTP status; the error is nil only for a 2xx.
type webhookPoster interface {
	Post(ctx context.Context, r WebhookRequest) (int, error)
}

// carPublisher publishes one CarMessage; id is the delivery's, the same
// for every attempt.
type carPublisher interface {
	Publish(ctx context.Context, id uuid.UUID, m CarMessage) error
}

// Config tunes a Notifier. The zero value of each field means its default.
type Config struct {
	// Policy is how failed attempts are retried. Default DefaultPolicy().
	Policy Policy
	// Timeout bounds one attempt (PICKUP_WEBHOOK_TIMEOUT). Default 10s.
	Timeout time.Duration
	// Lease is how long a claimed attempt is held before another notifier
	// may take the delivery over. Default 3 × Timeout.
	Lease time.Duration
	// Period is the longest wait between looks for due deliveries. New
	// deliveries and retries wake the notifier sooner. Default 1s.
	Period time.Duration
	// CheckpointEvery is the time between checkpoints (see the package
	// documentation). Default 1m.
	CheckpointEvery time.Duration
	// Concurrency is the most attempts in flight at once. Default 8.
	Concurrency int
	// Actor is recorded as the author of the notifier's events. Default
	// "notifier".
	Actor string
	// TopicARN, when set, makes every CarValidated a message on that SNS
	// topic, saying that the CAR is in Bucket.
	TopicARN string
	Bucket   string
	// RetryDelay is the wait before following the log again after a
	// failure. Default 1s.
	RetryDelay time.Duration
	// Now is the clock decisions are taken on. Default time.Now.
	Now func() time.Time
	// Logger receives the notifier's logs. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Policy != (Policy{}) {
		if err := c.Policy.Validate(); err != nil {
			return err
		}
	}
	switch {
	case c.Timeout < 0 || c.Lease < 0 || c.Period < 0 || c.CheckpointEvery < 0 || c.RetryDelay < 0:
		return fmt.Errorf("%w: notifier: negative duration", ErrInvalid)
	case c.Concurrency < 0:
		return fmt.Errorf("%w: notifier: negative concurrency %d", ErrInvalid, c.Concurrency)
	case c.Lease != 0 && c.Timeout != 0 && c.Lease <= c.Timeout:
		return fmt.Errorf("%w: notifier: lease %v must outlast the attempt timeout %v", ErrInvalid, c.Lease, c.Timeout)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Policy == (Policy{}) {
		c.Policy = DefaultPolicy()
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Lease == 0 {
		c.Lease = 3 * c.Timeout
	}
	if c.Period == 0 {
		c.Period = time.Second
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = time.Minute
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Actor == "" {
		c.Actor = "notifier"
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Deps are the notifier's collaborators.
type Deps struct {
	// Log is the event log: where causes are read and deliveries recorded.
	Log eventLog
	// Webhooks sends webhook attempts (a *WebhookClient).
	Webhooks webhookPoster
	// SNS publishes CarMessages; required when Config.TopicARN is set.
	SNS carPublisher
	// Key returns the key webhook secrets are derived from. It is called
	// at each attempt, so that a key set up after the start is found; an
	// error fails the attempt.
	Key func() ([]byte, error)
	// Attempts, if not nil, counts attempts by target kind and outcome
	// (delivered, failed, abandoned).
	Attempts *prometheus.CounterVec
}

// Notifier turns pins' final events into deliveries and delivers them. It
// is an actor: Run until its context ends. Any number of notifiers may
// share a log: appends at expected revisions decide who records what.
type Notifier struct {
	cfg    Config
	deps   Deps
	logger *slog.Logger
	wake   chan struct{}

	mu        sync.Mutex
	registry  tenant.Webhooks
	pending   map[uuid.UUID]*pending
	processed eventlog.Position
	loaded    bool
	// saved is the last checkpoint in the log.
	saved savedCheckpoint
}

// pending is a delivery that is not over, as far as the notifier knows.
type pending struct {
	kind string
	next time.Time
	// created is the position of its DeliveryDue.
	created  eventlog.Position
	inFlight bool
}

// New returns a notifier.
func New(cfg Config, deps Deps) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	switch {
	case deps.Log == nil:
		return nil, fmt.Errorf("%w: notifier without an event log", ErrInvalid)
	case deps.Webhooks == nil:
		return nil, fmt.Errorf("%w: notifier without a webhook client", ErrInvalid)
	case cfg.TopicARN != "" && deps.SNS == nil:
		return nil, fmt.Errorf("%w: notifier with a topic but no SNS publisher", ErrInvalid)
	case deps.Key == nil:
		deps.Key = func() ([]byte, error) { return nil, errors.New("no webhook key configured (PICKUP_WEBHOOK_KEY)") }
	}
	return &Notifier{
		cfg: cfg, deps: deps, logger: cfg.Logger.With("component", "notify"),
		wake: make(chan struct{}, 1), pending: make(map[uuid.UUID]*pending),
	}, nil
}

// Run follows the log, creates deliveries and works them until ctx ends,
// resuming after failures. It returns ctx's error.
func (n *Notifier) Run(ctx context.Context) error {
	start, err := n.load(ctx)
	for err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n.logger.Error("loading the notifier's checkpoint failed; trying again", "err", err, "after", n.cfg.RetryDelay)
		if !sleep(ctx, n.cfg.RetryDelay) {
			return ctx.Err()
		}
		start, err = n.load(ctx)
	}
	n.logger.Info("following the log", "from", start, "webhooks", n.webhookCount())
	var wg sync.WaitGroup
	wg.Go(func() { n.work(ctx) })
	wg.Go(func() { n.checkpoints(ctx) })
	defer wg.Wait()
	for {
		n.mu.Lock()
		after := n.processed
		n.mu.Unlock()
		err := n.deps.Log.Subscribe(ctx, after, filter, func(evs []eventlog.Event) error { return n.handle(ctx, evs) })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n.logger.Error("following the log failed; resuming", "err", err, "after", n.cfg.RetryDelay)
		if !sleep(ctx, n.cfg.RetryDelay) {
			return ctx.Err()
		}
	}
}

// filter selects what the notifier follows: the events that cause
// deliveries, the webhooks registry, and the deliveries themselves.
var filter = eventlog.Filter{
	StreamPrefixes: []string{pin.StreamPrefix, StreamPrefix, tenant.WebhooksStream},
	Types: append([]string{pin.TypeCarValidated, pin.TypeDeadLettered, tenant.TypeWebhookRegistered, tenant.TypeWebhookRemoved},
		DeliveryTypes()...),
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Processed returns the position of the last event the notifier has
// processed, and false until it has read where to start: a readiness
// check compares it with the log's head.
func (n *Notifier) Processed() (eventlog.Position, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.processed, n.loaded
}

func (n *Notifier) webhookCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.registry.Len()
}

// load reads the checkpoint and the registry as it was there, and returns
// the position to follow the log from.
func (n *Notifier) load(ctx context.Context) (eventlog.Position, error) {
	saved, err := readCheckpoint(ctx, n.deps.Log)
	if err != nil {
		return 0, err
	}
	start := saved.position
	if !saved.exists {
		// Nothing before the first webhook's registration can be owed to
		// a webhook; with none registered, start from now.
		first, err := n.deps.Log.ReadStream(ctx, tenant.WebhooksStream, 0, eventlog.Forwards, 1)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", tenant.WebhooksStream, err)
		}
		if len(first) > 0 {
			start = first[0].Position - 1
		} else if start, err = n.deps.Log.Head(ctx); err != nil {
			return 0, fmt.Errorf("read log head: %w", err)
		}
	}
	var reg tenant.Webhooks
	for from := uint64(0); ; {
		evs, err := n.deps.Log.ReadStream(ctx, tenant.WebhooksStream, from, eventlog.Forwards, 1000)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", tenant.WebhooksStream, err)
		}
		for _, e := range evs {
			if e.Position > start {
				break
			}
			if err := reg.Apply(e); err != nil {
				return 0, err
			}
		}
		if len(evs) < 1000 || evs[len(evs)-1].Position > start {
			break
		}
		from = evs[len(evs)-1].Revision + 1
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.registry, n.processed, n.saved, n.loaded = reg, start, saved, true
	clear(n.pending)
	return start, nil
}

// handle takes in a batch of the log, in order. An event is processed
// once whatever it causes is in the log; a failure leaves the rest of the
// batch to the next subscription, which starts after the last event
// processed.
func (n *Notifier) handle(ctx context.Context, evs []eventlog.Event) error {
	for _, e := range evs {
		if err := n.handleEvent(ctx, e); err != nil {
			return err
		}
		n.mu.Lock()
		n.processed = e.Position
		n.mu.Unlock()
	}
	return nil
}

func (n *Notifier) handleEvent(ctx context.Context, e eventlog.Event) error {
	switch {
	case e.Stream == tenant.WebhooksStream:
		n.mu.Lock()
		defer n.mu.Unlock()
		if err := n.registry.Apply(e); err != nil {
			n.logger.Warn("webhook event left out", "position", e.Position, "err", err)
		}
		return nil
	case e.Type == pin.TypeCarValidated || e.Type == pin.TypeDeadLettered:
		if _, ok := pin.RequestIDOf(e.Stream); ok {
			return n.caused(ctx, e)
		}
		return nil
	}
	id, ok := DeliveryIDOf(e.Stream)
	if !ok {
		return nil
	}
	p, err := Decode(e)
	if err != nil {
		n.logger.Warn("delivery event left out", "position", e.Position, "stream", e.Stream, "err", err)
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.pending[id]
	switch p := p.(type) {
	case Due:
		if d == nil {
			n.pending[id] = &pending{kind: p.Target.Kind, next: p.Created, created: e.Position}
			n.poke()
		}
	case Started:
		if d != nil {
			d.next = p.LeaseUntil
		}
	case Attempted:
		if d != nil && !p.RetryAt.IsZero() {
			d.next = p.RetryAt
			n.poke()
		}
	case Delivered, Abandoned:
		delete(n.pending, id)
	}
	return nil
}

// poke wakes the worker.
func (n *Notifier) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// caused creates the deliveries a pin's final event calls for: one per
// webhook of the pin's tenant that asked for it, as the registry stood at
// the event, and the SNS message for a validated CAR.
func (n *Notifier) caused(ctx context.Context, e eventlog.Event) error {
	n.mu.Lock()
	anyWebhook := n.registry.Len() > 0
	n.mu.Unlock()
	sns := e.Type == pin.TypeCarValidated && n.cfg.TopicARN != ""
	if !anyWebhook && !sns {
		return nil
	}
	rec, err := pinlog.Decode(e)
	if err != nil {
		n.logger.Warn("pin event left out", "position", e.Position, "stream", e.Stream, "err", err)
		return nil
	}
	first, err := n.deps.Log.ReadStream(ctx, e.Stream, 0, eventlog.Forwards, 1)
	if err != nil {
		return fmt.Errorf("read %s: %w", e.Stream, err)
	}
	var req pin.Requested
	if len(first) > 0 {
		if r, err := pinlog.Decode(first[0]); err == nil {
			req, _ = r.Payload.(pin.Requested)
		}
	}
	if req.Tenant == "" {
		n.logger.Warn("pin without its request left out", "position", e.Position, "stream", e.Stream)
		return nil
	}
	c := cause{eventID: e.ID, at: e.Meta.Time, request: req}
	switch p := rec.Payload.(type) {
	case pin.CarValidated:
		c.event, c.validated = tenant.WebhookPinned, p
	case pin.DeadLettered:
		c.event, c.dead = tenant.WebhookFailed, p
	}
	var dues []Due
	n.mu.Lock()
	for _, w := range n.registry.For(req.Tenant, c.event) {
		t := Target{Kind: KindWebhook, WebhookID: w.WebhookID, URL: w.URL}
		id := DeliveryID(e.ID, t)
		dues = append(dues, Due{DeliveryID: id, Tenant: req.Tenant, Target: t, Webhook: c.notification(id)})
	}
	n.mu.Unlock()
	if sns {
		t := Target{Kind: KindSNS, TopicARN: n.cfg.TopicARN}
		dues = append(dues, Due{DeliveryID: DeliveryID(e.ID, t), Target: t, Car: c.carMessage(n.cfg.Bucket)})
	}
	for _, d := range dues {
		d.Cause, d.RequestID, d.Created = e.ID, req.RequestID, n.cfg.Now().UTC()
		ev, err := Proposal(d, eventlog.DerivedID(d.DeliveryID, "due"), eventlog.Metadata{
			Time: d.Created, Actor: n.cfg.Actor, CorrelationID: req.RequestID, CausationID: e.ID,
		})
		if err != nil {
			return err
		}
		// Created before (by a replay, or another notifier), the append
		// finds the same event id and writes nothing.
		_, err = n.deps.Log.Append(ctx, Stream(d.DeliveryID), eventlog.NoStream, ev)
		if err != nil && !eventlog.IsWrongRevision(err) {
			return fmt.Errorf("create delivery %s: %w", d.DeliveryID, err)
		}
	}
	return nil
}
