// Package fetcher is where the bytes move: a pool of workers that take pin
// requests from the event log, fetch each DAG from IPFS as a verified CAR,
// stage it, validate it into the carpark, and record every step as an event.
//
// Work comes from the log: the pool follows it, and a new request
// (PinRequested) or a retry that comes due (RetryScheduled, at its time) is
// claimed from the event that announces it, at once. The views answer one
// question first, once they have taken the event in: whether the pin is the
// longest waiting of its root with no attempt fetching that root
// (Queue.Claimable), so that a root is fetched once however many ask for
// it, and the others complete from the carpark. The queue view
// (Queue.DueForClaim) only serves catching up: after a start, after an
// attempt of this process ends (a root freed, a worker free), and every
// ScanInterval for what the log feed could not take (a full feed, a retry
// whose time came while the views lagged).
//
// Taking work is a competition decided by the log: a worker claims an
// attempt by appending FetchStarted at the revision it read, through
// pin/pinlog, so across any number of processes each attempt is taken once. The claim is a lease,
// renewed by FetchProgress every 2s (or third of the lease); when an append shows
// the claim is gone (the watchdog expired it, the tenant removed the pin),
// the worker stops at once and aborts its upload.
//
// Whichever way an attempt ends, what it and the request's earlier
// attempts left in staging goes (and nothing of a later attempt, which
// may be running elsewhere); a pool that starts sweeps what attempts of
// killed processes left there (see fetcher/carstore, "What a killed
// attempt leaves").
//
// The DAG comes from fetcher/dag (sources, verification, the CAR) and goes to
// fetcher/carstore (staging and carpark, S3 or a local directory).
package fetcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// Config tunes a Pool. Zero fields take their defaults.
type Config struct {
	// Name identifies this process in the events it writes. Default
	// hostname/pid.
	Name string
	// BatchSize is how many pins this process fetches at once (BATCH_SIZE).
	// Default 10.
	BatchSize int
	// Lease is how long a claim lasts without a progress report. Default 30s.
	Lease time.Duration
	// ScanInterval is how often the pool reads the queue view for due pins
	// the log feed did not bring (work from before it started, a feed that
	// overflowed). Default 2s.
	ScanInterval time.Duration
	// ViewsWait is the longest a pin announced by the log waits for the
	// views to take its event in before the pool leaves it to the next
	// scan. Default 2s.
	ViewsWait time.Duration
	// DrainTimeout is how long a stopping pool lets attempts run before it
	// hands them back. Default 20s.
	DrainTimeout time.Duration
	// ResubscribeDelay is the wait before the pool follows the log again
	// after its subscription failed, doubled (with up to a fifth more) after
	// each failure without an event in between, up to ResubscribeMaxDelay.
	// Defaults 250ms and 30s.
	ResubscribeDelay, ResubscribeMaxDelay time.Duration
}

// Defaults of the resubscription's backoff.
const (
	DefaultResubscribeDelay    = 250 * time.Millisecond
	DefaultResubscribeMaxDelay = 30 * time.Second
)

func (c *Config) setDefaults() {
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = fmt.Sprintf("fetcher/%s/%d", host, os.Getpid())
	}
	if c.BatchSize == 0 {
		c.BatchSize = 10
	}
	if c.Lease == 0 {
		c.Lease = 30 * time.Second
	}
	if c.ScanInterval == 0 {
		c.ScanInterval = 2 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 20 * time.Second
	}
	if c.ViewsWait == 0 {
		c.ViewsWait = 2 * time.Second
	}
	if c.ResubscribeDelay == 0 {
		c.ResubscribeDelay = DefaultResubscribeDelay
	}
	if c.ResubscribeMaxDelay == 0 {
		c.ResubscribeMaxDelay = max(DefaultResubscribeMaxDelay, c.ResubscribeDelay)
	}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BatchSize < 0:
		return fmt.Errorf("fetcher: batch size %d, want at least 1", c.BatchSize)
	case c.Lease < 0 || (c.Lease > 0 && c.Lease < 300*time.Millisecond):
		return fmt.Errorf("fetcher: lease %v, want at least 300ms", c.Lease)
	case c.ScanInterval < 0 || c.DrainTimeout < 0 || c.ViewsWait < 0 || c.ResubscribeDelay < 0 || c.ResubscribeMaxDelay < 0:
		return fmt.Errorf("fetcher: negative interval")
	}
	return nil
}

