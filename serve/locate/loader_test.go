package locate_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipld/go-car/v2/index"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/serve/locate"
	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
	"github.com/pickup-ipfs/pickup/serve/locate/sqlite"
)

var errNotFound = locatetest.ErrNotFound

// objects is a carpark in memory (locatetest.Objects) that lists the CARs
// put. failReads makes that many reads fail first, as a carpark that is
// down for a while.
type objects struct {
	*locatetest.Objects
	mu        sync.Mutex
	cars      []locate.CAR
	failReads atomic.Int64
	reads     atomic.Int64
}

func newObjects() *objects { return &objects{Objects: locatetest.NewObjects()} }

func (o *objects) put(car locatetest.Car, index []byte) {
	o.Put(car.CAR.Key, car.Bytes)
	if index != nil {
		o.Put(car.CAR.Key+".idx", index)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cars = append(o.cars, car.CAR)
}

func (o *objects) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	o.reads.Add(1)
	if o.failReads.Add(-1) >= 0 {
		return nil, errors.New("carpark unavailable")
	}
	return o.Objects.ReadRange(ctx, key, offset, length)
}

// ListCars lists the CARs put, in key order.
func (o *objects) ListCars(ctx context.Context, after string, fn func(locate.CAR) error) error {
	o.mu.Lock()
	cars := append([]locate.CAR(nil), o.cars...)
	o.mu.Unlock()
	sort.Slice(cars, func(i, j int) bool { return cars[i].Key < cars[j].Key })
	for _, c := range cars {
		if c.Key > after {
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	return nil
}

type world struct {
	t     *testing.T
	dir   string
	log   *embedded.Store
	cars  *objects
	store *sqlite.Store
}

func newWorld(t *testing.T) *world {
	dir := t.TempDir()
	log, err := embedded.Open(context.Background(), filepath.Join(dir, "log.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return &world{t: t, dir: dir, log: log, cars: newObjects(), store: openStore(t, filepath.Join(dir, "locate.db"))}
}

func openStore(t *testing.T, path string) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pin runs a pin of car's root through pinlog to CarUploaded, then
// appends its CarValidated naming indexKey (none when "") with the size
// and SHA-256 of car.Index: the scene of a pin whose CAR and index are in
// the carpark.
func (w *world) pin(car locatetest.Car, indexKey string) eventlog.Position {
	w.t.Helper()
	ctx := context.Background()
	id := uuid.New()
	c := pinlog.New(w.log, nil)
	do := func(decide func(pin.State) (pin.Payload, error)) pin.State {
		w.t.Helper()
		done, err := c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: "test", Decide: func(s pin.State) (pinlog.Decision, error) {
			p, err := decide(s)
			return pinlog.Decision{Payload: p}, err
		}})
		if err != nil {
			w.t.Fatal(err)
		}
		return done.State
	}
	do(func(s pin.State) (pin.Payload, error) {
		return pin.Request(s, pin.Requested{RequestID: id, Tenant: "alice", CID: car.CAR.Root.String(), Created: time.Now()})
	})
	do(func(s pin.State) (pin.Payload, error) { return s.Claim("fetcher-1", time.Now(), time.Minute) })
	s := do(func(s pin.State) (pin.Payload, error) {
		return s.Upload(pin.CarUploaded{Attempt: 1, Fetcher: "fetcher-1", Key: "staging/" + id.String(), Bytes: car.CAR.Bytes, Blocks: int64(len(car.Blocks)), CarCID: car.CAR.CarCID.String()})
	})
	v := pin.CarValidated{Attempt: 1, Key: car.CAR.Key, Bytes: car.CAR.Bytes, CarCID: car.CAR.CarCID.String(), Index: indexKey}
	if indexKey != "" {
		// What the validator read back: the index as written.
		sum := sha256.Sum256(car.Index)
		v.IndexBytes, v.IndexSHA256 = int64(len(car.Index)), hex.EncodeToString(sum[:])
	}
	v, err := s.Validate(v)
	if err != nil {
		w.t.Fatal(err)
	}
	// By hand, not through pinlog.Commit: the test stands for the
	// validator and needs the append's position.
	prop, err := pinlog.Propose(v, pinlog.EventID(s, "validator", v, ""), eventlog.Metadata{Actor: "validator", CorrelationID: id})
	if err != nil {
		w.t.Fatal(err)
	}
	res, err := w.log.Append(ctx, pin.Stream(id), pinlog.Expected(s), prop)
	if err != nil {
		w.t.Fatal(err)
	}
	return res.Position
}

// pinCar makes a CAR of n blocks, puts it and its index in the carpark,
// and pins it.
func (w *world) pinCar(seed uint64, n int) (locatetest.Car, eventlog.Position) {
	car := locatetest.NewCar(w.t, seed, n)
	w.cars.put(car, car.Index)
	return car, w.pin(car, car.CAR.Key+".idx")
}

func (w *world) loader(cfg locate.LoaderConfig) *locate.Loader {
	w.t.Helper()
	if cfg.Log == nil {
		cfg.Log = w.log
	}
	if cfg.Objects == nil {
		cfg.Objects = w.cars
	}
	if cfg.Store == nil {
		cfg.Store = w.store
	}
	cfg.IsNotFound = func(err error) bool { return errors.Is(err, errNotFound) }
	cfg.RetryDelay = time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{w.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := locate.NewLoader(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return l
}

type testWriter struct{ t *testing.T }

func (tw testWriter) Write(p []byte) (int, error) {
	tw.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// run starts l and returns its stop, which waits for it to return.
func run(t *testing.T, l *locate.Loader) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitFor waits until the loader's stats satisfy ok and its store's
// checkpoint reaches pos.
func waitFor(t *testing.T, l *locate.Loader, s locate.Store, pos eventlog.Position, ok func(locate.LoaderStats) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp, err := s.Checkpoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st := l.Stats(); ok(st) && cp >= pos {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("loader at checkpoint %d (want %d), stats %+v", cp, pos, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The loader adds every validated CAR, and a new loader on the same store
// resumes from the checkpoint: it never meets the first CARs again.
func TestLoaderFollowsAndResumes(t *testing.T) {
	w := newWorld(t)
	var first []locatetest.Car
	var pos eventlog.Position
	for i := range 3 {
		var car locatetest.Car
		car, pos = w.pinCar(uint64(100+i), 30)
		first = append(first, car)
	}
	l := w.loader(locate.LoaderConfig{})
	stop := run(t, l)
	waitFor(t, l, w.store, pos, func(s locate.LoaderStats) bool { return s.Added == 3 })
	// Live: a pin after the loader caught up.
	late, pos := w.pinCar(103, 10)
	waitFor(t, l, w.store, pos, func(s locate.LoaderStats) bool { return s.Added == 4 })
	stop()
	for _, c := range append(first, late) {
		locatetest.CheckCar(t, w.store, c)
	}

	// Restarted, on the same file: only what came after the checkpoint.
	next, pos := w.pinCar(104, 10)
	store := openStore(t, w.store.Path())
	again := w.loader(locate.LoaderConfig{Store: store})
	run(t, again)
	waitFor(t, again, store, pos, func(s locate.LoaderStats) bool { return s.Added == 1 })
	if st := again.Stats(); st.Known != 0 || st.Added != 1 {
		t.Fatalf("restarted loader: %+v, want 1 added and nothing met again", st)
	}
	locatetest.CheckCar(t, store, next)
}

// A bad, missing or unnamed index is skipped and counted, and the loader
// goes on; a carpark that fails for a while is read again.
func TestLoaderSkipsBadIndexes(t *testing.T) {
	w := newWorld(t)
	good, _ := w.pinCar(200, 20)

	truncated := locatetest.NewCar(t, 201, 20)
	w.cars.put(truncated, truncated.Index[:len(truncated.Index)-5])
	w.pin(truncated, truncated.CAR.Key+".idx")

	missing := locatetest.NewCar(t, 202, 5)
	w.cars.put(missing, nil)
	w.pin(missing, missing.CAR.Key+".idx")

	unnamed := locatetest.NewCar(t, 203, 5)
	w.cars.put(unnamed, unnamed.Index)
	w.pin(unnamed, "")

	// An index of another, bigger CAR: its offsets do not fit this one.
	big := locatetest.NewCar(t, 204, 200)
	small := locatetest.NewCar(t, 205, 2)
	w.cars.put(small, big.Index)
	w.pin(small, small.CAR.Key+".idx")

	// Replaced after it was validated by a well-formed index of the same
	// CAR that leaves its last block out: only its size and SHA-256 tell.
	replaced := locatetest.NewCar(t, 207, 20)
	var recs []index.Record
	for i, e := range replaced.Entries(t)[:19] {
		recs = append(recs, index.Record{Cid: replaced.Blocks[i].Cid(), Offset: uint64(e.Offset)})
	}
	short := index.NewMultihashSorted()
	if err := short.Load(recs); err != nil {
		t.Fatal(err)
	}
	var shortBytes bytes.Buffer
	if _, err := index.WriteTo(short, &shortBytes); err != nil {
		t.Fatal(err)
	}
	if _, err := locate.Entries(bytes.NewReader(shortBytes.Bytes()), replaced.CAR.Bytes); err != nil {
		t.Fatalf("the shorter index is refused by Entries already: %v", err)
	}
	w.cars.put(replaced, shortBytes.Bytes())
	w.pin(replaced, replaced.CAR.Key+".idx")

	last, pos := w.pinCar(206, 20)
	w.cars.failReads.Store(3)
	l := w.loader(locate.LoaderConfig{})
	run(t, l)
	waitFor(t, l, w.store, pos, func(s locate.LoaderStats) bool { return s.Added == 2 })
	want := locate.LoaderStats{Added: 2, BadIndex: 3, Missing: 1, NoIndex: 1}
	if st := l.Stats(); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	locatetest.CheckCar(t, w.store, good)
	locatetest.CheckCar(t, w.store, last)
	for _, c := range []locatetest.Car{truncated, missing, unnamed, small, replaced} {
		if has, err := w.store.Has(context.Background(), c.CAR.CarCID); err != nil || has {
			t.Fatalf("skipped CAR recorded: %v, %v", has, err)
		}
	}
}

// Rebuild makes the lookup from the carpark alone, sets the checkpoint to
// the log's head, and is resumed by running it again.
func TestRebuild(t *testing.T) {
	w := newWorld(t)
	var cars []locatetest.Car
	var pos eventlog.Position
	for i := range 5 {
		var car locatetest.Car
		car, pos = w.pinCar(uint64(300+i), 20)
		cars = append(cars, car)
	}
	bad := locatetest.NewCar(t, 310, 5)
	w.cars.put(bad, []byte("not an index"))
	l := w.loader(locate.LoaderConfig{})

	// Interrupted after two CARs: a second run completes it.
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := l.Rebuild(ctx, listerFunc(func(ctx context.Context, after string, fn func(locate.CAR) error) error {
		return w.cars.ListCars(ctx, after, func(c locate.CAR) error {
			if n++; n == 3 {
				cancel()
			}
			return fn(c)
		})
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Rebuild: %v", err)
	}
	st, err := l.Rebuild(context.Background(), w.cars)
	if err != nil {
		t.Fatal(err)
	}
	if st.Added+st.Known != 5 || st.Known < 1 || st.BadIndex != 1 {
		t.Fatalf("second Rebuild: %+v, want the 5 CARs (some known) and 1 bad index", st)
	}
	for _, c := range cars {
		locatetest.CheckCar(t, w.store, c)
	}
	if cp, err := w.store.Checkpoint(context.Background()); err != nil || cp != pos {
		t.Fatalf("checkpoint after Rebuild %d, %v; want the head %d", cp, err, pos)
	}
}

type listerFunc func(ctx context.Context, after string, fn func(locate.CAR) error) error

func (f listerFunc) ListCars(ctx context.Context, after string, fn func(locate.CAR) error) error {
	return f(ctx, after, fn)
}

// failingLog fails its first Subscribe after handing one batch: a log
// whose connection drops.
type failingLog struct {
	*embedded.Store
	failed atomic.Bool
}

var errLogDown = errors.New("log connection lost")

func (f *failingLog) Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error {
	if f.failed.CompareAndSwap(false, true) {
		err := f.Store.Subscribe(ctx, after, filter, func(batch []eventlog.Event) error {
			if err := handle(batch[:1]); err != nil {
				return err
			}
			return errLogDown
		})
		if errors.Is(err, errLogDown) {
			return err
		}
		return fmt.Errorf("first subscription: %w", err)
	}
	return f.Store.Subscribe(ctx, after, filter, handle)
}

// The loader follows again, from its checkpoint, after the log fails.
func TestLoaderResumesAfterTheLogFails(t *testing.T) {
	w := newWorld(t)
	var cars []locatetest.Car
	var pos eventlog.Position
	for i := range 3 {
		var car locatetest.Car
		car, pos = w.pinCar(uint64(400+i), 10)
		cars = append(cars, car)
	}
	log := &failingLog{Store: w.log}
	l := w.loader(locate.LoaderConfig{Log: log})
	run(t, l)
	waitFor(t, l, w.store, pos, func(s locate.LoaderStats) bool { return s.Added == 3 })
	if !log.failed.Load() {
		t.Fatal("the log never failed")
	}
	if st := l.Stats(); st.Known != 0 {
		t.Fatalf("after resuming: %+v, want nothing met twice (the checkpoint was set before the failure)", st)
	}
	for _, c := range cars {
		locatetest.CheckCar(t, w.store, c)
	}
}

// deleteRoot appends what the garbage collector records when it has deleted
// a root's objects.
func (w *world) deleteRoot(car locatetest.Car) eventlog.Position {
	w.t.Helper()
	prop, err := pinlog.ProposeRoot(pin.RootDeleted{At: time.Now(), Objects: 3}, uuid.New(), eventlog.Metadata{Actor: "gc"})
	if err != nil {
		w.t.Fatal(err)
	}
	res, err := w.log.Append(context.Background(), pin.RootStream(pinlog.CanonicalRoot(car.CAR.Root)), eventlog.Any, prop)
	if err != nil {
		w.t.Fatal(err)
	}
	return res.Position
}

// A root the collector deleted is forgotten: its CAR's blocks are no
// longer located, while other roots' stay; pinned and validated again, it
// is located again.
func TestLoaderForgetsDeletedRoots(t *testing.T) {
	w := newWorld(t)
	gone, _ := w.pinCar(300, 25)
	kept, pos := w.pinCar(301, 25)
	l := w.loader(locate.LoaderConfig{})
	run(t, l)
	waitFor(t, l, w.store, pos, func(s locate.LoaderStats) bool { return s.Added == 2 })

	pos = w.deleteRoot(gone)
	waitFor(t, l, w.store, pos, func(s locate.LoaderStats) bool { return s.Removed == 1 })
	for _, b := range gone.Blocks {
		locs, err := w.store.Locate(context.Background(), b.Cid().Hash())
		if err != nil {
			t.Fatal(err)
		}
		if len(locs) != 0 {
			t.Fatalf("block %s of the deleted root is still located: %v", b.Cid(), locs)
		}
	}
	if ok, err := w.store.Has(context.Background(), gone.CAR.CarCID); err != nil || ok {
		t.Fatalf("deleted root's CAR recorded: %v, %v", ok, err)
	}
	locatetest.CheckCar(t, w.store, kept)

	// The same root pinned again: its CAR (the same bytes) is back.
	pos = w.pin(gone, gone.CAR.Key+".idx")
	waitFor(t, l, w.store, pos, func(s locate.LoaderStats) bool { return s.Added == 3 })
	locatetest.CheckCar(t, w.store, gone)
}
