// Package carstoretest is the conformance suite of the CAR stores: the
// behaviour a fetcher relies on, written once and run against every store
// (S3 on a real S3-compatible server, and the local directory).
//
// A store's test package runs it with
//
//	func TestConformance(t *testing.T) { carstoretest.Run(t, backend) }
//
// Every case gets a fresh, empty store from the backend, so that it can
// check that nothing is left behind by listing the storage itself.
package carstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
)

// Store is what the suite exercises: the methods every CAR store has.
type Store interface {
	Stage(ctx context.Context, key string, meta carstore.Metadata) (carstore.Upload, error)
	Promote(ctx context.Context, stagedKey string, want carstore.Expected) (carstore.Stored, error)
	Stat(ctx context.Context, root, carCID cid.Cid) (carstore.Stored, bool, error)
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	OpenUploads(ctx context.Context) ([]carstore.OpenUpload, error)
	Discard(ctx context.Context, requestID string) (int, error)
	DiscardThrough(ctx context.Context, requestID string, through int) (int, error)
	DiscardThroughKeeping(ctx context.Context, requestID string, through, keep int) (int, error)
	Sweep(ctx context.Context, through func(ctx context.Context, requestID string) (int, error)) (int, error)
	PutIndex(ctx context.Context, st carstore.Stored, index []byte) (string, error)
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	DeleteRoot(ctx context.Context, root cid.Cid) (int, error)
	ListCars(ctx context.Context, after string, fn func(carstore.Stored) error) error
}

// Tuning is the sizing a case asks of a store, so that multipart paths run
// with small objects. A store without such knobs ignores it.
type Tuning struct {
	PartSize    int64
	Concurrency int
}

// Instance is a store under test, and ways to look at and tamper with its
// storage behind its back.
type Instance struct {
	Store Store
	// Keys lists, from the storage itself, sorted, the keys of the CARs in
	// an area: in the carpark, what is visible there (CARs, their indexes
	// and the roots' mappings; not the directory store's metadata files);
	// in staging, the
	// staging keys of CARs staged (completed) and not yet promoted.
	Keys func(t *testing.T, area carstore.Area) []string
	// Overwrite replaces the bytes staged at key with data, as a faulty
	// disk or a stray writer would (data fits in one part).
	Overwrite func(t *testing.T, stagedKey string, data []byte)
	// Location is where the store keeps its storage, for Backend.Open.
	Location string
	// RemovesDeadUploads says that opening the store again removes the
	// unfinished uploads of processes that died, before any Sweep (the
	// directory store does; S3 knows no process).
	RemovesDeadUploads bool
}

// Backend makes stores for the suite.
type Backend struct {
	// New returns a fresh, empty store for one test.
	New func(t *testing.T, tune Tuning) Instance
	// Name names the backend to the writer process of the kill cases
	// (Main).
	Name string
	// Open opens a store on an Instance's Location again, with its
	// tuning, as a process that starts does: in this process, or in the
	// writer process the kill cases start (and kill). Without it, those
	// cases are skipped.
	Open func(ctx context.Context, location string) (Store, error)
}

// smallParts makes multipart uploads happen with small objects: 5 MiB is
// the smallest part S3 takes.
var smallParts = Tuning{PartSize: 5 * carstore.MiB, Concurrency: 3}

