// Package viewtest is the conformance suite of pickup's view stores: the
// behaviour every store must have, written once and run against each
// (embedded SQLite and PostgreSQL), and a generator of random, valid pin
// histories for tests and benchmarks.
//
// A store's test package runs it with
//
//	func TestMain(m *testing.M) { viewtest.Main(m, backend) }
//	func TestConformance(t *testing.T) { viewtest.Run(t, backend) }
//
// Main is needed because one case kills a runner process with SIGKILL: the
// test binary runs itself as that runner.
package viewtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// Store is a view store as the suite exercises it: everything the APIs, the
// runner, the workers and the operator's tools use.
type Store interface {
	views.Reader
	projections.Applier
	DueForClaim(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error)
	Claimable(ctx context.Context, requestID uuid.UUID, now time.Time) (bool, error)
	Overdue(ctx context.Context, now time.Time, queueTimeout time.Duration, limit int) ([]uuid.UUID, error)
	AwaitingDecision(ctx context.Context, limit int) ([]uuid.UUID, error)
	CarForRoot(ctx context.Context, canonicalCID string) (string, bool, error)
	Root(ctx context.Context, canonicalRoot string) (views.Root, error)
	RootReleased(ctx context.Context, canonicalRoot string, before time.Time) (bool, error)
	ReleasedRoots(ctx context.Context, before time.Time, limit int) ([]string, error)
	Figures(ctx context.Context, now time.Time) (projections.Figures, error)
	Tokens(ctx context.Context, tenant string) ([]views.TokenInfo, error)
	Dump(ctx context.Context, fn func(eventlog.Position, viewrow.Rows) error) error
	Reset(ctx context.Context) error
	Close() error
}

// Backend describes a store implementation to the suite.
type Backend struct {
	// Open opens the views at location; opening a location again opens
	// the same views.
	Open func(ctx context.Context, location string) (Store, error)
	// NewLocation returns a location with no views yet, for one test.
	NewLocation func(t testing.TB) string
}

// Run runs every case of the suite against b.
func Run(t *testing.T, b Backend) {
	cases := []struct {
		name string
		run  func(*testing.T, Backend)
	}{
		{"StatusAndInfoFollowThePin", testStatusAndInfo},
		{"CreatedIsUniqueAndIncreasingPerTenant", testCreated},
		{"TenantsSeeOnlyTheirOwn", testTenantIsolation},
		{"RemovedAndReplacedPinsHide", testRemovedAndReplaced},
		{"NewestByCID", testNewestByCID},
		{"ListFilters", testListFilters},
		{"ListMatchesModelOnRandomHistory", testListModel},
		{"ListCountsAcrossBlocks", testListBlocks},
		{"ListRefusesBadQueries", testListInvalid},
		{"Tokens", testTokens},
		{"WorkViews", testWorkViews},
		{"OneClaimPerRoot", testOneClaimPerRoot},
		{"Figures", testFigures},
		{"RootsCountLivePinsAndCars", testRoots},
		{"RootsReplacedInOneBatch", testRootsReplaced},
		{"RootsOnRandomHistoryMatchModel", testRootsModel},
		{"ApplyTwiceCountsOnce", testApplyTwice},
		{"SkippedEventsAreLeftOut", testSkipped},
		{"RebuildEqualsLive", testRebuildEqualsLive},
		{"DeterministicOnLongHistory", testDeterministicOnLongHistory},
		{"Reset", testReset},
		{"ResetWhileRunning", testResetWhileRunning},
		{"ConcurrentRunners", testConcurrentRunners},
		{"SameViewsWhereverBatchesAreCut", testBatchCuts},
		{"KilledRunnerLosesNothing", testKilledRunner},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, b) })
	}
}

// size is n events (or pins, or queries), or a third of n under the race
// detector.
func size(n int) int {
	if raceEnabled {
		return n / 3
	}
	return n
}

// open opens a store at a new location and closes it when the test ends.
func open(t testing.TB, b Backend) (Store, string) {
	t.Helper()
	loc := b.NewLocation(t)
	return openAt(t, b, loc), loc
}

