package deciders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// Defaults of the GC's settings.
const (
	// DefaultGCGrace is how long a released root is kept (PICKUP_GC_GRACE):
	// a day, so that a tenant who removes a pin by mistake, or replaces it
	// and re-pins the old CID, finds it at once and is not fetched again;
	// the cost is a day of storage of what was released.
	DefaultGCGrace = 24 * time.Hour
	// DefaultGCPeriod is the time between the GC's passes.
	DefaultGCPeriod = time.Minute
	// DefaultGCLease is how long a GC holds a deletion it decided.
	DefaultGCLease = 10 * time.Minute
	// DefaultGCWait is the longest the GC waits for the views to reach a
	// root's last event before it leaves the root to the next pass.
	DefaultGCWait = 30 * time.Second
)

// RootViews are the views the GC reads its candidates and confirmations
// from (projections' roots view).
type RootViews interface {
	// ReleasedRoots returns up to limit roots (canonical CIDs): those whose
	// deletion is in progress, then those with a CAR in the carpark, no
	// live pin, released before before.
	ReleasedRoots(ctx context.Context, before time.Time, limit int) ([]string, error)
	// RootReleased reports whether the root has a CAR that no live pin
	// holds, released before before.
	RootReleased(ctx context.Context, canonicalRoot string, before time.Time) (bool, error)
	// Checkpoint is the log position of the last event the views reflect.
	Checkpoint(ctx context.Context) (pinlog.Position, error)
}

// Deleter deletes a root's objects: its CAR, index and mapping in the
// carpark (carstore), its blocks' entries in the block-location lookup.
// DeleteRoot returns how many objects it found and deleted; it is
// idempotent (deleting what is gone deletes nothing and is no error), and
// safe for concurrent use.
type Deleter interface {
	DeleteRoot(ctx context.Context, root cid.Cid) (int, error)
}

// DeleteAll is a Deleter that deletes through each of its Deleters in
// order, adding up their objects, and stops at the first error (the GC
// tries again: each is idempotent). Put the block-location lookup first
// and the carpark last, so that no lookup entry outlives its CAR.
type DeleteAll []Deleter