// Run runs every case of the suite against b.
func Run(t *testing.T, b Backend) {
	cases := []struct {
		name string
		run  func(*testing.T, Backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"ManyParts", testManyParts},
		{"AbortLeavesNothing", testAbort},
		{"AbortAfterCompleteDeletesStaged", testAbortAfterComplete},
		{"ReaderFailsMidStream", testReaderFails},
		{"ContextCancelledMidStream", testContextCancelled},
		{"AbortUnblocksWrite", testAbortUnblocksWrite},
		{"OpenUploadsListsUnfinished", testOpenUploads},
		{"PromoteRejectsMismatch", testPromoteMismatch},
		{"PromoteTwice", testPromoteTwice},
		{"PromoteWhenTheCarparkHasIt", testPromoteAfterCrash},
		{"SameCarFromTwoRequests", testSameCarTwoRequests},
		{"StatAndOpenAbsent", testAbsent},
		{"ConcurrentUploads", testConcurrent},
		{"InvalidArguments", testInvalid},
		{"DiscardCleansUpEarlierAttempts", testDiscard},
		{"DiscardThroughKeepsLaterAttempts", testDiscardThrough},
		{"DiscardThroughKeepsTheKeptAttempt", testDiscardThroughKeeping},
		{"KilledWriterSweptOnStart", testKilledWriterSwept},
		{"LiveWriterInAnotherProcessKept", testLiveWriterKept},
		{"PutIndex", testPutIndex},
		{"ReadRange", testReadRange},
		{"ListCars", testListCars},
		{"DeleteRoot", testDeleteRoot},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, b) })
	}
}

// car is a test CAR: random bytes (the stores never parse them) and what a
// fetcher would record of them.
type car struct {
	data []byte
	cid  cid.Cid
	meta carstore.Metadata
}

func newCar(seed uint64, size int) car {
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	_, _ = r.Read(data)
	sum := sha256.Sum256(data)
	root, _ := mh.Sum(fmt.Appendf(nil, "root %d", seed), mh.SHA2_256, -1)
	return car{
		data: data,
		cid:  carstore.CarCID(sum[:]),
		meta: carstore.Metadata{Root: cid.NewCidV1(cid.DagProtobuf, root), RequestID: fmt.Sprintf("req-%d", seed)},
	}
}

func (c car) expected(st carstore.Staged) carstore.Expected {
	return carstore.Expected{Bytes: int64(len(c.data)), CarCID: c.cid, Metadata: c.meta, Checksum: st.Checksum}
}

// otherCID is a CAR CID of bytes no test writes.
func otherCID() cid.Cid {
	sum := sha256.Sum256([]byte("no such CAR"))
	return carstore.CarCID(sum[:])
}

