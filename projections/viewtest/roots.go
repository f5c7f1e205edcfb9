package viewtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// rootEvent makes the next event of a root's stream.
func (h *pins) rootEvent(revs map[string]uint64, root string, p pin.RootPayload) eventlog.Event {
	h.t.Helper()
	rev := revs[root]
	revs[root]++
	return h.event(pin.RootStream(root), rev, p, func(eid uuid.UUID) (eventlog.Proposed, error) {
		return pinlog.ProposeRoot(p, eid, eventlog.Metadata{})
	})
}

func rootOf(t testing.TB, s Store, root string) (views.Root, bool) {
	t.Helper()
	r, err := s.Root(context.Background(), root)
	if errors.Is(err, views.ErrNotFound) {
		return views.Root{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, true
}

func released(t testing.TB, s Store, before time.Time) []string {
	t.Helper()
	out, err := s.ReleasedRoots(context.Background(), before, 100)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pinned drives a requested pin to pinned.
func (h *pins) pinned(id uuid.UUID) {
	h.t.Helper()
	h.do(id, must[pin.FetchStarted](h.t)(h.state(id).Claim("f1", h.now, lease)))
	h.do(id, must[pin.CarUploaded](h.t)(h.state(id).Upload(pin.CarUploaded{Attempt: h.state(id).Attempt, Fetcher: "f1", Key: "s", Bytes: 10, Blocks: 1, CarCID: "bagcar"})))
	h.do(id, must[pin.CarValidated](h.t)(h.state(id).Validate(pin.CarValidated{Attempt: h.state(id).Attempt, Key: "k", Bytes: 10, CarCID: "bagcar"})))
}

// testRoots follows one root through its life: pins of two tenants (one
// naming the root as CIDv0, the other as CIDv1), its CAR, the release when
// the last is removed, a re-pin that cancels it, a dead letter that
// releases it again, a late hold that restarts the grace, a deletion
// decided (a candidate whatever its pins) and done (the row goes).
func testRoots(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	ctx := context.Background()
	revs := map[string]uint64{}
	v0 := testCID(1)
	root := canonical(t, v0)
	tick := func() time.Time { h.now = h.now.Add(time.Minute); return h.now }
	far := t0.Add(1000 * time.Hour)

	if _, ok := rootOf(t, s, root); ok {
		t.Fatal("a root no pin named has a row")
	}
	a := h.request(pin.Requested{Tenant: "alice", CID: v0})
	if r, ok := rootOf(t, s, root); !ok || r.Live != 1 || r.HasCar || !r.ReleasedAt.IsZero() {
		t.Errorf("after a request: %+v %v, want one live pin and no CAR", r, ok)
	}
	tick()
	h.pinned(a)
	c1, err := cid.Decode(v0)
	if err != nil {
		t.Fatal(err)
	}
	tick()
	bob := h.request(pin.Requested{Tenant: "bob", CID: cid.NewCidV1(c1.Type(), c1.Hash()).String()})
	if r, _ := rootOf(t, s, root); r.Live != 2 || !r.HasCar {
		t.Errorf("two pins of the root, one pinned: %+v", r)
	}
	if got := released(t, s, far); len(got) != 0 {
		t.Errorf("released roots while pins live: %v", got)
	}
	tick()
	h.do(a, must[pin.Removed](t)(h.state(a).Remove(uuid.Nil)))
	if r, _ := rootOf(t, s, root); r.Live != 1 {
		t.Errorf("after one removal: %+v, want one live pin", r)
	}
	at := tick()
	h.do(bob, must[pin.Removed](t)(h.state(bob).Remove(uuid.Nil)))
	if r, _ := rootOf(t, s, root); r.Live != 0 || !r.HasCar || !r.ReleasedAt.Equal(at) {
		t.Errorf("after the last removal at %v: %+v", at, r)
	}
	if got := released(t, s, at); len(got) != 0 {
		t.Errorf("released before its release: %v", got)
	}
	if got := released(t, s, at.Add(time.Microsecond)); !slices.Equal(got, []string{root}) {
		t.Errorf("released just after: %v, want %s", got, root)
	}
	if ok, err := s.RootReleased(ctx, root, at.Add(time.Microsecond)); err != nil || !ok {
		t.Errorf("root released: %v %v", ok, err)
	}
	if ok, err := s.RootReleased(ctx, canonical(t, testCID(99)), far); err != nil || ok {
		t.Errorf("an unknown root released: %v %v", ok, err)
	}

	// A new pin within the grace period cancels the release.
	tick()
	c := h.request(pin.Requested{Tenant: "carol", CID: v0})
	if r, _ := rootOf(t, s, root); r.Live != 1 || !r.ReleasedAt.IsZero() {
		t.Errorf("after a re-pin: %+v", r)
	}
	if got := released(t, s, far); len(got) != 0 {
		t.Errorf("released after a re-pin: %v", got)
	}
	// It fails for good: released again, at its dead letter.
	h.do(c, must[pin.FetchStarted](t)(h.state(c).Claim("f1", h.now, lease)))
	h.do(c, must[pin.Failed](t)(h.state(c).Fail("f1", 1, pin.ReasonTooBig, "big", true)))
	if r, _ := rootOf(t, s, root); r.Live != 1 {
		t.Errorf("a permanent failure before its dead letter: %+v, want still live", r)
	}
	dead := tick()
	h.do(c, must[pin.Payload](t)(h.state(c).DecideRetry(Policy())))
	if r, _ := rootOf(t, s, root); r.Live != 0 || !r.ReleasedAt.Equal(dead) {
		t.Errorf("after the dead letter at %v: %+v", dead, r)
	}
	// A requeue makes it live again; the removal releases it.
	tick()
	h.do(c, must[pin.RetryScheduled](t)(h.state(c).Requeue(h.now)))
	if r, _ := rootOf(t, s, root); r.Live != 1 {
		t.Errorf("after a requeue: %+v", r)
	}
	tick()
	h.do(c, must[pin.Removed](t)(h.state(c).Remove(uuid.Nil)))
	// A hold by a pin no longer live restarts the grace period.
	held := tick()
	h.apply(h.rootEvent(revs, root, pin.RootHeld{RequestID: c}))
	if r, _ := rootOf(t, s, root); r.Live != 0 || !r.ReleasedAt.Equal(held) {
		t.Errorf("after a late hold at %v: %+v", held, r)
	}

	// Another root, released earlier, comes after a deletion in progress.
	other := canonical(t, testCID(2))
	o := h.request(pin.Requested{Tenant: "alice", CID: testCID(2)})
	h.pinned(o)
	h.do(o, must[pin.Removed](t)(h.state(o).Remove(uuid.Nil)))
	decided := tick()
	h.apply(h.rootEvent(revs, root, pin.RootDeleting{Actor: "gc-1", At: decided, LeaseUntil: decided.Add(time.Minute)}))
	if r, _ := rootOf(t, s, root); !r.Deleting || !r.DeletingUntil.Equal(decided.Add(time.Minute)) {
		t.Errorf("deleting: %+v", r)
	}
	// Even a pin requested meanwhile leaves it a candidate: the deletion
	// must finish before the pin can hold the root.
	late := h.request(pin.Requested{Tenant: "bob", CID: v0})
	if got := released(t, s, far); !slices.Equal(got, []string{root, other}) {
		t.Errorf("candidates: %v, want the deletion in progress %s, then %s", got, root, other)
	}
	h.apply(h.rootEvent(revs, root, pin.RootDeleted{At: tick(), Objects: 3}))
	if r, _ := rootOf(t, s, root); r.HasCar || r.Deleting || r.Live != 1 {
		t.Errorf("after the deletion: %+v, want no CAR and the late pin live", r)
	}
	if got := released(t, s, far); !slices.Equal(got, []string{other}) {
		t.Errorf("candidates after the deletion: %v, want %s", got, other)
	}
	// The late pin's CAR is a new generation; its removal releases it.
	h.pinned(late)
	h.do(late, must[pin.Removed](t)(h.state(late).Remove(uuid.Nil)))
	if r, _ := rootOf(t, s, root); !r.HasCar || r.Live != 0 {
		t.Errorf("a new generation: %+v", r)
	}
	// Deleted with no live pin: the row goes.
	h.apply(h.rootEvent(revs, other, pin.RootDeleting{Actor: "gc-1", At: tick(), LeaseUntil: h.now.Add(time.Minute)}))
	h.apply(h.rootEvent(revs, other, pin.RootDeleted{At: tick(), Objects: 3}))
	if r, ok := rootOf(t, s, other); ok {
		t.Errorf("a deleted root with no pin keeps a row: %+v", r)
	}
}

// testRootsReplaced replaces a pin by one of another root in one batch,
// with the replaced pin's request in the same batch.
func testRootsReplaced(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	one, two := canonical(t, testCID(3)), canonical(t, testCID(4))
	old := uuid.New()
	repl := uuid.New()
	evs := []eventlog.Event{
		h.pinEvent(old, must[pin.Requested](t)(pin.Request(pin.State{}, pin.Requested{RequestID: old, Tenant: "alice", CID: testCID(3), Created: h.now}))),
		h.pinEvent(repl, must[pin.Requested](t)(pin.Request(pin.State{}, pin.Requested{RequestID: repl, Tenant: "alice", CID: testCID(4), Created: h.now, Replaces: old}))),
	}
	h.apply(evs...)
	if r, ok := rootOf(t, s, one); ok {
		t.Errorf("the replaced pin's root: %+v, want no row", r)
	}
	if r, _ := rootOf(t, s, two); r.Live != 1 {
		t.Errorf("the replacement's root: %+v, want one live pin", r)
	}
	// The replaced pin's PinRemoved changes nothing more.
	h.do(old, must[pin.Removed](t)(h.state(old).Remove(repl)))
	if r, ok := rootOf(t, s, one); ok {
		t.Errorf("after the removal: %+v, want no row", r)
	}
}

// testRootsModel applies a random history and compares every root's live
// pins and CAR with a model folded from the pins' final states.
func testRootsModel(t *testing.T, b Backend) {
	s, _ := open(t, b)
	ctx := context.Background()
	evs := Events(History(HistoryConfig{Events: size(3000), Seed: 11, Junk: true}))
	for i := 0; i < len(evs); i += 97 {
		batch := evs[i:min(i+97, len(evs))]
		if _, err := s.Apply(ctx, after(batch), viewrow.Prepare(batch)); err != nil {
			t.Fatal(err)
		}
	}
	// The model: per root, the live pins and whether any was pinned.
	type model struct {
		live   int64
		hasCar bool
	}
	states := map[uuid.UUID]pin.State{}
	hidden := map[uuid.UUID]bool{}
	for _, e := range evs {
		id, ok := pin.RequestIDOf(e.Stream)
		if !ok {
			continue
		}
		st, seen := states[id]
		r, err := pinlog.Decode(e)
		if err != nil {
			continue
		}
		req, isReq := r.Payload.(pin.Requested)
		if isReq == seen {
			continue // a second request, or an event of a pin never requested
		}
		if isReq && req.Replaces != uuid.Nil {
			if o, ok := states[req.Replaces]; ok && o.Request.Tenant == req.Tenant {
				hidden[req.Replaces] = true
			}
		}
		states[id] = st.Apply(r)
	}
	want := map[string]model{}
	for id, st := range states {
		k, err := views.CanonicalCID(st.Request.CID)
		if err != nil {
			continue
		}
		m := want[k]
		if !st.Removed && !hidden[id] && st.Phase != pin.PhaseDeadLettered {
			m.live++
		}
		if st.Car.CarCID != "" {
			m.hasCar = true
		}
		want[k] = m
	}
	for k, m := range want {
		r, ok := rootOf(t, s, k)
		if !ok && (m.live > 0 || m.hasCar) {
			t.Errorf("root %s: no row, want %+v", k, m)
			continue
		}
		if r.Live != m.live || r.HasCar != m.hasCar {
			t.Errorf("root %s: live %d car %v, want %+v", k, r.Live, r.HasCar, m)
		}
	}
	got := released(t, s, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, k := range got {
		if m := want[k]; m.live != 0 || !m.hasCar {
			t.Errorf("root %s released, but the model says %+v", k, m)
		}
	}
}