// DeleteRoot implements Deleter.
func (d DeleteAll) DeleteRoot(ctx context.Context, root cid.Cid) (int, error) {
	n := 0
	for _, del := range d {
		m, err := del.DeleteRoot(ctx, root)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// GCLog is the event log as the GC uses it: the write path's, and the
// head, which the views must reach before a decision.
type GCLog interface {
	pinlog.Log
	Head(ctx context.Context) (pinlog.Position, error)
}

// GCConfig configures the GC.
type GCConfig struct {
	// Config's Actor must be unique per process (two GCs of one name would
	// propose the same event and both take it for theirs). Default:
	// "gc/" and a random suffix. Period default DefaultGCPeriod.
	Config
	// Grace is how long a released root is kept (PICKUP_GC_GRACE).
	// Default DefaultGCGrace.
	Grace time.Duration
	// Lease is how long a decided deletion is held. Default DefaultGCLease.
	Lease time.Duration
	// Wait bounds the wait for the views. Default DefaultGCWait.
	Wait time.Duration
}

// Validate reports a configuration that cannot work.
func (c GCConfig) Validate() error {
	if err := c.Config.validate("gc"); err != nil {
		return err
	}
	if c.Grace < 0 || c.Lease < 0 || c.Wait < 0 {
		return fmt.Errorf("gc: negative grace %v, lease %v or wait %v", c.Grace, c.Lease, c.Wait)
	}
	return nil
}

// GCDeps are what the GC works with.
type GCDeps struct {
	// Log is the event log, written through pin/pinlog.
	Log GCLog
	// Logger receives the GC's logs; nil discards them.
	Logger *slog.Logger
}

// GC deletes the objects of roots that no pin has held for the grace
// period. It is safe to run several at once (in several processes): a
// root is deleted once.
//
// A root stays in the carpark while any pin of any tenant holds it; when
// its last live pin goes (removed, replaced, dead-lettered), its CAR,
// index and mapping are deleted after a grace period (PICKUP_GC_GRACE), by
// the GC, which decides from events, as the other actors do: candidates
// from the views (ReleasedRoots), the decision on the root's stream
// through pin/pinlog (CommitRoot), the deletion through a Deleter, and its
// record (RootDeleted). Every step is an event of the root's stream
// (package pin's root.go), which `pickup audit` shows in the story of the
// root's pins.
//
// Why the deletion never takes what a pin holds. A fetcher appends RootHeld
// to the root's stream before it promotes a CAR of the root or completes a
// pin from the carpark (pinlog.HoldRoot), and that pin's PinRequested is
// in the log before its hold. The GC, before it appends RootDeleting,
// waits until the views' checkpoint has reached the last event of the
// root's stream it read (and the log's head as it was when the pass
// began), so every pin that held the root, and every pin requested before
// the pass, is in the views; it then confirms from the views that the root
// still has no live pin and was released before now − grace; and only then
// appends RootDeleting at the revision it read. A hold that lands after
// that read makes the append lose its race (wrong revision): the GC reads
// again, waits for the views to show the hold's pin, and finds the root
// live (or, for a pin removed since, released only now): no decision. A
// hold that comes after RootDeleting is refused with pin.ErrRootDeleting:
// its fetcher neither stores nor uses a CAR of the root until RootDeleted,
// and its next hold starts a new generation. Either the hold or the
// decision comes first in the root's stream, and the other sees it.
//
// Why a lease. The GC that decided may die between its decision and the
// deletion. RootDeleting holds the deletion until LeaseUntil; after that,
// any GC takes it over (a RootDeleting of its own, appended at the
// revision it read, so that of two at once one wins and the other sees
// the decision), deletes again (a deletion is idempotent: what is gone
// stays gone) and appends RootDeleted. Deletions in progress are the first
// candidates of every pass, whatever the root's pins: a pin requested
// meanwhile waits for its hold until the deletion is recorded done. The
// lease (DefaultGCLease, 10 minutes) outlasts a deletion by far: three
// DELETEs on the carpark.
//
// The bound: a root released at t is a candidate from t + grace, and is
// deleted by the first pass after that, so it is not kept past t + grace +
// Period (plus the views' lag and the deletion itself). A known limit: a
// fetcher whose pin is removed after its hold, and which promotes its CAR
// more than a grace period after the hold, leaves that CAR behind (a leak,
// never a loss); a hold by a pin no longer live restarts the grace period.
type GC struct {
	actor
	log     GCLog
	views   RootViews
	deleter Deleter
	grace   time.Duration
	lease   time.Duration
	wait    time.Duration
}

// errNotReleased: the views no longer show the root released.
var errNotReleased = errors.New("root not released")

// NewGC returns a GC reading candidates from views, deciding on the log
// and deleting through deleter.
func NewGC(cfg GCConfig, views RootViews, deleter Deleter, d GCDeps) (*GC, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults(DefaultGCPeriod, "gc/"+uuid.NewString()[:8])
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGCGrace
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultGCLease
	}
	if cfg.Wait == 0 {
		cfg.Wait = DefaultGCWait
	}
	switch {
	case d.Log == nil:
		return nil, errors.New("gc: no event log")
	case views == nil:
		return nil, errors.New("gc: no views")
	case deleter == nil:
		return nil, errors.New("gc: no deleter")
	}
	a, err := newActor(cfg.Config, Deps{Log: d.Log, Logger: d.Logger}, "gc")
	if err != nil {
		return nil, err
	}
	return &GC{actor: a, log: d.Log, views: views, deleter: deleter, grace: cfg.Grace, lease: cfg.Lease, wait: cfg.Wait}, nil
}

// Run collects every Period until ctx ends, and returns ctx's error.
func (g *GC) Run(ctx context.Context) error { return g.run(ctx, g.Tick) }

// Tick makes one pass at time now: every root the views show released
// before now − grace, or being deleted, is collected. It returns how many
// roots it recorded deleted.
func (g *GC) Tick(ctx context.Context, now time.Time) (int, error) {
	head, err := g.log.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("gc: read the log's head: %w", err)
	}
	// Candidates from views that reached the log as it was: views that
	// are building (a new version, a replay) leave the pass to a later one,
	// instead of every candidate's wait.
	if err := g.waitViews(ctx, head); err != nil {
		return 0, fmt.Errorf("gc: %w", err)
	}
	roots, err := g.views.ReleasedRoots(ctx, now.Add(-g.grace), g.cfg.Batch)
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	for _, r := range roots {
		ok, err := g.Collect(ctx, r, now, head)
		if err != nil {
			g.logger.Error("collection failed", "root", r, "err", err)
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

// Collect decides on one root at time now (the views having to reach at
// least position head before a new decision) and, if it holds the
// deletion, deletes the root's objects and records it. It reports whether
// it recorded the deletion.
func (g *GC) Collect(ctx context.Context, root string, now time.Time, head pinlog.Position) (bool, error) {
	c, err := cid.Decode(root)
	if err != nil {
		return false, fmt.Errorf("gc %s: %w", root, err)
	}
	actor := g.cfg.Actor
	dec, err := g.pins.CommitRoot(ctx, pinlog.RootCommit{Root: root, Actor: actor, Decide: func(s pin.RootState) (pinlog.RootDecision, error) {
		if !s.Deleting {
			// A new decision: the views must show every pin that held the
			// root (and every pin requested before the pass) first.
			if err := g.waitViews(ctx, max(pinlog.Position(s.LastPosition), head)); err != nil {
				return pinlog.RootDecision{}, err
			}
			ok, err := g.views.RootReleased(ctx, root, now.Add(-g.grace))
			if err != nil {
				return pinlog.RootDecision{}, err
			}
			if !ok {
				return pinlog.RootDecision{}, errNotReleased
			}
		}
		d, err := s.DecideDelete(actor, now, g.lease)
		if err != nil || d == nil {
			return pinlog.RootDecision{}, err
		}
		return pinlog.RootDecision{Payload: *d, At: now}, nil
	}})
	switch {
	case errors.Is(err, errNotReleased), errors.Is(err, pin.ErrRootDeletionHeld):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("gc %s: %w", root, err)
	case !dec.State.Deleting || dec.State.Deleter != actor:
		return false, nil
	}
	if d, ok := dec.Appended.(pin.RootDeleting); ok {
		g.logger.Info("deletion decided", "root", root, "lease_until", d.LeaseUntil, "generation", dec.State.Generation)
	}
	objects := 0
	for _, form := range rootForms(c) {
		n, err := g.deleter.DeleteRoot(ctx, form)
		objects += n
		if err != nil {
			return false, fmt.Errorf("gc %s: delete %s: %w", root, form, err)
		}
	}
	rec, err := g.pins.CommitRoot(ctx, pinlog.RootCommit{Root: root, Actor: actor, Decide: func(s pin.RootState) (pinlog.RootDecision, error) {
		p, err := s.Deleted(actor, now, objects)
		if errors.Is(err, pin.ErrRootNotDeleting) || errors.Is(err, pin.ErrRootDeletionHeld) {
			return pinlog.RootDecision{}, nil // another GC recorded it, or holds it now
		}
		return pinlog.RootDecision{Payload: p, At: now}, err
	}})
	if err != nil {
		return false, fmt.Errorf("gc %s: record the deletion: %w", root, err)
	}
	if rec.Appended == nil {
		return false, nil
	}
	g.logger.Info("deleted", "root", root, "objects", objects)
	return true, nil
}

// rootForms are the CIDs a root's objects may be stored under: the
// carpark names a root as it was requested, and a pin of a dag-pb root
// with a SHA-256 multihash may have asked for its CIDv0 (Qm...), so both
// forms are deleted; the views and the root's stream know it by its
// canonical CIDv1.
func rootForms(c cid.Cid) []cid.Cid {
	v1 := cid.NewCidV1(c.Type(), c.Hash())
	forms := []cid.Cid{v1}
	if dec, err := multihash.Decode(c.Hash()); err == nil && c.Type() == cid.DagProtobuf && dec.Code == multihash.SHA2_256 && dec.Length == 32 {
		forms = append(forms, cid.NewCidV0(c.Hash()))
	}
	return forms
}

// waitViews waits until the views' checkpoint reaches pos, for at most the
// configured wait.
func (g *GC) waitViews(ctx context.Context, pos pinlog.Position) error {
	ctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	delay := 5 * time.Millisecond
	for {
		cp, err := g.views.Checkpoint(ctx)
		if err == nil && cp >= pos {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("views at position %d, the root's last event at %d", cp, pos)
			}
			return fmt.Errorf("wait for the views: %w (%w)", err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}