// writeChunks writes data in chunks of uneven sizes, as a CAR writer does
// (one block at a time), so that writes straddle part boundaries.
func writeChunks(w io.Writer, data []byte) error {
	r := rand.New(rand.NewPCG(1, 2))
	for len(data) > 0 {
		n := min(len(data), 1+r.IntN(300<<10))
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// stage uploads c under key and completes it.
func stage(t *testing.T, s Store, key string, c car) carstore.Staged {
	t.Helper()
	ctx := context.Background()
	up, err := s.Stage(ctx, key, c.meta)
	if err != nil {
		t.Fatalf("stage %s: %v", key, err)
	}
	if err := writeChunks(up, c.data); err != nil {
		t.Fatalf("write %s: %v", key, err)
	}
	st, err := up.Complete(ctx)
	if err != nil {
		t.Fatalf("complete %s: %v", key, err)
	}
	return st
}

func promote(t *testing.T, s Store, key string, want carstore.Expected) carstore.Stored {
	t.Helper()
	st, err := s.Promote(context.Background(), key, want)
	if err != nil {
		t.Fatalf("promote %s: %v", key, err)
	}
	return st
}

// checkInCarpark checks that the carpark holds exactly c's bytes with c's
// metadata at key, where Promote said it put them: its CarKey or its
// RootKey, as the store lays the carpark out.
func checkInCarpark(t *testing.T, s Store, key string, c car) {
	t.Helper()
	ctx := context.Background()
	if key != carstore.CarKey(c.cid) && key != carstore.RootKey(c.meta.Root) {
		t.Fatalf("CAR %s of root %s at %s, neither its CarKey nor its RootKey", c.cid, c.meta.Root, key)
	}
	st, ok, err := s.Stat(ctx, c.meta.Root, c.cid)
	if err != nil || !ok {
		t.Fatalf("stat %s: present %v, %v", key, ok, err)
	}
	want := carstore.Stored{
		Key: key, Bytes: int64(len(c.data)), CarCID: c.cid,
		Root: c.meta.Root, RequestID: c.meta.RequestID, Structure: carstore.StructureComplete,
	}
	if st != want {
		t.Fatalf("stat %s:\n got %+v\nwant %+v", key, st, want)
	}
	r, err := s.Open(ctx, key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", c.cid, err)
	}
	if !bytes.Equal(got, c.data) {
		t.Fatalf("carpark %s holds %d bytes that differ from the %d uploaded", c.cid, len(got), len(c.data))
	}
}

// checkNothingLeft checks that staging is empty and no upload is open.
func checkNothingLeft(t *testing.T, in Instance) {
	t.Helper()
	if keys := in.Keys(t, carstore.AreaStaging); len(keys) > 0 {
		t.Errorf("staging still holds %v", keys)
	}
	open, err := in.Store.OpenUploads(context.Background())
	if err != nil {
		t.Fatalf("open uploads: %v", err)
	}
	if len(open) > 0 {
		t.Errorf("uploads still open: %+v", open)
	}
}

func checkCarparkEmpty(t *testing.T, in Instance) {
	t.Helper()
	if keys := in.Keys(t, carstore.AreaCarpark); len(keys) > 0 {
		t.Errorf("carpark holds %v", keys)
	}
}

// A CAR written, completed and promoted is in the carpark byte for byte,
// with its metadata, and nothing stays in staging: at every size that
// matters to a multipart upload, with validation by checksum and by reading
// back.
func testRoundTrip(t *testing.T, b Backend) {
	const part = 5 * carstore.MiB
	sizes := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"small", 1000},
		{"one part exactly", part},
		{"one part and a byte", part + 1},
		{"several parts", 3*part + part/2},
	}
	in := b.New(t, smallParts)
	for i, sz := range sizes {
		for _, byChecksum := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/checksum=%v", sz.name, byChecksum), func(t *testing.T) {
				seed := uint64(100 + 2*i)
				if byChecksum {
					seed++
				}
				c := newCar(seed, sz.size)
				key := carstore.StagingKey(c.meta.RequestID, 1)
				st := stage(t, in.Store, key, c)
				if st.Key != key || st.Bytes != int64(sz.size) || st.CarCID != c.cid {
					t.Fatalf("staged %+v, want key %s, %d bytes, CAR CID %s", st, key, sz.size, c.cid)
				}
				if keys := in.Keys(t, carstore.AreaStaging); !slices.Contains(keys, key) {
					t.Fatalf("staging holds %v, not %s", keys, key)
				}
				want := c.expected(st)
				if !byChecksum {
					want.Checksum = ""
				}
				stored := promote(t, in.Store, key, want)
				if stored.Bytes != int64(sz.size) || stored.CarCID != c.cid {
					t.Fatalf("promoted to %+v", stored)
				}
				checkInCarpark(t, in.Store, stored.Key, c)
				checkNothingLeft(t, in)
			})
		}
	}
}

// A CAR of many parts, more than are sent at once, reaches the carpark
// intact, with its metadata.
func testManyParts(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	c := newCar(200, 22*carstore.MiB+12345)
	key := carstore.StagingKey(c.meta.RequestID, 1)
	st := stage(t, in.Store, key, c)
	stored := promote(t, in.Store, key, c.expected(st))
	checkInCarpark(t, in.Store, stored.Key, c)
	checkNothingLeft(t, in)
}

