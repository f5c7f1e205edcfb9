package dag_test

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"

	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/index"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

type indexEntry struct {
	mh     string
	offset uint64
}

// indexEntries lists a marshalled CARv2 index's entries, sorted.
func indexEntries(t testing.TB, b []byte) []indexEntry {
	t.Helper()
	idx, err := index.ReadFrom(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("read index: %v", err)
	}
	if idx.Codec() != multicodec.CarMultihashIndexSorted {
		t.Fatalf("index codec %s", idx.Codec())
	}
	var out []indexEntry
	if err := idx.(index.IterableIndex).ForEach(func(h multihash.Multihash, o uint64) error {
		out = append(out, indexEntry{string(h), o})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b indexEntry) int { return cmp.Or(strings.Compare(a.mh, b.mh), cmp.Compare(a.offset, b.offset)) })
	return out
}

// goCarIndex is the index go-car/v2 builds by reading the CAR.
func goCarIndex(t testing.TB, carBytes []byte) []byte {
	t.Helper()
	idx, err := car.GenerateIndex(bytes.NewReader(carBytes))
	if err != nil {
		t.Fatalf("go-car index: %v", err)
	}
	var buf bytes.Buffer
	if _, err := index.WriteTo(idx, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The index recorded while the CAR is written is the one go-car builds by
// reading the CAR back: the same entries for every shape of DAG (several
// hash functions and digest lengths, identity blocks left out, the same
// bytes under two codecs), the same bytes where go-car's own order is
// defined (no digest twice), whatever the sink.
func TestIndexWhileStreaming(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, dc := range dagCases() {
		bs := ipfstest.NewMemBlockstore()
		root, err := dc.make(ctx, bs)
		if err != nil {
			t.Fatal(err)
		}
		want := export(t, bs, root)
		sinks := map[string]func() (dag.Sink, func() []byte){
			"plain":     func() (dag.Sink, func() []byte) { s := &memorySink{}; return s, s.buf.Bytes },
			"hashing":   func() (dag.Sink, func() []byte) { s := &hashingSink{}; return s, s.buf.Bytes },
			"buffering": func() (dag.Sink, func() []byte) { s := &bufferingSink{}; return s, s.buf.Bytes },
		}
		for sname, mk := range sinks {
			t.Run(dc.name+"/"+sname, func(t *testing.T) {
				f := newFetcher(t, dag.Limits{}, carSource{name: "memory", car: want})
				sink, written := mk()
				res, _, err := f.Fetch(ctx, dag.Request{Root: root}, func(context.Context) (dag.Sink, error) { return sink, nil }, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(written(), want) {
					t.Fatal("CAR differs from dag export")
				}
				goCar := goCarIndex(t, want)
				got, wantEntries := indexEntries(t, res.Index), indexEntries(t, goCar)
				if !slices.Equal(got, wantEntries) {
					t.Fatalf("index has %d entries, go-car's %d; they differ", len(got), len(wantEntries))
				}
				unique := true
				for i := 1; i < len(wantEntries); i++ {
					unique = unique && wantEntries[i].mh != wantEntries[i-1].mh
				}
				if unique && !bytes.Equal(res.Index, goCar) {
					t.Fatalf("index (%d bytes) differs from go-car's (%d bytes)", len(res.Index), len(goCar))
				}
			})
		}
	}
}

// Without the index, nothing is recorded.
func TestWithoutIndex(t *testing.T) {
	root, _, f := memoryFile(t, 9)
	dag.WithoutIndex(f)
	res, _, err := f.Fetch(context.Background(), dag.Request{Root: root}, func(context.Context) (dag.Sink, error) { return &memorySink{}, nil }, nil)
	if err != nil || res.Index != nil {
		t.Fatalf("fetch without index: %d index bytes, %v", len(res.Index), err)
	}
}
