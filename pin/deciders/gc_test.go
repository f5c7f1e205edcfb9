package deciders_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/internal/pintest"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/deciders"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

var t0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// testRoot returns the i-th test root, canonical.
func testRoot(t testing.TB, i int) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum([]byte(fmt.Sprint("root ", i)), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagProtobuf, mh)
}

// carpark is a Deleter over an in-memory carpark: which roots have a CAR,
// and how many pins use each root's CAR now (held, not yet removed). A
// deletion of a root some pin uses is the failure the GC must never
// cause.
type carpark struct {
	t     testing.TB
	mu    sync.Mutex
	cars  map[cid.Cid]bool
	inUse map[cid.Cid]int
	calls map[cid.Cid]int
	// block, when set, is called by DeleteRoot before it deletes.
	block func(ctx context.Context) error
}

func newCarpark(t testing.TB) *carpark {
	return &carpark{t: t, cars: map[cid.Cid]bool{}, inUse: map[cid.Cid]int{}, calls: map[cid.Cid]int{}}
}

func (c *carpark) DeleteRoot(ctx context.Context, root cid.Cid) (int, error) {
	if c.block != nil {
		if err := c.block(ctx); err != nil {
			return 0, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[root]++
	if c.inUse[root] > 0 {
		c.t.Errorf("deleted %s while %d live pins hold it", root, c.inUse[root])
	}
	if !c.cars[root] {
		return 0, nil
	}
	delete(c.cars, root)
	return 3, nil
}

func (c *carpark) callsOf(root cid.Cid) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[root]
}

// newGC returns a GC on w, with the test's settings.
func newGC(t testing.TB, w *pintest.World, del deciders.Deleter, actor string, grace, lease time.Duration) *deciders.GC {
	t.Helper()
	g, err := deciders.NewGC(deciders.GCConfig{Config: deciders.Config{Actor: actor, Period: time.Minute}, Grace: grace, Lease: lease, Wait: 10 * time.Second},
		w.Views, del, deciders.GCDeps{Log: w.Log, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// pinRoot requests a pin of root at time at, holds the root for it as a
// fetcher does, and validates its CAR into the carpark.
func pinRoot(t testing.TB, w *pintest.World, cp *carpark, root cid.Cid, at time.Time) uuid.UUID {
	t.Helper()
	id := request(t, w, root, at)
	if err := pinlog.HoldRoot(context.Background(), w.Log, root, id); err != nil {
		t.Fatal(err)
	}
	cp.mu.Lock()
	cp.cars[root] = true
	cp.inUse[root]++
	cp.mu.Unlock()
	validate(t, w, id, at)
	return id
}

func request(t testing.TB, w *pintest.World, root cid.Cid, at time.Time) uuid.UUID {
	t.Helper()
	id := uuid.New()
	w.Do(id, at, "gateway", func(s pin.State) (pin.Payload, error) {
		return pin.Request(s, pin.Requested{RequestID: id, Tenant: "alice", CID: root.String(), Created: at})
	})
	return id
}

func validate(t testing.TB, w *pintest.World, id uuid.UUID, at time.Time) {
	t.Helper()
	w.Do(id, at, "f", func(s pin.State) (pin.Payload, error) { return s.Claim("f", at, time.Minute) })
	w.Do(id, at, "f", func(s pin.State) (pin.Payload, error) {
		return s.Upload(pin.CarUploaded{Attempt: s.Attempt, Fetcher: "f", Key: "k", Bytes: 10, Blocks: 1, CarCID: "bagcar"})
	})
	w.Do(id, at, "f", func(s pin.State) (pin.Payload, error) {
		return s.Validate(pin.CarValidated{Attempt: s.Attempt, Key: "k", Bytes: 10, CarCID: "bagcar"})
	})
}

// remove removes the pin; it stops using its root's CAR first, so that a
// deletion the removal allows never meets the count of its use.
func remove(t testing.TB, w *pintest.World, cp *carpark, root cid.Cid, id uuid.UUID, at time.Time) {
	t.Helper()
	cp.mu.Lock()
	cp.inUse[root]--
	cp.mu.Unlock()
	w.Do(id, at, "gateway", func(s pin.State) (pin.Payload, error) { return s.Remove(uuid.Nil) })
}

func rootTypes(t testing.TB, w *pintest.World, root cid.Cid) ([]string, pin.RootState) {
	t.Helper()
	s, evs, err := pinlog.ReadRoot(context.Background(), w.Log, pinlog.CanonicalRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type+"/"+e.Meta.Actor)
	}
	return out, s
}

// TestGCGraceAndCancel checks the GC's decisions on one root at a time:
// kept through the grace period, deleted at the first pass after it, kept
// when a new pin comes within it.
func TestGCGraceAndCancel(t *testing.T) {
	ctx := context.Background()
	grace := time.Hour
	for _, tc := range []struct {
		name string
		// setup releases the root at t0 (or not) and returns when the pass
		// comes and whether it must delete.
		setup  func(w *pintest.World, cp *carpark, root cid.Cid) (time.Time, bool)
		delete bool
	}{
		{"held by a pin: kept", func(w *pintest.World, cp *carpark, root cid.Cid) (time.Time, bool) {
			pinRoot(t, w, cp, root, t0)
			return t0.Add(100 * grace), false
		}, false},
		{"released: kept through the grace period", func(w *pintest.World, cp *carpark, root cid.Cid) (time.Time, bool) {
			id := pinRoot(t, w, cp, root, t0)
			remove(t, w, cp, root, id, t0)
			return t0.Add(grace), false
		}, false},
		{"released: deleted after the grace period", func(w *pintest.World, cp *carpark, root cid.Cid) (time.Time, bool) {
			id := pinRoot(t, w, cp, root, t0)
			remove(t, w, cp, root, id, t0)
			return t0.Add(grace + time.Microsecond), true
		}, true},
		{"a new pin within the grace period cancels", func(w *pintest.World, cp *carpark, root cid.Cid) (time.Time, bool) {
			id := pinRoot(t, w, cp, root, t0)
			remove(t, w, cp, root, id, t0)
			request(t, w, root, t0.Add(grace/2))
			return t0.Add(100 * grace), false
		}, false},
		{"a pin dead-lettered releases", func(w *pintest.World, cp *carpark, root cid.Cid) (time.Time, bool) {
			id := pinRoot(t, w, cp, root, t0)
			remove(t, w, cp, root, id, t0)
			dead := request(t, w, root, t0)
			w.Do(dead, t0, "f", func(s pin.State) (pin.Payload, error) { return s.Claim("f", t0, time.Minute) })
			w.Do(dead, t0, "f", func(s pin.State) (pin.Payload, error) { return s.Fail("f", 1, pin.ReasonTooBig, "big", true) })
			w.Do(dead, t0.Add(time.Minute), "decider", func(s pin.State) (pin.Payload, error) { return s.DecideRetry(pin.DefaultRetryPolicy()) })
			return t0.Add(grace + 2*time.Minute), true
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := pintest.New(t)
			w.Follow()
			cp := newCarpark(t)
			root := testRoot(t, 1)
			now, _ := tc.setup(w, cp, root)
			caughtUp(t, w)
			g := newGC(t, w, cp, "gc-1", grace, time.Minute)
			n, err := g.Tick(ctx, now)
			if err != nil {
				t.Fatal(err)
			}
			types, s := rootTypes(t, w, root)
			if tc.delete {
				// The CIDv0 form too: a pin may have named the root so, and
				// the carpark keys the root as requested.
				if v0 := cid.NewCidV0(root.Hash()); cp.callsOf(v0) != 1 {
					t.Errorf("%d deletions of the root's CIDv0 form %s, want 1", cp.callsOf(v0), v0)
				}
				if n != 1 || cp.callsOf(root) != 1 || s.Generation != 1 || s.LastDeleted.Objects != 3 {
					t.Errorf("deleted %d, %d calls, stream %v: want one deletion of 3 objects", n, cp.callsOf(root), types)
				}
				caughtUp(t, w)
				if r, err := w.Views.Root(ctx, root.String()); err == nil && r.HasCar {
					t.Errorf("the views still show a CAR: %+v", r)
				}
				return
			}
			if n != 0 || cp.callsOf(root) != 0 || s.Deleting || s.Generation != 0 {
				t.Errorf("deleted %d, %d calls, stream %v: want nothing", n, cp.callsOf(root), types)
			}
		})
	}
}

// TestGCKilledBetweenDecisionAndDeletion kills a GC while its deletion
// blocks: the decision stays, holds are refused, a second GC waits for the
// lease, then takes the deletion over and finishes it once; holds succeed
// again after it, in a new generation.
func TestGCKilledBetweenDecisionAndDeletion(t *testing.T) {
	w := pintest.New(t)
	w.Follow()
	cp := newCarpark(t)
	root := testRoot(t, 2)
	grace, lease := time.Hour, 10*time.Minute
	id := pinRoot(t, w, cp, root, t0)
	remove(t, w, cp, root, id, t0)
	caughtUp(t, w)

	entered := make(chan struct{})
	var blocked atomic.Bool
	blocked.Store(true)
	cp.block = func(ctx context.Context) error {
		if !blocked.Load() {
			return nil
		}
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	g1 := newGC(t, w, cp, "gc-1", grace, lease)
	decided := t0.Add(grace + time.Minute)
	ctx1, kill := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := g1.Tick(ctx1, decided); done <- err }()
	<-entered
	kill()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the killed GC's pass: %v, want canceled", err)
	}
	blocked.Store(false)
	types, s := rootTypes(t, w, root)
	if !s.Deleting || s.Deleter != "gc-1" || len(types) != 2 {
		t.Fatalf("after the kill: %v, want the hold and gc-1's decision", types)
	}

	ctx := context.Background()
	late := request(t, w, root, decided)
	if err := pinlog.HoldRoot(ctx, w.Log, root, late); !errors.Is(err, pin.ErrRootDeleting) {
		t.Fatalf("a hold while deleting: %v, want ErrRootDeleting", err)
	}
	caughtUp(t, w)
	g2 := newGC(t, w, cp, "gc-2", grace, lease)
	if n, err := g2.Tick(ctx, decided.Add(lease-time.Second)); err != nil || n != 0 {
		t.Fatalf("a second GC within the lease: %d, %v; want it to leave the deletion alone", n, err)
	}
	if n, err := g2.Tick(ctx, decided.Add(lease+time.Second)); err != nil || n != 1 {
		t.Fatalf("a second GC after the lease: %d, %v; want the deletion finished", n, err)
	}
	types, s = rootTypes(t, w, root)
	want := []string{"RootHeld/fetcher", "RootDeleting/gc-1", "RootDeleting/gc-2", "RootDeleted/gc-2"}
	if fmt.Sprint(types) != fmt.Sprint(want) || s.Generation != 1 {
		t.Errorf("stream %v, want %v", types, want)
	}
	if c := cp.callsOf(root); c != 1 {
		t.Errorf("%d completed deletions, want 1", c)
	}
	// The first GC, back, finds nothing to do.
	caughtUp(t, w)
	if n, err := g1.Tick(ctx, decided.Add(2*lease)); err != nil || n != 0 {
		t.Errorf("the first GC again: %d, %v", n, err)
	}
	if err := pinlog.HoldRoot(ctx, w.Log, root, late); err != nil {
		t.Fatalf("a hold after the deletion: %v", err)
	}
	if _, s := rootTypes(t, w, root); !s.Holders[late] || s.Generation != 1 {
		t.Errorf("the new generation: %+v", s)
	}
}

// TestTwoGCsDeleteOnce runs two GCs at once over many released roots:
// each root is deleted once, with one decision and one record.
func TestTwoGCsDeleteOnce(t *testing.T) {
	w := pintest.New(t)
	cp := newCarpark(t)
	var roots []cid.Cid
	for i := range 20 {
		r := testRoot(t, 100+i)
		id := pinRoot(t, w, cp, r, t0)
		remove(t, w, cp, r, id, t0)
		roots = append(roots, r)
	}
	w.Follow()
	caughtUp(t, w)
	ctx := context.Background()
	now := t0.Add(2 * time.Hour)
	var total atomic.Int64
	var wg sync.WaitGroup
	for i := range 2 {
		g := newGC(t, w, cp, fmt.Sprintf("gc-%d", i), time.Hour, time.Hour)
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := g.Tick(ctx, now)
			if err != nil {
				t.Error(err)
			}
			total.Add(int64(n))
		}()
	}
	wg.Wait()
	if total.Load() != int64(len(roots)) {
		t.Errorf("%d deletions recorded, want %d", total.Load(), len(roots))
	}
	for _, r := range roots {
		types, s := rootTypes(t, w, r)
		if cp.callsOf(r) != 1 || len(types) != 3 || s.Generation != 1 {
			t.Errorf("%s: %d deletions, stream %v", r, cp.callsOf(r), types)
		}
	}
}

// racingViews answers the GC's confirmation as the views stood, then
// runs before (once): a pin holds the root after the GC read the root's
// stream and before it appends, so its decision must lose.
type racingViews struct {
	deciders.RootViews
	before func()
}

func (r racingViews) RootReleased(ctx context.Context, root string, before time.Time) (bool, error) {
	ok, err := r.RootViews.RootReleased(ctx, root, before)
	r.before()
	return ok, err
}

// caughtUp waits until the views (followed) reach the log's head.
func caughtUp(t testing.TB, w *pintest.World) {
	t.Helper()
	ctx := context.Background()
	head, err := w.Log.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		cp, err := w.Views.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp >= head {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("views at %d, the log at %d", cp, head)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGCLosesToAHoldDuringItsDecision makes a pin hold the root between
// the GC's read of the root's stream and its append: the append loses, the
// GC decides again on the hold, waits for the views to show its pin, and
// deletes nothing.
func TestGCLosesToAHoldDuringItsDecision(t *testing.T) {
	w := pintest.New(t)
	w.Follow()
	cp := newCarpark(t)
	root := testRoot(t, 3)
	id := pinRoot(t, w, cp, root, t0)
	remove(t, w, cp, root, id, t0)
	caughtUp(t, w)
	ctx := context.Background()
	var repin uuid.UUID
	var once sync.Once
	views := racingViews{RootViews: w.Views}
	views.before = func() {
		once.Do(func() {
			repin = request(t, w, root, t0.Add(time.Minute))
			if err := pinlog.HoldRoot(ctx, w.Log, root, repin); err != nil {
				t.Error(err)
			}
			cp.mu.Lock()
			cp.inUse[root]++
			cp.mu.Unlock()
		})
	}
	g, err := deciders.NewGC(deciders.GCConfig{Config: deciders.Config{Actor: "gc-1"}, Grace: time.Hour}, views, cp, deciders.GCDeps{Log: w.Log, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := g.Tick(ctx, t0.Add(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("pass: %d, %v; want no deletion", n, err)
	}
	types, s := rootTypes(t, w, root)
	if s.Deleting || cp.callsOf(root) != 0 || len(types) != 2 {
		t.Errorf("stream %v, %d deletions: want the two holds and nothing else", types, cp.callsOf(root))
	}
}

// TestGCRemoveAndRepinConcurrently runs pins of a few roots requested,
// held, validated and removed by many goroutines while two GCs pass, on a
// clock that moves a minute at each of their passes: no root is deleted
// while a live pin holds it, a hold refused during a deletion succeeds
// after it, and each deletion decided is done once. Then, on a clock the
// test holds, every root left released is kept through the grace period
// and deleted at the first pass after it.
func TestGCRemoveAndRepinConcurrently(t *testing.T) {
	w := pintest.New(t)
	w.Follow()
	cp := newCarpark(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	grace := 3 * time.Minute
	var clock atomic.Int64
	clock.Store(t0.UnixMicro())
	now := func() time.Time { return time.UnixMicro(clock.Load()).UTC() }
	roots := []cid.Cid{testRoot(t, 10), testRoot(t, 11), testRoot(t, 12)}
	users, rounds := 8, 12
	if testing.Short() {
		rounds = 4
	}
	var refused atomic.Int64
	var wg sync.WaitGroup
	for u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(u), 7))
			for range rounds {
				root := roots[rnd.IntN(len(roots))]
				id := request(t, w, root, now())
				for {
					err := pinlog.HoldRoot(ctx, w.Log, root, id)
					if err == nil {
						break
					}
					if !errors.Is(err, pin.ErrRootDeleting) {
						t.Error(err)
						return
					}
					refused.Add(1)
					time.Sleep(time.Millisecond)
				}
				cp.mu.Lock()
				cp.inUse[root]++
				cp.cars[root] = true // promoted, or there already
				cp.mu.Unlock()
				validate(t, w, id, now())
				time.Sleep(time.Duration(rnd.IntN(3)) * time.Millisecond)
				remove(t, w, cp, root, id, now())
			}
		}()
	}
	gcDone := make(chan struct{})
	var gcs sync.WaitGroup
	for i := range 2 {
		g := newGC(t, w, cp, fmt.Sprintf("gc-%d", i), grace, 1000*time.Hour)
		gcs.Add(1)
		go func() {
			defer gcs.Done()
			for {
				select {
				case <-gcDone:
					return
				default:
				}
				at := time.UnixMicro(clock.Add(time.Minute.Microseconds())).UTC()
				if _, err := g.Tick(ctx, at); err != nil {
					t.Error(err)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(gcDone)
	gcs.Wait()

	// Every deletion decided was done once, by one GC.
	deletions := 0
	for _, r := range roots {
		types, s := rootTypes(t, w, r)
		decided, recorded := 0, 0
		for _, ty := range types {
			switch {
			case len(ty) >= len("RootDeleting") && ty[:len("RootDeleting")] == "RootDeleting":
				decided++
			case len(ty) >= len("RootDeleted") && ty[:len("RootDeleted")] == "RootDeleted":
				recorded++
			}
		}
		if decided != recorded || cp.callsOf(r) != recorded || s.Deleting {
			t.Errorf("%s: %d decisions, %d records, %d deletions, deleting %v", r, decided, recorded, cp.callsOf(r), s.Deleting)
		}
		deletions += recorded
	}
	t.Logf("%d deletions, %d holds refused during one", deletions, refused.Load())

	// What is released now is kept through the grace period, and deleted
	// at the first pass after it (one period later at most).
	caughtUp(t, w)
	g := newGC(t, w, cp, "gc-last", grace, time.Hour)
	period := time.Minute
	for _, r := range roots {
		v, err := w.Views.Root(ctx, r.String())
		if err != nil || !v.HasCar {
			continue // deleted already
		}
		if v.Live != 0 {
			t.Fatalf("%s: %d live pins after every removal", r, v.Live)
		}
		if ok, err := g.Collect(ctx, r.String(), v.ReleasedAt.Add(grace), 0); err != nil || ok {
			t.Errorf("%s released at %v: deleted at the end of the grace period (%v, %v)", r, v.ReleasedAt, ok, err)
		}
		if ok, err := g.Collect(ctx, r.String(), v.ReleasedAt.Add(grace+period), 0); err != nil || !ok {
			t.Errorf("%s released at %v: kept one period past the grace period (%v, %v)", r, v.ReleasedAt, ok, err)
		}
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if len(cp.cars) != 0 {
		t.Errorf("roots kept after every pin was removed and the grace period passed: %v", cp.cars)
	}
}