// Abort after writing several parts leaves no staged object and no open
// upload; the upload refuses further use, and aborting again is harmless.
func testAbort(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	c := newCar(300, 11*carstore.MiB)
	up, err := in.Store.Stage(ctx, carstore.StagingKey(c.meta.RequestID, 1), c.meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeChunks(up, c.data); err != nil {
		t.Fatal(err)
	}
	if err := up.Abort(ctx); err != nil {
		t.Fatalf("abort: %v", err)
	}
	checkNothingLeft(t, in)
	if _, err := up.Write([]byte("more")); !errors.Is(err, carstore.ErrClosed) {
		t.Errorf("write after abort: %v, want ErrClosed", err)
	}
	if _, err := up.Complete(ctx); !errors.Is(err, carstore.ErrClosed) {
		t.Errorf("complete after abort: %v, want ErrClosed", err)
	}
	if err := up.Abort(ctx); err != nil {
		t.Errorf("second abort: %v", err)
	}
	checkNothingLeft(t, in)
	checkCarparkEmpty(t, in)
}

// Abort after Complete deletes the staged object: a fetcher that staged a
// CAR but lost its claim before recording it can clean up.
func testAbortAfterComplete(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	c := newCar(310, 6*carstore.MiB)
	up, err := in.Store.Stage(ctx, carstore.StagingKey(c.meta.RequestID, 1), c.meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeChunks(up, c.data); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := up.Abort(ctx); err != nil {
		t.Fatalf("abort after complete: %v", err)
	}
	checkNothingLeft(t, in)
}

// failingReader gives n bytes, then fails, as a source that drops the
// connection mid-DAG.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// When the source fails mid-stream, the fetcher aborts, and nothing is
// left: no staged object, no open upload, nothing in the carpark.
func testReaderFails(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	c := newCar(400, 8*carstore.MiB)
	up, err := in.Store.Stage(ctx, carstore.StagingKey(c.meta.RequestID, 1), c.meta)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("source hung up")
	if _, err := io.Copy(up, &failingReader{data: c.data, err: boom}); !errors.Is(err, boom) {
		t.Fatalf("copy: %v, want the reader's error", err)
	}
	if err := up.Abort(ctx); err != nil {
		t.Fatalf("abort: %v", err)
	}
	checkNothingLeft(t, in)
	checkCarparkEmpty(t, in)
}

// When the attempt's context ends mid-upload (timeout, shutdown), writes
// fail, and Abort, even with that finished context, cleans up.
func testContextCancelled(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx, cancel := context.WithCancel(context.Background())
	c := newCar(500, 7*carstore.MiB)
	up, err := in.Store.Stage(ctx, carstore.StagingKey(c.meta.RequestID, 1), c.meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeChunks(up, c.data); err != nil {
		t.Fatal(err)
	}
	cancel()
	err = writeChunks(up, c.data)
	if err == nil {
		_, err = up.Complete(ctx)
	}
	if err == nil {
		t.Fatal("the upload went on after its context was cancelled")
	}
	if err := up.Abort(ctx); err != nil {
		t.Fatalf("abort with a cancelled context: %v", err)
	}
	checkNothingLeft(t, in)
}

// Abort from another goroutine makes a Write in progress (or blocked on
// parts in flight) return, so that a stuck fetch can always be stopped.
func testAbortUnblocksWrite(t *testing.T, b Backend) {
	in := b.New(t, Tuning{PartSize: 5 * carstore.MiB, Concurrency: 1})
	ctx := context.Background()
	c := newCar(600, 1*carstore.MiB)
	up, err := in.Store.Stage(ctx, carstore.StagingKey(c.meta.RequestID, 1), c.meta)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		// Writes without end; only Abort stops it.
		for i := 0; ; i++ {
			if _, err := up.Write(c.data); err != nil {
				done <- err
				return
			}
			if i == 12 {
				close(started)
			}
		}
	}()
	<-started
	if err := up.Abort(ctx); err != nil {
		t.Fatalf("abort: %v", err)
	}
	if err := <-done; err == nil {
		t.Fatal("write returned no error after abort")
	}
	checkNothingLeft(t, in)
}

// OpenUploads names an upload begun and not finished, and forgets it once
// promoted (a staged CAR may still be an open upload: the S3 store
// completes it when it promotes it): what the end-to-end tests and the
// metrics count.
func testOpenUploads(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	c := newCar(700, 2000)
	key := carstore.StagingKey(c.meta.RequestID, 3)
	up, err := in.Store.Stage(ctx, key, c.meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(c.data); err != nil {
		t.Fatal(err)
	}
	open, err := in.Store.OpenUploads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Initiated.IsZero() ||
		!(open[0].Area == carstore.AreaStaging && open[0].Key == key || open[0].Area == carstore.AreaCarpark && open[0].Key == carstore.RootKey(c.meta.Root)) {
		t.Fatalf("open uploads %+v, want one for %s in staging, or for its root in the carpark", open, key)
	}
	if keys := in.Keys(t, carstore.AreaStaging); len(keys) > 0 {
		t.Fatalf("an unfinished upload is visible in staging: %v", keys)
	}
	checkCarparkEmpty(t, in)
	st, err := up.Complete(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkCarparkEmpty(t, in)
	promote(t, in.Store, key, c.expected(st))
	open, err = in.Store.OpenUploads(ctx)
	if err != nil || len(open) > 0 {
		t.Fatalf("after promote, open uploads %+v, %v", open, err)
	}
}

// Promote refuses a staged CAR that is not what was recorded, with
// ErrValidation; the staged object is deleted and nothing enters the
// carpark.
func testPromoteMismatch(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	cases := []struct {
		name string
		// spoil changes what is promoted: the expectation, or the stored
		// object.
		spoil func(t *testing.T, key string, c car, want *carstore.Expected)
	}{
		{"wrong CAR CID", func(t *testing.T, key string, c car, want *carstore.Expected) {
			want.CarCID = otherCID()
		}},
		{"wrong CAR CID without checksum", func(t *testing.T, key string, c car, want *carstore.Expected) {
			want.CarCID, want.Checksum = otherCID(), ""
		}},
		{"size too small", func(t *testing.T, key string, c car, want *carstore.Expected) {
			want.Bytes--
		}},
		{"size too big", func(t *testing.T, key string, c car, want *carstore.Expected) {
			want.Bytes++
		}},
		{"stored bytes changed", func(t *testing.T, key string, c car, want *carstore.Expected) {
			spoilt := bytes.Clone(c.data)
			spoilt[len(spoilt)/2] ^= 1
			in.Overwrite(t, key, spoilt)
		}},
		{"stored bytes changed without checksum", func(t *testing.T, key string, c car, want *carstore.Expected) {
			spoilt := bytes.Clone(c.data)
			spoilt[0] ^= 1
			in.Overwrite(t, key, spoilt)
			want.Checksum = ""
		}},
		{"stored object truncated", func(t *testing.T, key string, c car, want *carstore.Expected) {
			in.Overwrite(t, key, c.data[:len(c.data)-1])
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCar(uint64(800+i), 2*carstore.MiB+i)
			key := carstore.StagingKey(c.meta.RequestID, 1)
			st := stage(t, in.Store, key, c)
			want := c.expected(st)
			tc.spoil(t, key, c, &want)
			_, err := in.Store.Promote(context.Background(), key, want)
			if !errors.Is(err, carstore.ErrValidation) {
				t.Fatalf("promote: %v, want ErrValidation", err)
			}
			t.Logf("refused: %v", err)
			checkNothingLeft(t, in)
			checkCarparkEmpty(t, in)
			for _, id := range []cid.Cid{c.cid, want.CarCID} {
				if _, ok, err := in.Store.Stat(context.Background(), c.meta.Root, id); ok || err != nil {
					t.Errorf("stat %s after a failed promote: present %v, %v", id, ok, err)
				}
			}
		})
	}
	t.Run("nothing staged", func(t *testing.T) {
		c := newCar(899, 1000)
		_, err := in.Store.Promote(context.Background(), carstore.StagingKey(c.meta.RequestID, 1), c.expected(carstore.Staged{}))
		if !errors.Is(err, carstore.ErrValidation) {
			t.Fatalf("promote: %v, want ErrValidation", err)
		}
		checkCarparkEmpty(t, in)
	})
}

// Promoting the same staged CAR twice succeeds twice with the same result:
// a validator that retries after an ambiguous failure is safe.
func testPromoteTwice(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	c := newCar(900, 3*carstore.MiB)
	key := carstore.StagingKey(c.meta.RequestID, 1)
	st := stage(t, in.Store, key, c)
	first := promote(t, in.Store, key, c.expected(st))
	second := promote(t, in.Store, key, c.expected(st))
	if first != second {
		t.Fatalf("second promote %+v, first %+v", second, first)
	}
	checkInCarpark(t, in.Store, first.Key, c)
	checkNothingLeft(t, in)
}

// A CAR staged again at a key whose CAR the carpark already holds (a
// validator that stopped after the CAR reached the carpark, its attempt
// run again) is promoted by discarding what is staged: the carpark's CAR
// stays as it was.
func testPromoteAfterCrash(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	c := newCar(1000, 8*carstore.MiB)
	key := carstore.StagingKey(c.meta.RequestID, 1)
	st := stage(t, in.Store, key, c)
	first := promote(t, in.Store, key, c.expected(st))
	st = stage(t, in.Store, key, c)
	if again := promote(t, in.Store, key, c.expected(st)); again != first {
		t.Fatalf("promote again %+v, first %+v", again, first)
	}
	checkInCarpark(t, in.Store, first.Key, c)
	checkNothingLeft(t, in)
}

// Two requests that fetched the same DAG make the same CAR: the second
// promote finds it in the carpark and keeps the first request's metadata.
func testSameCarTwoRequests(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	c := newCar(1100, 2*carstore.MiB)
	key1 := carstore.StagingKey(c.meta.RequestID, 1)
	st1 := stage(t, in.Store, key1, c)
	promote(t, in.Store, key1, c.expected(st1))

	again := c
	again.meta.RequestID = "another-request"
	key2 := carstore.StagingKey(again.meta.RequestID, 1)
	st2 := stage(t, in.Store, key2, again)
	if st2.CarCID != st1.CarCID {
		t.Fatalf("same bytes, CAR CIDs %s and %s", st1.CarCID, st2.CarCID)
	}
	stored := promote(t, in.Store, key2, again.expected(st2))
	if stored.RequestID != c.meta.RequestID {
		t.Errorf("carpark request id %q, want the first request's %q", stored.RequestID, c.meta.RequestID)
	}
	checkInCarpark(t, in.Store, stored.Key, c)
	checkNothingLeft(t, in)
}

// Stat and Open of a CAR the carpark does not hold say so plainly: the
// worker falls back to fetching.
func testAbsent(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	c := newCar(1200, 1000)
	if st, ok, err := in.Store.Stat(ctx, c.meta.Root, otherCID()); ok || err != nil {
		t.Fatalf("stat of an absent CAR: %+v, %v, %v", st, ok, err)
	}
	for _, key := range []string{carstore.CarKey(otherCID()), carstore.RootKey(c.meta.Root)} {
		if _, err := in.Store.Open(ctx, key); !errors.Is(err, carstore.ErrNotFound) && !errors.Is(err, carstore.ErrInvalid) {
			t.Fatalf("open %s of an absent CAR: %v, want ErrNotFound", key, err)
		}
	}
	// A staged CAR is not in the carpark until promoted.
	stage(t, in.Store, carstore.StagingKey(c.meta.RequestID, 1), c)
	if _, ok, err := in.Store.Stat(ctx, c.meta.Root, c.cid); ok || err != nil {
		t.Fatalf("stat of a staged CAR: present %v, %v", ok, err)
	}
	checkCarparkEmpty(t, in)
}

// Many CARs uploaded and promoted at once, as a fetcher's batch does, each
// arrive intact.
func testConcurrent(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	const n = 6
	errs := make(chan error, n)
	cars := make([]car, n)
	keys := make([]string, n)
	for i := range cars {
		cars[i] = newCar(uint64(1300+i), 5*carstore.MiB+i*777_777)
		go func(i int, c car) {
			errs <- func() error {
				ctx := context.Background()
				key := carstore.StagingKey(c.meta.RequestID, 1)
				up, err := in.Store.Stage(ctx, key, c.meta)
				if err != nil {
					return err
				}
				if err := writeChunks(up, c.data); err != nil {
					return errors.Join(err, up.Abort(ctx))
				}
				st, err := up.Complete(ctx)
				if err != nil {
					return err
				}
				stored, err := in.Store.Promote(ctx, key, c.expected(st))
				keys[i] = stored.Key
				return err
			}()
		}(i, cars[i])
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for i, c := range cars {
		checkInCarpark(t, in.Store, keys[i], c)
	}
	checkNothingLeft(t, in)
}

// Bad arguments are refused with ErrInvalid, and create nothing.
func testInvalid(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	c := newCar(1400, 100)
	for _, key := range []string{"", "/abs.car", "a//b.car", "../up.car", "a/../b.car", "./a.car", "a/", "sp ace.car", "uni\u00e9.car", string(make([]byte, 201))} {
		if _, err := in.Store.Stage(ctx, key, c.meta); !errors.Is(err, carstore.ErrInvalid) {
			t.Errorf("stage at %q: %v, want ErrInvalid", key, err)
		}
		if _, err := in.Store.Promote(ctx, key, c.expected(carstore.Staged{})); !errors.Is(err, carstore.ErrInvalid) {
			t.Errorf("promote %q: %v, want ErrInvalid", key, err)
		}
	}
	key := carstore.StagingKey(c.meta.RequestID, 1)
	badMeta := []carstore.Metadata{{RequestID: "r"}, {Root: c.meta.Root}}
	for _, m := range badMeta {
		if _, err := in.Store.Stage(ctx, key, m); !errors.Is(err, carstore.ErrInvalid) {
			t.Errorf("stage with metadata %+v: %v, want ErrInvalid", m, err)
		}
	}
	rawCID := cid.NewCidV1(cid.Raw, c.cid.Hash())
	bad := []carstore.Expected{
		{Bytes: 100, Metadata: c.meta},                                              // no CAR CID
		{Bytes: 100, CarCID: rawCID, Metadata: c.meta},                              // not a CAR CID
		{Bytes: -1, CarCID: c.cid, Metadata: c.meta},                                // negative size
		{Bytes: 100, CarCID: c.cid, Metadata: carstore.Metadata{Root: c.meta.Root}}, // no request id
	}
	for _, want := range bad {
		if _, err := in.Store.Promote(ctx, key, want); !errors.Is(err, carstore.ErrInvalid) {
			t.Errorf("promote expecting %+v: %v, want ErrInvalid", want, err)
		}
	}
	if _, _, err := in.Store.Stat(ctx, c.meta.Root, rawCID); !errors.Is(err, carstore.ErrInvalid) {
		t.Errorf("stat of a raw CID: %v, want ErrInvalid", err)
	}
	for _, key := range []string{"", "x/y.car", c.cid.String() + "/" + otherCID().String() + ".car", c.cid.String() + ".car", "../" + carstore.CarKey(c.cid)} {
		if _, err := in.Store.Open(ctx, key); !errors.Is(err, carstore.ErrInvalid) {
			t.Errorf("open %q: %v, want ErrInvalid", key, err)
		}
	}
	checkNothingLeft(t, in)
	checkCarparkEmpty(t, in)
}

// A process killed mid-upload leaves its upload open, and one killed between
// staging and promoting leaves a staged CAR: the fetcher that takes the
// request over discards both, and nothing of other requests.
func testDiscard(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	c := newCar(700, 6*carstore.MiB)
	// Attempt 1: killed mid-upload (never aborted).
	up1, err := in.Store.Stage(ctx, carstore.StagingKey(c.meta.RequestID, 1), c.meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeChunks(up1, c.data[:4*carstore.MiB]); err != nil {
		t.Fatal(err)
	}
	// Attempt 2: staged, then killed before promoting.
	up2, err := in.Store.Stage(ctx, carstore.StagingKey(c.meta.RequestID, 2), c.meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeChunks(up2, c.data); err != nil {
		t.Fatal(err)
	}
	if _, err := up2.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	// Another request's upload, which must survive.
	other := newCar(701, 1*carstore.MiB)
	keep, err := in.Store.Stage(ctx, carstore.StagingKey(other.meta.RequestID, 1), other.meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeChunks(keep, other.data); err != nil {
		t.Fatal(err)
	}
	keepStaged, err := keep.Complete(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, err := in.Store.Discard(ctx, c.meta.RequestID)
	if err != nil {
		t.Fatalf("discard: %v", err)
	}
	if n != 2 {
		t.Errorf("discard removed %d things, want the open upload and the staged CAR", n)
	}
	if keys := in.Keys(t, carstore.AreaStaging); !slices.Equal(keys, []string{keepStaged.Key}) {
		t.Errorf("staging after discard holds %v, want only the other request's %s", keys, keepStaged.Key)
	}
	// The other request's CAR is still whole: promoted, it leaves nothing,
	// so nothing of the discarded request's was left either.
	stored := promote(t, in.Store, keepStaged.Key, other.expected(keepStaged))
	checkInCarpark(t, in.Store, stored.Key, other)
	checkNothingLeft(t, in)
	if n, err := in.Store.Discard(ctx, c.meta.RequestID); err != nil || n != 0 {
		t.Errorf("second discard: %d, %v; want nothing to do", n, err)
	}
	if _, err := in.Store.Discard(ctx, "../x"); !errors.Is(err, carstore.ErrInvalid) {
		t.Errorf("discard of a bad request id: %v, want ErrInvalid", err)
	}
	up1.Abort(ctx)
}

// DiscardThroughKeeping removes what the request's attempts up to its
// bound left but the kept attempt's, which is still promoted whole.
func testDiscardThroughKeeping(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	c := newCar(751, 2*carstore.MiB)
	var kept carstore.Staged
	for n := 1; n <= 3; n++ {
		st := stage(t, in.Store, carstore.StagingKey(c.meta.RequestID, n), c)
		if n == 2 {
			kept = st
		}
	}
	if n, err := in.Store.DiscardThroughKeeping(ctx, c.meta.RequestID, 3, 2); err != nil || n != 2 {
		t.Fatalf("discard through attempt 3 keeping 2: %d, %v; want the staged CARs of attempts 1 and 3", n, err)
	}
	if keys, want := in.Keys(t, carstore.AreaStaging), []string{carstore.StagingKey(c.meta.RequestID, 2)}; !slices.Equal(keys, want) {
		t.Errorf("staging holds %v, want %v", keys, want)
	}
	stored := promote(t, in.Store, kept.Key, c.expected(kept))
	checkInCarpark(t, in.Store, stored.Key, c)
	checkNothingLeft(t, in)
}

// DiscardThrough removes what the request's attempts up to its bound left,
// and nothing of a later attempt, which another fetcher may be running.
func testDiscardThrough(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	c := newCar(750, 2*carstore.MiB)
	stage(t, in.Store, carstore.StagingKey(c.meta.RequestID, 1), c)
	running, err := in.Store.Stage(ctx, carstore.StagingKey(c.meta.RequestID, 2), c.meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeChunks(running, c.data); err != nil {
		t.Fatal(err)
	}
	if n, err := in.Store.DiscardThrough(ctx, c.meta.RequestID, 1); err != nil || n != 1 {
		t.Fatalf("discard through attempt 1: %d, %v; want the staged CAR of attempt 1", n, err)
	}
	if keys := in.Keys(t, carstore.AreaStaging); len(keys) > 0 {
		t.Errorf("staging holds %v after discarding attempt 1", keys)
	}
	st, err := running.Complete(ctx)
	if err != nil {
		t.Fatalf("attempt 2 completes after attempt 1 was discarded: %v", err)
	}
	stored := promote(t, in.Store, st.Key, c.expected(st))
	checkInCarpark(t, in.Store, stored.Key, c)
	checkNothingLeft(t, in)
}