// Log is the part of the event log the pool uses.
type Log interface {
	Append(ctx context.Context, stream string, expected eventlog.Expected, events ...eventlog.Proposed) (eventlog.AppendResult, error)
	ReadStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, limit int) ([]eventlog.Event, error)
	Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error
	Head(ctx context.Context) (eventlog.Position, error)
}

// Queue is what the pool asks the views; the projections' view stores
// implement it. Answers are in request ids.
type Queue interface {
	// DueForClaim returns up to limit pins that may be claimed now, the
	// longest waiting first, one per root, none of a root being fetched.
	DueForClaim(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error)
	// Claimable reports whether DueForClaim would offer the pin now.
	Claimable(ctx context.Context, requestID uuid.UUID, now time.Time) (bool, error)
	// Checkpoint returns the log position the views reflect.
	Checkpoint(ctx context.Context) (eventlog.Position, error)
}

// Protector keeps the process from being scaled in while it holds work.
type Protector interface {
	Protect(ctx context.Context, on bool) error
}

// Metrics receives the pool's figures; telemetry.FetchMetrics is one.
// Implementations are safe for concurrent use, and must not block.
type Metrics interface {
	// Received counts bytes and blocks of verified CAR newly written from
	// the named source.
	Received(source string, bytes, blocks int64)
	// Started counts an attempt claimed by this process.
	Started()
	// Ended counts an attempt's end: its outcome (Outcome*), its reason (a
	// pin.Reason for a failure; ReasonFetched or ReasonCarpark when pinned),
	// and how long the claim was held.
	Ended(outcome, reason string, took time.Duration)
}

// nopMetrics counts nothing, for a pool given no Metrics.
type nopMetrics struct{}

func (nopMetrics) Received(string, int64, int64)       {}
func (nopMetrics) Started()                            {}
func (nopMetrics) Ended(string, string, time.Duration) {}

// Deps are the parts a Pool works with.
type Deps struct {
	Log   Log
	Queue Queue
	DAG   DAGFetcher
	CARs  CARStore
	// Index, optional, lets a pin complete from a CAR already in the
	// carpark.
	Index CARIndex
	// Uploads, optional, fetches the pins that came with a CAR (a
	// dag.Fetcher whose one source is fetcher/dag/upload), and Received
	// deletes their uploads once they are over; without them such a pin
	// fails permanently.
	Uploads  DAGFetcher
	Received Received
	// Protector, optional, guards the process against scale-in while it
	// holds work.
	Protector Protector
	// Metrics, optional, receives the pool's figures.
	Metrics Metrics
	// Step, optional, is told each step an attempt reaches where a crash
	// may end it (Step* here, and carstore's Step* inside Promote), from
	// the attempt's goroutines: tests kill the process there.
	Step func(ctx context.Context, step string)
	// Logger receives the pool's logs. Lines about a pin carry its id as
	// pin_request_id; calls that do I/O for a pin get a context that
	// carries it too (telemetry.WithPinRequestID), so a telemetry.Handler
	// adds it to the lines of the packages below (dag, carstore).
	Logger *slog.Logger
}

// Pool runs attempts. Create it with New.
type Pool struct {
	cfg       Config
	log       Log
	pins      *pinlog.Committer
	queue     Queue
	work      attemptRunner
	logger    *slog.Logger
	protector Protector
	metrics   Metrics

	mu      sync.Mutex
	running map[uuid.UUID]bool
	claimed int
	// claims counts the claims this process won; wake is signalled when an
	// attempt ends, so the scanner feeds its worker again at once.
	claims atomic.Int64
	wake   chan struct{}
	// written is the log position of this process's last append: a scan
	// waits for the views to reach it, so that it sees what the process's
	// own attempts did (a root freed).
	written atomic.Uint64
}

// New returns a pool; Run starts it.
func New(cfg Config, d Deps) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if d.Log == nil || d.Queue == nil || d.DAG == nil || d.CARs == nil {
		return nil, errors.New("fetcher: a pool needs a log, a queue, a DAG fetcher and a CAR store")
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var metrics Metrics = nopMetrics{}
	if d.Metrics != nil {
		metrics = d.Metrics
	}
	return &Pool{
		cfg: cfg, log: d.Log, pins: pinlog.New(d.Log, nil), queue: d.Queue, logger: logger.With("component", "fetcher", "fetcher", cfg.Name),
		work:      &transfer{dag: d.DAG, uploads: d.Uploads, received: d.Received, cars: d.CARs, index: d.Index, lease: cfg.Lease, step: d.Step},
		protector: d.Protector,
		metrics:   metrics,
		running:   map[uuid.UUID]bool{},
		wake:      make(chan struct{}, 1),
	}, nil
}

