package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Defaults of Config.
const (
	// DefaultTTL is how long an announcement holds without a renewal: three
	// renewals may be missed (a log hiccup, a paused task) before another
	// fetcher may take the slot.
	DefaultTTL = 3 * time.Minute
	// DefaultRenew is how often a live fetcher renews its announcement.
	DefaultRenew = time.Minute
	// withdrawTimeout bounds the withdrawal at stop, when the process's
	// context is gone already.
	withdrawTimeout = 10 * time.Second
)

// ErrNoSlot is Acquire's answer when every slot is live.
var ErrNoSlot = errors.New("presence: every slot is held by a live fetcher")

// ErrLost means the slot was taken by another fetcher while this one held
// it (it was silent for longer than the TTL): its peer id is now the
// other's, so it must stop.
var ErrLost = errors.New("presence: slot taken by another fetcher")

// Log is what a lease needs of the event log. eventlog.Store is one.
type Log interface {
	Reader
	Append(ctx context.Context, stream string, expected eventlog.Expected, events ...eventlog.Proposed) (eventlog.AppendResult, error)
}

// Config configures a lease. Zero fields take their defaults.
type Config struct {
	// TTL is how long an announcement holds. Default DefaultTTL.
	TTL time.Duration
	// Renew is the time between renewals; below TTL. Default DefaultRenew,
	// or a third of TTL when that is shorter.
	Renew time.Duration
	// Instance names the process in its announcements (see Announced).
	Instance string
}

// WithDefaults returns c with its zero fields set.
func (c Config) WithDefaults() Config {
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Renew == 0 {
		c.Renew = min(DefaultRenew, c.TTL/3)
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if c.TTL <= 0 || c.Renew <= 0 || c.Renew >= c.TTL {
		return fmt.Errorf("presence: renew every %v with a TTL of %v: want 0 < renew < TTL", c.Renew, c.TTL)
	}
	return nil
}

// Deps are what a lease works with.
type Deps struct {
	Log Log
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger: nil discards.
	Logger *slog.Logger
}

// Endpoint is where a fetcher bound to a slot is dialed: its peer id and
// its addresses, each ending in /p2p/<PeerID>.
type Endpoint struct {
	PeerID string
	Addrs  []string
}

// Bind starts what a slot's identity names (the fetcher's libp2p host,
// with the slot's key) and returns where it is dialed, and how to undo it:
// Acquire undoes a binding whose claim was refused, and tries another slot.
type Bind func(ctx context.Context, slot int) (Endpoint, func(), error)

// Lease is a slot held by this process. Its methods are safe for
// concurrent use.
type Lease struct {
	cfg    Config
	log    Log
	now    func() time.Time
	logger *slog.Logger
	slot   int
	end    Endpoint

	mu sync.Mutex
	// revision is the revision of the last event this lease wrote.
	revision uint64
	// done is set once the lease is withdrawn or lost: nothing more is
	// written.
	done bool
}

// Acquire claims the lowest free slot: it reads every slot, binds the
// chosen one, and appends its announcement at the revision read; a claim
// refused (another fetcher came first) is undone and the next free slot
// tried. It returns ErrNoSlot when every slot is live.
func Acquire(ctx context.Context, cfg Config, d Deps, bind Bind) (*Lease, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if d.Log == nil || bind == nil {
		return nil, errors.New("presence: Acquire needs a log and a bind")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Lease{cfg: cfg, log: d.Log, now: d.Now, logger: d.Logger.With("component", "presence")}
	// Each refused claim means a slot became live: at most Slots refusals.
	for range Slots + 1 {
		slots, err := Read(ctx, d.Log)
		if err != nil {
			return nil, err
		}
		s, ok := Choose(slots, l.now())
		if !ok {
			return nil, ErrNoSlot
		}
		end, undo, err := bind(ctx, s.Number)
		if err != nil {
			return nil, fmt.Errorf("presence: bind slot %d: %w", s.Number, err)
		}
		if err := checkEndpoint(end); err != nil {
			undo()
			return nil, err
		}
		l.slot, l.end = s.Number, end
		res, err := l.append(ctx, s.Expected(), l.announcement(), uuid.New())
		switch {
		case err == nil:
			l.revision = res.Revision
			l.logger.InfoContext(ctx, "slot claimed", "slot", s.Number, "peer", end.PeerID, "addrs", end.Addrs)
			return l, nil
		case eventlog.IsWrongRevision(err):
			l.logger.InfoContext(ctx, "slot taken by another fetcher first; trying the next", "slot", s.Number)
			undo()
		default:
			undo()
			return nil, err
		}
	}
	return nil, ErrNoSlot
}

// Slot is the slot held.
func (l *Lease) Slot() int { return l.slot }

// Endpoint is where the holder is dialed.
func (l *Lease) Endpoint() Endpoint { return l.end }

func (l *Lease) announcement() Announced {
	return Announced{Slot: l.slot, PeerID: l.end.PeerID, Addrs: l.end.Addrs, Instance: l.cfg.Instance, ExpiresAt: l.now().Add(l.cfg.TTL)}
}

func (l *Lease) append(ctx context.Context, expected eventlog.Expected, p Payload, id uuid.UUID) (eventlog.AppendResult, error) {
	ev, err := Proposal(p, id, eventlog.Metadata{Actor: "fetcher/" + l.cfg.Instance})
	if err != nil {
		return eventlog.AppendResult{}, err
	}
	res, err := l.log.Append(ctx, Stream(l.slot), expected, ev)
	if err != nil {
		return res, fmt.Errorf("presence: %s of slot %d: %w", p.EventType(), l.slot, err)
	}
	return res, nil
}

// Renew appends a fresh announcement at the revision last written. A
// refusal wraps ErrLost; another error leaves the lease as it was (retry
// with the same id: the log keeps an append retried with its id once).
func (l *Lease) Renew(ctx context.Context, id uuid.UUID) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return fmt.Errorf("%w: slot %d: the lease has ended", ErrLost, l.slot)
	}
	res, err := l.append(ctx, eventlog.At(l.revision), l.announcement(), id)
	if eventlog.IsWrongRevision(err) {
		l.done = true
		return fmt.Errorf("%w: slot %d (peer %s): %v", ErrLost, l.slot, l.end.PeerID, err)
	}
	if err != nil {
		return err
	}
	l.revision = res.Revision
	return nil
}

