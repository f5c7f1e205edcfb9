package locatetest

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/serve/locate"
)

// BenchBlocks is how many blocks BenchLocate's lookup holds: 100 CARs of
// 10,000 blocks.
const (
	BenchCars       = 100
	BenchCarBlocks  = 10_000
	BenchBlocks     = BenchCars * BenchCarBlocks
	benchAddedFirst = 1 << 20 // the Add benchmark's CAR numbers start here
)

// Fill adds cars Synthetic CARs (numbered from first) of n blocks each.
func Fill(tb testing.TB, s locate.Store, first, cars, n int) {
	tb.Helper()
	ctx := context.Background()
	for c := first; c < first+cars; c++ {
		car, es := Synthetic(c, n)
		if err := s.Add(ctx, car, es); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchLocate fills s with BenchBlocks blocks, then times Locate of random
// ones among them, reporting p50 and p99 (µs) beside ns/op; when size is
// not nil, it also reports the store's bytes per block as size measures
// them. Figures, never assertions.
func BenchLocate(b *testing.B, s locate.Store, size func() (int64, error)) {
	start := time.Now()
	Fill(b, s, 0, BenchCars, BenchCarBlocks)
	b.Logf("filled %d blocks in %v", BenchBlocks, time.Since(start).Round(time.Millisecond))
	var perBlock float64
	if size != nil {
		n, err := size()
		if err != nil {
			b.Fatal(err)
		}
		perBlock = float64(n) / BenchBlocks
		b.Logf("%d bytes for %d blocks: %.1f bytes/block", n, BenchBlocks, perBlock)
	}
	b.Run("1M", func(b *testing.B) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			car, i := rng.IntN(BenchCars), rng.IntN(BenchCarBlocks)
			t0 := time.Now()
			locs, err := s.Locate(ctx, SyntheticMultihash(car, i))
			lat = append(lat, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			if len(locs) != 1 {
				b.Fatalf("block %d of CAR %d: %d locations", i, car, len(locs))
			}
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
		if perBlock > 0 {
			b.ReportMetric(perBlock, "bytes/block")
		}
	})
}

// BenchAdd times Add of CARs of BenchCarBlocks blocks into s, reporting
// blocks/s.
func BenchAdd(b *testing.B, s locate.Store) {
	next := benchAddedFirst
	b.Run("10k-block-CARs", func(b *testing.B) {
		ctx := context.Background()
		cars := make([]locate.CAR, b.N)
		entries := make([][]locate.Entry, b.N)
		for i := range b.N {
			cars[i], entries[i] = Synthetic(next, BenchCarBlocks)
			next++
		}
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			if err := s.Add(ctx, cars[i], entries[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*BenchCarBlocks)/time.Since(start).Seconds(), "blocks/s")
	})
}
