package locatetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/serve/locate"
)

// Opener makes one new, empty lookup for a test and returns how to open
// it: each call opens another Store on the same data (as another process
// would), closed when the test ends.
type Opener func(t *testing.T) func(t *testing.T) locate.Store

// Run runs the conformance suite against the backend fresh makes.
func Run(t *testing.T, fresh Opener) {
	cases := []struct {
		name string
		run  func(t *testing.T, open func(t *testing.T) locate.Store)
	}{
		{"Empty", testEmpty},
		{"AddLocate", testAddLocate},
		{"AddTwice", testAddTwice},
		{"SharedBlocks", testShared},
		{"Remove", testRemove},
		{"Invalid", testInvalid},
		{"Checkpoint", testCheckpoint},
		{"Cancelled", testCancelled},
		{"Large", testLarge},
		{"Reopen", testReopen},
		{"TwoStores", testTwoStores},
		{"Concurrent", testConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, fresh(t))
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustAdd(t *testing.T, s locate.Store, car locate.CAR, es []locate.Entry) {
	t.Helper()
	if err := s.Add(ctxT(t), car, es); err != nil {
		t.Fatal(err)
	}
}

func mustLocate(t *testing.T, s locate.Store, mh multihash.Multihash) []locate.Location {
	t.Helper()
	locs, err := s.Locate(ctxT(t), mh)
	if err != nil {
		t.Fatal(err)
	}
	return locs
}

func mustHas(t *testing.T, s locate.Store, c cid.Cid, want bool) {
	t.Helper()
	has, err := s.Has(ctxT(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if has != want {
		t.Fatalf("Has(%s) = %v, want %v", c, has, want)
	}
}

// CheckCar fails the test unless every block of car is located in it, and
// the one range read of each location holds the block.
func CheckCar(t *testing.T, s locate.Store, car Car) {
	t.Helper()
	for _, b := range car.Blocks {
		locs := mustLocate(t, s, b.Cid().Hash())
		found := false
		for _, l := range locs {
			if !l.CarCID.Equals(car.CAR.CarCID) {
				continue
			}
			found = true
			if !l.Root.Equals(car.CAR.Root) || l.Key != car.CAR.Key {
				t.Fatalf("block %s: location %+v, want root %s and key %s", b.Cid(), l, car.CAR.Root, car.CAR.Key)
			}
			if l.Offset <= 0 || l.Length <= 0 || l.Offset+l.Length > int64(len(car.Bytes)) {
				t.Fatalf("block %s: section [%d, +%d) outside the CAR of %d bytes", b.Cid(), l.Offset, l.Length, len(car.Bytes))
			}
			c, data, err := locate.Block(car.Bytes[l.Offset:l.Offset+l.Length], b.Cid().Hash())
			if err != nil {
				t.Fatalf("block %s at %d: %v", b.Cid(), l.Offset, err)
			}
			if !c.Equals(b.Cid()) || string(data) != string(b.RawData()) {
				t.Fatalf("block %s at %d: read %s", b.Cid(), l.Offset, c)
			}
		}
		if !found {
			t.Fatalf("block %s: not located in CAR %s (%d locations)", b.Cid(), car.CAR.CarCID, len(locs))
		}
	}
}

func testEmpty(t *testing.T, open func(t *testing.T) locate.Store) {
	s := open(t)
	car := NewCar(t, 1, 1)
	if locs := mustLocate(t, s, car.Blocks[0].Cid().Hash()); len(locs) != 0 {
		t.Fatalf("empty lookup located %v", locs)
	}
	mustHas(t, s, car.CAR.CarCID, false)
	if pos, err := s.Checkpoint(ctxT(t)); err != nil || pos != 0 {
		t.Fatalf("Checkpoint = %d, %v; want 0", pos, err)
	}
	if err := s.Remove(ctxT(t), car.CAR.CarCID); err != nil {
		t.Fatalf("Remove of an unknown CAR: %v", err)
	}
}

func testAddLocate(t *testing.T, open func(t *testing.T) locate.Store) {
	s := open(t)
	car := NewCar(t, 2, 200)
	mustAdd(t, s, car.CAR, car.Entries(t))
	mustHas(t, s, car.CAR.CarCID, true)
	CheckCar(t, s, car)
	for _, b := range car.Blocks {
		if n := len(mustLocate(t, s, b.Cid().Hash())); n != 1 {
			t.Fatalf("block %s: %d locations, want 1", b.Cid(), n)
		}
	}
	other := NewCar(t, 3, 1)
	if locs := mustLocate(t, s, other.Blocks[0].Cid().Hash()); len(locs) != 0 {
		t.Fatalf("a block of no CAR located at %v", locs)
	}
}

func testAddTwice(t *testing.T, open func(t *testing.T) locate.Store) {
	s := open(t)
	car := NewCar(t, 4, 50)
	es := car.Entries(t)
	mustAdd(t, s, car.CAR, es)
	mustAdd(t, s, car.CAR, es)
	// Twice in one Add (a block stored twice in a CAR): kept once.
	twice := NewCar(t, 5, 3)
	tes := twice.Entries(t)
	dup := append(tes, locate.Entry{Multihash: tes[0].Multihash, Offset: tes[len(tes)-1].Offset, Length: tes[len(tes)-1].Length})
	mustAdd(t, s, twice.CAR, dup)
	for _, c := range []Car{car, twice} {
		for _, b := range c.Blocks {
			if n := len(mustLocate(t, s, b.Cid().Hash())); n != 1 {
				t.Fatalf("block %s: %d locations after adding its CAR twice, want 1", b.Cid(), n)
			}
		}
		CheckCar(t, s, c)
	}
}

func testShared(t *testing.T, open func(t *testing.T) locate.Store) {
	s := open(t)
	a := NewCar(t, 6, 20)
	b := NewCar(t, 7, 20, a.Blocks[3], a.Blocks[7])
	mustAdd(t, s, a.CAR, a.Entries(t))
	mustAdd(t, s, b.CAR, b.Entries(t))
	CheckCar(t, s, a)
	CheckCar(t, s, b)
	if n := len(mustLocate(t, s, a.Blocks[3].Cid().Hash())); n != 2 {
		t.Fatalf("a block of two CARs: %d locations, want 2", n)
	}
}

func testRemove(t *testing.T, open func(t *testing.T) locate.Store) {
	s := open(t)
	a := NewCar(t, 8, 20)
	b := NewCar(t, 9, 20, a.Blocks[1])
	mustAdd(t, s, a.CAR, a.Entries(t))
	mustAdd(t, s, b.CAR, b.Entries(t))
	if err := s.Remove(ctxT(t), a.CAR.CarCID); err != nil {
		t.Fatal(err)
	}
	mustHas(t, s, a.CAR.CarCID, false)
	mustHas(t, s, b.CAR.CarCID, true)
	if locs := mustLocate(t, s, a.Blocks[0].Cid().Hash()); len(locs) != 0 {
		t.Fatalf("a block of a removed CAR located at %v", locs)
	}
	locs := mustLocate(t, s, a.Blocks[1].Cid().Hash())
	if len(locs) != 1 || !locs[0].CarCID.Equals(b.CAR.CarCID) {
		t.Fatalf("a shared block after one CAR's removal: %v, want only CAR %s", locs, b.CAR.CarCID)
	}
	CheckCar(t, s, b)
	if err := s.Remove(ctxT(t), a.CAR.CarCID); err != nil {
		t.Fatalf("Remove again: %v", err)
	}
	// Added again after its removal: all there again.
	mustAdd(t, s, a.CAR, a.Entries(t))
	CheckCar(t, s, a)
}

func testInvalid(t *testing.T, open func(t *testing.T) locate.Store) {
	s := open(t)
	car := NewCar(t, 10, 5)
	es := car.Entries(t)
	past := append([]locate.Entry{}, es...)
	past[2].Length = car.CAR.Bytes
	noRoot := car.CAR
	noRoot.Root = cid.Undef
	noKey := car.CAR
	noKey.Key = ""
	for _, c := range []struct {
		name    string
		car     locate.CAR
		entries []locate.Entry
	}{
		{"no root", noRoot, es},
		{"no key", noKey, es},
		{"no CAR CID", locate.CAR{Root: car.CAR.Root, Key: "k", Bytes: 10}, nil},
		{"section past the end", car.CAR, past},
		{"not a multihash", car.CAR, []locate.Entry{{Multihash: multihash.Multihash{0x12, 0x20, 1}, Offset: 60, Length: 10}}},
		{"offset 0", car.CAR, []locate.Entry{{Multihash: es[0].Multihash, Offset: 0, Length: 10}}},
	} {
		err := s.Add(ctxT(t), c.car, c.entries)
		if !errors.Is(err, locate.ErrInvalid) {
			t.Errorf("%s: Add = %v, want ErrInvalid", c.name, err)
		}
	}
	mustHas(t, s, car.CAR.CarCID, false)
	if locs := mustLocate(t, s, es[0].Multihash); len(locs) != 0 {
		t.Fatalf("a refused Add left %v", locs)
	}
}

func testCheckpoint(t *testing.T, open func(t *testing.T) locate.Store) {
	s := open(t)
	ctx := ctxT(t)
	for _, step := range []struct{ set, want uint64 }{{5, 5}, {3, 5}, {10, 10}, {10, 10}} {
		if err := s.SetCheckpoint(ctx, eventlogPosition(step.set)); err != nil {
			t.Fatal(err)
		}
		pos, err := s.Checkpoint(ctx)
		if err != nil || uint64(pos) != step.want {
			t.Fatalf("after SetCheckpoint(%d): Checkpoint = %d, %v; want %d", step.set, pos, err, step.want)
		}
	}
}

func testCancelled(t *testing.T, open func(t *testing.T) locate.Store) {
	s := open(t)
	car, es := Synthetic(1, 50_000)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- s.Add(ctx, car, es) }()
	time.Sleep(5 * time.Millisecond)
	cancel()
	err := <-done
	has, herr := s.Has(ctxT(t), car.CarCID)
	if herr != nil {
		t.Fatal(herr)
	}
	// Cancelled in time, nothing is written; done first, all of it is.
	if (err == nil) != has {
		t.Fatalf("Add cancelled: error %v, and the CAR recorded: %v", err, has)
	}
	n := len(mustLocate(t, s, es[len(es)-1].Multihash))
	if has != (n == 1) {
		t.Fatalf("Add cancelled (%v): the CAR recorded %v, its last block located %d times", err, has, n)
	}
	mustAdd(t, s, car, es)
	for _, i := range []int{0, len(es) / 2, len(es) - 1} {
		if n := len(mustLocate(t, s, es[i].Multihash)); n != 1 {
			t.Fatalf("block %d after Add completed: %d locations", i, n)
		}
	}
}

func testLarge(t *testing.T, open func(t *testing.T) locate.Store) {
	s := open(t)
	car, es := Synthetic(2, 100_000)
	mustAdd(t, s, car, es)
	for _, i := range []int{0, 1, 4095, 4096, 65535, 65536, len(es) - 1} {
		locs := mustLocate(t, s, es[i].Multihash)
		if len(locs) != 1 || locs[0].Offset != es[i].Offset || locs[0].Length != es[i].Length || !locs[0].CarCID.Equals(car.CarCID) {
			t.Fatalf("block %d of a large CAR: %+v, want offset %d length %d", i, locs, es[i].Offset, es[i].Length)
		}
	}
}

func testReopen(t *testing.T, open func(t *testing.T) locate.Store) {
	s := open(t)
	car := NewCar(t, 11, 30)
	mustAdd(t, s, car.CAR, car.Entries(t))
	if err := s.SetCheckpoint(ctxT(t), 42); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again := open(t)
	CheckCar(t, again, car)
	if pos, err := again.Checkpoint(ctxT(t)); err != nil || pos != 42 {
		t.Fatalf("Checkpoint after reopening = %d, %v; want 42", pos, err)
	}
}

// testTwoStores: two Stores on one lookup (two processes' worth) add the
// same CARs at once; each CAR is recorded once, and both read it.
func testTwoStores(t *testing.T, open func(t *testing.T) locate.Store) {
	a, b := open(t), open(t)
	cars := make([]Car, 6)
	for i := range cars {
		cars[i] = NewCar(t, uint64(20+i), 40)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(cars))
	for _, s := range []locate.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range cars {
				if err := s.Add(ctxT(t), c.CAR, c.Entries(t)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, s := range []locate.Store{a, b} {
		for _, c := range cars {
			CheckCar(t, s, c)
			if n := len(mustLocate(t, s, c.Blocks[0].Cid().Hash())); n != 1 {
				t.Fatalf("CAR added by two stores: %d locations, want 1", n)
			}
		}
	}
}

func testConcurrent(t *testing.T, open func(t *testing.T) locate.Store) {
	s := open(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				car, es := Synthetic(1000+10*w+i, 500)
				if err := s.Add(ctxT(t), car, es); err != nil {
					errs <- err
					return
				}
				for _, j := range []int{0, 250, 499} {
					locs, err := s.Locate(ctxT(t), es[j].Multihash)
					if err != nil {
						errs <- err
						return
					}
					if len(locs) != 1 {
						errs <- fmt.Errorf("CAR %d block %d: %d locations", 1000+10*w+i, j, len(locs))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func eventlogPosition(p uint64) eventlog.Position { return eventlog.Position(p) }