// Withdraw appends FetcherWithdrawn at the revision last written: the slot
// is free at once. A slot taken already is left to its new holder; a lease
// withdrawn already (or lost) writes nothing.
func (l *Lease) Withdraw(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil
	}
	res, err := l.append(ctx, eventlog.At(l.revision), Withdrawn{Slot: l.slot, PeerID: l.end.PeerID, Instance: l.cfg.Instance}, uuid.New())
	if eventlog.IsWrongRevision(err) {
		l.done = true
		l.logger.WarnContext(ctx, "slot taken by another fetcher before the withdrawal", "slot", l.slot)
		return nil
	}
	if err != nil {
		return err
	}
	l.revision, l.done = res.Revision, true
	l.logger.InfoContext(ctx, "slot withdrawn", "slot", l.slot, "peer", l.end.PeerID)
	return nil
}

// Run renews the lease every Renew until ctx ends, then withdraws it. A
// renewal that fails for another reason than a lost slot is tried again
// (with the same event id) until it lands or the slot is lost. It returns
// nil after a withdrawal, an error wrapping ErrLost when another fetcher
// took the slot (logged as an error: the process must stop), or the
// withdrawal's error.
func (l *Lease) Run(ctx context.Context) error {
	retry := min(l.cfg.Renew, 5*time.Second)
	wait := l.cfg.Renew
	id := uuid.New()
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), withdrawTimeout)
			defer cancel()
			return l.Withdraw(wctx)
		}
		err := l.Renew(ctx, id)
		switch {
		case err == nil:
			wait, id = l.cfg.Renew, uuid.New()
		case errors.Is(err, ErrLost):
			l.logger.ErrorContext(ctx, "another fetcher took this fetcher's slot (it was silent for longer than the TTL); stopping, so that one peer id is one fetcher",
				"slot", l.slot, "peer", l.end.PeerID, "err", err)
			return err
		case ctx.Err() != nil:
			wait = 0 // withdraw next
		default:
			l.logger.WarnContext(ctx, "renewing the announcement failed; trying again", "slot", l.slot, "err", err, "retry_in", retry)
			wait = retry
		}
	}
}

// Read returns every slot's state, reading their last events in parallel.
func Read(ctx context.Context, log Reader) ([]Slot, error) {
	slots := make([]Slot, Slots)
	errs := make([]error, Slots)
	var wg sync.WaitGroup
	for n := range Slots {
		wg.Go(func() {
			last, err := log.ReadStream(ctx, Stream(n), eventlog.StreamEnd, eventlog.Backwards, 1)
			if err != nil {
				errs[n] = fmt.Errorf("presence: read %s: %w", Stream(n), err)
				return
			}
			slots[n] = SlotFrom(n, last)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slots, nil
}