// Name is the name the pool writes its events under.
func (p *Pool) Name() string { return p.cfg.Name }

// attemptRunner runs one claimed attempt; the pool owns claiming and
// handing back, the runner the bytes: it cleans up after each attempt
// (end), and when the pool starts, after the attempts of killed processes
// (sweep).
type attemptRunner interface {
	run(ctx context.Context, a *attempt) error
	end(ctx context.Context, a *attempt)
	sweep(ctx context.Context, p *Pool)
}

// ErrShuttingDown marks attempts stopped because the pool is stopping.
var ErrShuttingDown = errors.New("fetcher is shutting down")

// candidate is a pin offered to a worker: found in the queue view
// (announced 0), or announced by the log at position announced, in which
// case the views must take that event in before they say whether it is
// claimable.
type candidate struct {
	id        uuid.UUID
	announced eventlog.Position
}

// feedSize bounds the pins announced by the log and waiting for a worker;
// beyond it the pool leaves them to the scan.
const feedSize = 4096

// Run takes work until ctx is done, then drains: running attempts get
// DrainTimeout to finish, and those that do not are handed back to the
// queue. It returns nil after a clean drain. A failure of the log (reading
// its head, following it) never ends Run: the pool follows the log again
// with backoff (follow), and the scan keeps the workers fed meanwhile.
func (p *Pool) Run(ctx context.Context) error {
	// Attempts outlive ctx by the drain timeout.
	workCtx, stopWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopWork(nil)
	candidates := make(chan candidate)
	var workers sync.WaitGroup
	for range p.cfg.BatchSize {
		workers.Go(func() {
			for c := range candidates {
				if c.announced == 0 || p.claimable(ctx, c) {
					p.attempt(workCtx, c.id)
				} else {
					p.release(c.id)
				}
			}
		})
	}

	// wake asks the scanner to look again at once: an attempt ended, or the
	// feed overflowed.
	wake := p.wake
	var feeders sync.WaitGroup
	announced := make(chan candidate, feedSize)
	feeders.Go(func() { p.follow(ctx, announced, wake) })
	feeders.Go(func() { p.feed(ctx, announced, candidates) })
	feeders.Go(func() { p.scan(ctx, candidates, wake) })
	feeders.Go(func() { p.work.sweep(ctx, p) })
	<-ctx.Done()
	feeders.Wait()
	close(candidates)

	drained := make(chan struct{})
	go func() { workers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(p.cfg.DrainTimeout):
		p.logger.InfoContext(ctx, "drain timeout: handing back running attempts", "running", p.runningCount())
		stopWork(ErrShuttingDown)
		<-drained
	}
	return nil
}

// follow hands the log's announcements to announce, from its head when
// the pool starts, until ctx ends. A subscription that fails is followed
// again from the last event handled, after ResubscribeDelay, doubled after
// each failure that brought no event, up to ResubscribeMaxDelay: the pool
// neither misses an announcement nor handles one twice (and the scan
// catches up on whatever the views hold meanwhile).
func (p *Pool) follow(ctx context.Context, announced chan<- candidate, wake chan<- struct{}) {
	filter := eventlog.Filter{StreamPrefixes: []string{pin.StreamPrefix}, Types: []string{pin.TypeRequested, pin.TypeRetryScheduled}}
	var after eventlog.Position
	started := false
	delay := p.cfg.ResubscribeDelay
	for {
		var err error
		handled := false
		if !started {
			if after, err = p.log.Head(ctx); err == nil {
				started = true
			}
		}
		if started {
			err = p.log.Subscribe(ctx, after, filter, func(batch []eventlog.Event) error {
				for _, e := range batch {
					p.announce(ctx, e, announced, wake)
					after = e.Position
				}
				handled = true
				return nil
			})
		}
		if ctx.Err() != nil {
			return
		}
		if handled {
			delay = p.cfg.ResubscribeDelay
		}
		wait := delay + rand.N(delay/5+1)
		p.logger.WarnContext(ctx, "following the log failed; following it again", "err", err, "after_position", after, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		delay = min(2*delay, p.cfg.ResubscribeMaxDelay)
	}
}

// announce takes an event of the log feed: a new request is offered at
// once, a retry at its time. A full feed is left to the scan.
func (p *Pool) announce(ctx context.Context, e eventlog.Event, announced chan<- candidate, wake chan<- struct{}) {
	id, ok := pin.RequestIDOf(e.Stream)
	if !ok {
		return
	}
	c := candidate{id: id, announced: e.Position}
	offer := func() {
		select {
		case announced <- c:
		default:
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
	if e.Type == pin.TypeRetryScheduled {
		r, err := pinlog.Decode(e)
		if err != nil {
			return
		}
		if wait := time.Until(r.Payload.(pin.RetryScheduled).NotBefore); wait > 0 {
			// The timer stops with ctx; once it fires, its hook on ctx goes
			// too, so that a pool running for months does not keep one for
			// every retry it ever heard of.
			var unhook atomic.Pointer[func() bool]
			t := time.AfterFunc(wait, func() {
				if u := unhook.Load(); u != nil {
					(*u)()
				}
				offer()
			})
			u := context.AfterFunc(ctx, func() { t.Stop() })
			unhook.Store(&u)
			return
		}
	}
	offer()
}

// feed hands the pins the log announced to the next free worker, each
// once while this process holds it.
func (p *Pool) feed(ctx context.Context, announced <-chan candidate, candidates chan<- candidate) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-announced:
			if !p.reserve(c.id) {
				continue
			}
			select {
			case candidates <- c:
			case <-ctx.Done():
				p.release(c.id)
				return
			}
		}
	}
}

