package embedded_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/projections/embedded"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/viewtest"
)

// BenchmarkApply applies a history of 200,000 events from memory, in
// batches of 65536 as the runner catches up: the store's share of a
// rebuild, without reading the log.
func BenchmarkApply(b *testing.B) {
	evs := viewtest.Events(viewtest.History(viewtest.HistoryConfig{Events: 200000, Seed: 1, Active: 100}))
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		s, err := embedded.Open(ctx, filepath.Join(b.TempDir(), "v.db"), embedded.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		start := time.Now()
		const batch = 65536
		for j := 0; j < len(evs); j += batch {
			if _, err := s.Apply(ctx, evs[j].Position-1, viewrow.Prepare(evs[j:min(j+batch, len(evs))])); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(evs))/time.Since(start).Seconds(), "events/s")
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		b.ReportMetric(float64(cpu.Microseconds())/float64(len(evs)), "cpu-µs/event")
		_ = i
		s.Close()
	}
}

// BenchmarkList: listings with every filter over a million pins of one
// tenant (PICKUP_BENCH_PINS), on the embedded store. Target: p99 under
// 20 ms.
func BenchmarkList(b *testing.B) {
	s, err := embedded.Open(context.Background(), filepath.Join(b.TempDir(), "views.db"), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	viewtest.BenchmarkList(b, s, nil)
}