func openAt(t testing.TB, b Backend, loc string) Store {
	t.Helper()
	s, err := b.Open(context.Background(), loc)
	if err != nil {
		t.Fatalf("open views %s: %v", loc, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// StoreChecksum returns a store's checkpoint and checksum.
func StoreChecksum(ctx context.Context, s Store) (eventlog.Position, string, error) {
	var cp eventlog.Position
	var sum string
	err := s.Dump(ctx, func(p eventlog.Position, rows viewrow.Rows) (err error) {
		cp = p
		sum, err = viewrow.Checksum(rows)
		return err
	})
	return cp, sum, err
}

// after is the position events follow, for Apply: they come from a log
// with dense positions.
func after(evs []eventlog.Event) eventlog.Position {
	if len(evs) == 0 {
		return 0
	}
	return evs[0].Position - 1
}

// pins builds histories by hand: each call appends one event to a pin's
// stream, with positions and revisions as a log would give them.
type pins struct {
	t      testing.TB
	s      Store
	pos    eventlog.Position
	states map[uuid.UUID]pin.State
	now    time.Time
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newPins(t testing.TB, s Store) *pins {
	return &pins{t: t, s: s, states: map[uuid.UUID]pin.State{}, now: t0}
}

// event makes the next event of a stream; the caller applies it.
func (h *pins) event(stream string, rev uint64, p any, makeProposal func(uuid.UUID) (eventlog.Proposed, error)) eventlog.Event {
	h.t.Helper()
	h.pos++
	pr, err := makeProposal(uuid.New())
	if err != nil {
		h.t.Fatal(err)
	}
	return eventlog.Event{ID: pr.ID, Stream: stream, Revision: rev, Position: h.pos, Type: pr.Type, Version: pr.Version, Data: pr.Data,
		Meta: eventlog.Metadata{Time: h.now, Actor: "test"}}
}

// pinEvent makes the next event of a pin and folds it in.
func (h *pins) pinEvent(id uuid.UUID, p pin.Payload) eventlog.Event {
	h.t.Helper()
	s := h.states[id]
	rev := uint64(0)
	if s.Exists {
		rev = s.Revision + 1
	}
	e := h.event(pin.Stream(id), rev, p, func(eid uuid.UUID) (eventlog.Proposed, error) {
		return pinlog.Propose(p, eid, eventlog.Metadata{})
	})
	next, err := pinlog.Apply(s, e)
	if err != nil {
		h.t.Fatal(err)
	}
	h.states[id] = next
	return e
}

// apply applies events to the store.
func (h *pins) apply(evs ...eventlog.Event) projections.Applied {
	h.t.Helper()
	res, err := h.s.Apply(context.Background(), after(evs), viewrow.Prepare(evs))
	if err != nil {
		h.t.Fatalf("apply: %v", err)
	}
	return res
}

// do makes and applies one event of a pin.
func (h *pins) do(id uuid.UUID, p pin.Payload) {
	h.t.Helper()
	h.apply(h.pinEvent(id, p))
}

// request requests a new pin and returns its id.
func (h *pins) request(r pin.Requested) uuid.UUID {
	h.t.Helper()
	if r.RequestID == uuid.Nil {
		r.RequestID = uuid.New()
	}
	if r.Created.IsZero() {
		r.Created = h.now
	}
	if r.Tenant == "" {
		r.Tenant = "alice"
	}
	if r.CID == "" {
		r.CID = testCID(0)
	}
	h.do(r.RequestID, r)
	return r.RequestID
}

func (h *pins) state(id uuid.UUID) pin.State { return h.states[id] }

// must fails the test on a decision's refusal.
func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func mustView(t testing.TB, s Store, tenant string, id uuid.UUID) views.Pin {
	t.Helper()
	v, err := s.Pin(context.Background(), tenant, id)
	if err != nil {
		t.Fatalf("pin %s of %s: %v", id, tenant, err)
	}
	return v
}

func wantNotFound(t testing.TB, err error, what string) {
	t.Helper()
	if !errors.Is(err, views.ErrNotFound) {
		t.Errorf("%s: got %v, want ErrNotFound", what, err)
	}
}
