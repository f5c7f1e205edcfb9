package projections_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/eventlog"
	logstore "github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/embedded"
	"github.com/pickup-ipfs/pickup/projections/viewtest"
)

// benchEvents is how many events the rebuild benchmark replays:
// PICKUP_BENCH_EVENTS, or the million.
func benchEvents(b *testing.B) int {
	if s := os.Getenv("PICKUP_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			b.Fatalf("PICKUP_BENCH_EVENTS=%q: want a number of at least 1000", s)
		}
		return n
	}
	return 1_000_000
}

// writeHistory appends the steps to a log quickly and in an order a busy
// deployment could produce: the history is cut in windows, each stream's
// events in a window go in one append, and many appenders share the work
// (each stream always by the same appender, so that its order holds).
func writeHistory(b *testing.B, log eventlog.Store, steps []viewtest.Step) {
	const window, appenders = 512, 256
	type group struct {
		stream string
		events []eventlog.Proposed
	}
	queues := make([][]group, appenders)
	for w := 0; w < len(steps); w += window {
		at := map[string]int{}
		var groups []group
		for _, s := range steps[w:min(w+window, len(steps))] {
			i, ok := at[s.Stream]
			if !ok {
				i = len(groups)
				at[s.Stream] = i
				groups = append(groups, group{stream: s.Stream})
			}
			groups[i].events = append(groups[i].events, s.Event)
		}
		for _, g := range groups {
			h := fnv.New32a()
			h.Write([]byte(g.stream))
			q := int(h.Sum32() % appenders)
			queues[q] = append(queues[q], g)
		}
	}
	var wg sync.WaitGroup
	for _, q := range queues {
		wg.Go(func() {
			for _, g := range q {
				if _, err := log.Append(context.Background(), g.stream, eventlog.Any, g.events...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkRebuild rebuilds every view from a log of a million events
// (PICKUP_BENCH_EVENTS), both stores embedded, as `pickup replay` does.
// The history is random but valid: three tenants, a hundred pins in flight
// at once, with claims, progress, uploads, validations, failures, retries,
// dead letters, removals and replacements. Target: 200,000 events/s.
func BenchmarkRebuild(b *testing.B) {
	n := benchEvents(b)
	ctx := context.Background()
	dir := b.TempDir()
	start := time.Now()
	steps := viewtest.History(viewtest.HistoryConfig{Events: n, Seed: 1, Active: 100})
	generated := time.Since(start)
	log, err := logstore.Open(ctx, filepath.Join(dir, "events.db"), logstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	start = time.Now()
	writeHistory(b, log, steps)
	written := time.Since(start)
	head, err := log.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d events generated in %v, written to the log in %v", len(steps), generated.Round(time.Millisecond), written.Round(time.Millisecond))
	// A replay has no history in memory: drop it, so that the collector
	// does not mark it again and again while the views are rebuilt.
	events := len(steps)
	steps = nil
	runtime.GC()
	b.ResetTimer()
	var total, cpu time.Duration
	var heapPeak uint64
	for i := range b.N {
		views, err := embedded.Open(ctx, filepath.Join(dir, fmt.Sprintf("views-%d.db", i)), embedded.Options{})
		if err != nil {
			b.Fatal(err)
		}
		r, err := projections.NewRunner(projections.RunnerConfig{}, projections.RunnerDeps{Log: log, Views: views, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		start, cpu0 := time.Now(), cpuTime()
		stopSampling := sampleHeap(&heapPeak)
		cp, err := r.CatchUp(ctx, head, nil)
		total += time.Since(start)
		cpu += cpuTime() - cpu0
		stopSampling()
		if err != nil || cp != head {
			b.Fatalf("rebuilt to %d of %d: %v", cp, head, err)
		}
		views.Close()
	}
	b.ReportMetric(float64(events*b.N)/total.Seconds(), "events/s")
	// CPU time per event, all cores: what the figure would be on an idle
	// machine, where wall time does not include other processes' turns.
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(events*b.N), "cpu-µs/event")
	// The most heap the rebuild held at once: the batches in flight.
	b.ReportMetric(float64(heapPeak)/(1<<20), "heap-peak-MiB")
}

// sampleHeap records in peak the most heap in use, sampled every 10 ms
// until the returned function is called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
