package carstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-car/v2/index"
	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
)

// testIndex is the marshalled MultihashIndexSorted of n made-up blocks
// (the stores never check an index against its CAR's bytes).
func testIndex(t *testing.T, seed, n int) []byte {
	t.Helper()
	records := make([]index.Record, n)
	for i := range records {
		h, _ := mh.Sum(fmt.Appendf(nil, "block %d of %d", i, seed), mh.SHA2_256, -1)
		records[i] = index.Record{Cid: cid.NewCidV1(cid.Raw, h), Offset: uint64(59 + 100*i)}
	}
	idx := index.NewMultihashSorted()
	if err := idx.Load(records); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := index.WriteTo(idx, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// promoted puts c in the carpark and returns what Promote stored.
func promoted(t *testing.T, s Store, c car) carstore.Stored {
	t.Helper()
	key := carstore.StagingKey(c.meta.RequestID, 1)
	return promote(t, s, key, c.expected(stage(t, s, key, c)))
}

func readAll(t *testing.T, s Store, key string, offset, length int64) ([]byte, error) {
	t.Helper()
	r, err := s.ReadRange(context.Background(), key, offset, length)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, nil
}

// An index is stored beside its CAR with the root's mapping, read back as
// written; putting it again changes nothing; an index of other entries
// (not this CAR's) is replaced; a bad index, or one of a CAR not in the
// carpark, is refused and writes nothing.
func testPutIndex(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	c := newCar(1500, 3000)
	st := promoted(t, in.Store, c)
	idx := testIndex(t, 1, 50)
	key, err := in.Store.PutIndex(ctx, st, idx)
	if err != nil {
		t.Fatalf("put index: %v", err)
	}
	if key != carstore.IndexKey(st.Key) || key != st.Key+".idx" {
		t.Fatalf("index at %s, want %s.idx", key, st.Key)
	}
	if got, err := readAll(t, in.Store, key, 0, -1); err != nil || !bytes.Equal(got, idx) {
		t.Fatalf("index read back: %d bytes, %v; want the %d written", len(got), err, len(idx))
	}
	mapKey := carstore.RootMapKey(c.meta.Root, c.cid)
	if mapKey != c.meta.Root.String()+"/"+c.cid.String() {
		t.Fatalf("mapping key %s", mapKey)
	}
	if got, err := readAll(t, in.Store, mapKey, 0, -1); err != nil || len(got) != 0 {
		t.Fatalf("mapping %s: %q, %v; want an empty object", mapKey, got, err)
	}
	want := []string{key, mapKey, st.Key}
	slices.Sort(want)
	if keys := in.Keys(t, carstore.AreaCarpark); !slices.Equal(keys, want) {
		t.Fatalf("carpark holds %v, want %v", keys, want)
	}
	if again, err := in.Store.PutIndex(ctx, st, idx); err != nil || again != key {
		t.Fatalf("put the same index again: %s, %v", again, err)
	}
	other := testIndex(t, 2, 7)
	if _, err := in.Store.PutIndex(ctx, st, other); err != nil {
		t.Fatalf("put an index of other entries: %v", err)
	}
	if got, _ := readAll(t, in.Store, key, 0, -1); !bytes.Equal(got, other) {
		t.Fatalf("an index that is not the CAR's was kept")
	}
	if keys := in.Keys(t, carstore.AreaCarpark); !slices.Equal(keys, want) {
		t.Fatalf("carpark holds %v, want %v", keys, want)
	}

	for name, bad := range map[string][]byte{"empty": nil, "garbage": []byte("not an index"), "truncated": idx[:len(idx)/2]} {
		if _, err := in.Store.PutIndex(ctx, st, bad); !errors.Is(err, carstore.ErrInvalid) {
			t.Errorf("put a %s index: %v, want ErrInvalid", name, err)
		}
	}
	absent := newCar(1501, 100)
	absentSt := carstore.Stored{Key: carstore.CarKey(absent.cid), CarCID: absent.cid, Root: absent.meta.Root}
	if _, err := in.Store.PutIndex(ctx, absentSt, idx); !errors.Is(err, carstore.ErrNotFound) {
		t.Errorf("put the index of a CAR not in the carpark: %v, want ErrNotFound", err)
	}
	if _, err := in.Store.PutIndex(ctx, carstore.Stored{Key: st.Key, CarCID: st.CarCID}, idx); !errors.Is(err, carstore.ErrInvalid) {
		t.Errorf("put an index with no root: %v, want ErrInvalid", err)
	}
	if keys := in.Keys(t, carstore.AreaCarpark); !slices.Equal(keys, want) {
		t.Fatalf("carpark holds %v after refused puts, want %v", keys, want)
	}
}

// ReadRange reads any range of a carpark object, to the end for a negative
// length, cut at the end; at the end it is empty; past it, or of a
// missing object, it says so.
func testReadRange(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	c := newCar(1600, 6*carstore.MiB+77)
	st := promoted(t, in.Store, c)
	size := int64(len(c.data))
	for _, r := range []struct{ offset, length int64 }{
		{0, 1}, {0, 10}, {5, -1}, {0, -1}, {size - 1, 1}, {size - 10, 100}, {5*carstore.MiB - 3, 9}, {1000, 0}, {size, -1}, {size, 5},
	} {
		got, err := readAll(t, in.Store, st.Key, r.offset, r.length)
		end := size
		if r.length >= 0 {
			end = min(size, r.offset+r.length)
		}
		if err != nil || !bytes.Equal(got, c.data[r.offset:end]) {
			t.Errorf("range %d+%d: %d bytes, %v; want bytes %d to %d", r.offset, r.length, len(got), err, r.offset, end)
		}
	}
	if _, err := readAll(t, in.Store, st.Key, size+1, -1); !errors.Is(err, carstore.ErrInvalid) {
		t.Errorf("range past the end: %v, want ErrInvalid", err)
	}
	if _, err := readAll(t, in.Store, st.Key, -1, 5); !errors.Is(err, carstore.ErrInvalid) {
		t.Errorf("negative offset: %v, want ErrInvalid", err)
	}
	for _, key := range []string{carstore.CarKey(otherCID()), carstore.IndexKey(st.Key), carstore.RootMapKey(c.meta.Root, c.cid)} {
		if _, err := readAll(t, in.Store, key, 0, -1); !errors.Is(err, carstore.ErrNotFound) {
			t.Errorf("read absent %s: %v, want ErrNotFound", key, err)
		}
		if _, err := readAll(t, in.Store, key, 0, 0); !errors.Is(err, carstore.ErrNotFound) {
			t.Errorf("read nothing of absent %s: %v, want ErrNotFound", key, err)
		}
	}
	for _, key := range []string{"../etc/passwd", "x/y", st.Key + ".json", "staging/" + st.Key} {
		if _, err := readAll(t, in.Store, key, 0, -1); !errors.Is(err, carstore.ErrInvalid) {
			t.Errorf("read %s: %v, want ErrInvalid", key, err)
		}
	}
}

// ListCars lists every CAR in key order, after a key if given, and none of
// their indexes or mappings; an error of fn stops it.
func testListCars(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	var keys []string
	for i := range 5 {
		c := newCar(uint64(1700+i), 500+i)
		st := promoted(t, in.Store, c)
		keys = append(keys, st.Key)
		if i%2 == 0 {
			if _, err := in.Store.PutIndex(ctx, st, testIndex(t, i, 3)); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.Sort(keys)
	list := func(after string) []carstore.Stored {
		var out []carstore.Stored
		if err := in.Store.ListCars(ctx, after, func(st carstore.Stored) error { out = append(out, st); return nil }); err != nil {
			t.Fatalf("list after %q: %v", after, err)
		}
		return out
	}
	all := list("")
	var got []string
	for _, st := range all {
		got = append(got, st.Key)
		want, ok, err := in.Store.Stat(ctx, st.Root, st.CarCID)
		if err != nil || !ok || want != st {
			t.Errorf("listed %+v; stat says %+v, %v, %v", st, want, ok, err)
		}
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("listed %v, want %v", got, keys)
	}
	if rest := list(keys[1]); len(rest) != 3 || rest[0].Key != keys[2] {
		t.Fatalf("listed after %s: %+v, want the last 3", keys[1], rest)
	}
	if rest := list(keys[4]); len(rest) != 0 {
		t.Fatalf("listed after the last: %+v", rest)
	}
	stop := errors.New("stop")
	n := 0
	err := in.Store.ListCars(ctx, "", func(carstore.Stored) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("fn's error: %v after %d calls, want it after 1", err, n)
	}
}

// DeleteRoot deletes a root's CAR, index and mapping and nothing of other
// roots, says how many, and deletes nothing the second time.
func testDeleteRoot(t *testing.T, b Backend) {
	in := b.New(t, smallParts)
	ctx := context.Background()
	gone, kept := newCar(1800, 4000), newCar(1801, 4000)
	var keptKeys []string
	for _, c := range []car{gone, kept} {
		st := promoted(t, in.Store, c)
		idxKey, err := in.Store.PutIndex(ctx, st, testIndex(t, 1, 10))
		if err != nil {
			t.Fatal(err)
		}
		if c.cid == kept.cid {
			keptKeys = []string{st.Key, idxKey, carstore.RootMapKey(c.meta.Root, c.cid)}
		}
	}
	slices.Sort(keptKeys)
	n, err := in.Store.DeleteRoot(ctx, gone.meta.Root)
	if err != nil || n != 3 {
		t.Fatalf("delete root: %d objects, %v; want 3 (CAR, index, mapping)", n, err)
	}
	if keys := in.Keys(t, carstore.AreaCarpark); !slices.Equal(keys, keptKeys) {
		t.Fatalf("carpark holds %v, want only the other root's %v", keys, keptKeys)
	}
	if _, ok, err := in.Store.Stat(ctx, gone.meta.Root, gone.cid); ok || err != nil {
		t.Fatalf("stat of a deleted root's CAR: %v, %v", ok, err)
	}
	if n, err := in.Store.DeleteRoot(ctx, gone.meta.Root); err != nil || n != 0 {
		t.Fatalf("delete root again: %d, %v; want 0", n, err)
	}
	if n, err := in.Store.DeleteRoot(ctx, newCar(1802, 1).meta.Root); err != nil || n != 0 {
		t.Fatalf("delete a root never stored: %d, %v; want 0", n, err)
	}
	if _, err := in.Store.DeleteRoot(ctx, cid.Undef); !errors.Is(err, carstore.ErrInvalid) {
		t.Fatalf("delete no root: %v, want ErrInvalid", err)
	}
	// The root pinned again after its deletion is stored afresh.
	st := promoted(t, in.Store, gone)
	checkInCarpark(t, in.Store, st.Key, gone)
}