// claimable waits for the views to take in the event that announced c,
// and reports whether they offer it now.
func (p *Pool) claimable(ctx context.Context, c candidate) bool {
	if !p.waitViews(ctx, c.announced) {
		return false // the scan offers it once the views catch up
	}
	ok, err := p.queue.Claimable(ctx, c.id, time.Now())
	if err != nil {
		p.logger.WarnContext(ctx, "asking the views", "pin_request_id", c.id, "err", err)
	}
	return ok
}

// wrote notes the position of one of the process's appends.
func (p *Pool) wrote(pos eventlog.Position) {
	for {
		old := p.written.Load()
		if uint64(pos) <= old || p.written.CompareAndSwap(old, uint64(pos)) {
			return
		}
	}
}

// waitViews waits, up to ViewsWait, until the views reflect the log up to
// pos, and reports whether they do.
func (p *Pool) waitViews(ctx context.Context, pos eventlog.Position) bool {
	deadline := time.Now().Add(p.cfg.ViewsWait)
	for pause := 200 * time.Microsecond; ; pause = min(2*pause, 5*time.Millisecond) {
		cp, err := p.queue.Checkpoint(ctx)
		if err != nil {
			p.logger.WarnContext(ctx, "reading the views' checkpoint", "err", err)
			return false
		}
		if cp >= pos {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
	}
}

// scan feeds due pins to workers as they become free. It reads a page of
// the queue, longest waiting first, shuffled (fetchers in other processes
// read the same page: spreading the claims keeps them from all racing for
// the same pin), and hands each pin to the next free worker. A worker that
// loses a claim is free again at once, so a lost race costs one stream
// read. When a page brought this process no claim, or the queue is empty,
// it waits for ScanInterval, a finished attempt (a root or a worker freed),
// or a feed that overflowed.
func (p *Pool) scan(ctx context.Context, candidates chan<- candidate, wake <-chan struct{}) {
	tick := time.NewTicker(p.cfg.ScanInterval)
	defer tick.Stop()
	page := max(4*p.cfg.BatchSize, 32)
	for {
		claimedBefore := p.claims.Load()
		p.waitViews(ctx, eventlog.Position(p.written.Load()))
		due, err := p.queue.DueForClaim(ctx, time.Now(), page)
		if err != nil && ctx.Err() == nil {
			p.logger.WarnContext(ctx, "looking for due pins", "err", err)
		}
		rand.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
		stale := time.After(p.cfg.ScanInterval)
	feed:
		for _, id := range due {
			if !p.reserve(id) {
				continue
			}
			select {
			case candidates <- candidate{id: id}:
			case <-ctx.Done():
				p.release(id)
				return
			case <-stale:
				// The page is old: read the queue again.
				p.release(id)
				break feed
			}
		}
		if len(due) > 0 && p.claims.Load() > claimedBefore {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
	}
}

// reserve marks a pin as taken by this process, or reports that it is.
func (p *Pool) reserve(id uuid.UUID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running[id] {
		return false
	}
	p.running[id] = true
	return true
}

func (p *Pool) release(id uuid.UUID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, id)
}

func (p *Pool) runningCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.running)
}
