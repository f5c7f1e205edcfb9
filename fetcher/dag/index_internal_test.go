package dag

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-car/v2/index"
	"github.com/multiformats/go-multihash"
)

// WithoutIndex makes f record no block index (Result.Index stays empty),
// for the benchmark of what the index costs.
func WithoutIndex(f *Fetcher) { f.noIndex = true }

// BenchmarkBlockIndex is the index's own cost per block: recording and
// marshalling the index of 32,768 SHA-256 blocks (BenchmarkIndexOverhead
// sets it against a fetch).
func BenchmarkBlockIndex(b *testing.B) {
	const n = 1 << 15
	keys := make([]string, n)
	for i := range keys {
		h, _ := multihash.Sum(fmt.Appendf(nil, "block %d", i), multihash.SHA2_256, -1)
		keys[i] = cid.NewCidV1(cid.Raw, h).KeyString()
	}
	for b.Loop() {
		var bi blockIndex
		for i, k := range keys {
			bi.add(k, int64(59+1100*i))
		}
		if _, err := bi.marshal(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/block")
}

// The index of many blocks (every path of sortInto: few, by one leading
// byte, by two, ranges made long on purpose by digests that share their
// leading bytes, several hash functions and digest lengths) is the bytes
// go-car's MultihashIndexSorted writes for the same records.
func TestBlockIndexMatchesGoCar(t *testing.T) {
	mk := func(n int, shared bool) (keys []string, recs []index.Record) {
		for i := range n {
			var c cid.Cid
			switch {
			case shared && i%2 == 0:
				// Same leading two bytes, different digests.
				d := make([]byte, 32)
				d[0], d[1] = 0xab, 0xcd
				binary.BigEndian.PutUint64(d[24:], uint64(i))
				h, _ := multihash.Encode(d, multihash.SHA2_256)
				c = cid.NewCidV1(cid.Raw, h)
			case i%7 == 0:
				h, _ := multihash.Sum(fmt.Appendf(nil, "b%d", i), multihash.SHA2_512, -1)
				c = cid.NewCidV1(cid.DagCBOR, h)
			case i%11 == 0:
				h, _ := multihash.Sum(fmt.Appendf(nil, "b%d", i), multihash.SHA2_256, 20)
				c = cid.NewCidV1(cid.Raw, h)
			case i%5 == 0:
				h, _ := multihash.Sum(fmt.Appendf(nil, "b%d", i), multihash.SHA2_256, -1)
				c = cid.NewCidV0(h)
			default:
				h, _ := multihash.Sum(fmt.Appendf(nil, "b%d", i), multihash.SHA2_256, -1)
				c = cid.NewCidV1(cid.Raw, h)
			}
			keys = append(keys, c.KeyString())
			recs = append(recs, index.Record{Cid: c, Offset: uint64(59 + 1000*i)})
		}
		return keys, recs
	}
	for _, tc := range []struct {
		n      int
		shared bool
	}{{0, false}, {1, false}, {63, false}, {64, false}, {4095, false}, {4096, false}, {20000, false}, {5000, true}} {
		t.Run(fmt.Sprintf("n=%d/shared=%v", tc.n, tc.shared), func(t *testing.T) {
			keys, recs := mk(tc.n, tc.shared)
			var bi blockIndex
			for i, k := range keys {
				bi.add(k, int64(recs[i].Offset))
			}
			got, err := bi.marshal()
			if err != nil {
				t.Fatal(err)
			}
			idx := index.NewMultihashSorted()
			if err := idx.Load(recs); err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			if _, err := index.WriteTo(idx, &want); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("index of %d blocks: %d bytes differ from go-car's %d", tc.n, len(got), want.Len())
			}
		})
	}
}
