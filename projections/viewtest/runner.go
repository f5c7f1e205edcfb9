package viewtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
)

// Environment of the runner process that testKilledRunner starts.
const (
	childLog   = "PICKUP_VIEWTEST_RUNNER_LOG"
	childViews = "PICKUP_VIEWTEST_RUNNER_VIEWS"
)

// Main runs the tests and returns the exit code, or, when the test binary
// was started by testKilledRunner, runs the runner process it kills and
// exits.
func Main(m *testing.M, b Backend) int {
	if views := os.Getenv(childViews); views != "" {
		if err := runChild(b, os.Getenv(childLog), views); err != nil {
			fmt.Fprintln(os.Stderr, "runner:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	return m.Run()
}

// runChild catches the views up with the log in small batches, printing
// each checkpoint, until it is killed or done.
func runChild(b Backend, logPath, views string) error {
	ctx := context.Background()
	log, err := embedded.Open(ctx, logPath, embedded.Options{})
	if err != nil {
		return err
	}
	s, err := b.Open(ctx, views)
	if err != nil {
		return err
	}
	r, err := projections.NewRunner(projections.RunnerConfig{Batch: 37}, projections.RunnerDeps{Log: log, Views: s, Logger: quiet()})
	if err != nil {
		return err
	}
	head, err := log.Head(ctx)
	if err != nil {
		return err
	}
	_, err = r.CatchUp(ctx, head, func(p eventlog.Position) { fmt.Println(p) })
	return err
}

// quiet drops the runners' logs: the suite's histories hold events the
// views leave out on purpose.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openLog opens a fresh embedded event log for a test.
func openLog(t testing.TB) (*embedded.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	log, err := embedded.Open(context.Background(), path, embedded.Options{PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return log, path
}

// AppendConcurrently appends the steps with several appenders, each
// owning some streams: every stream keeps its order, and streams interleave
// as concurrent writers interleave them.
func AppendConcurrently(ctx context.Context, log eventlog.Store, steps []Step, appenders int) error {
	parts := make([][]Step, appenders)
	for _, s := range steps {
		h := fnv.New32a()
		h.Write([]byte(s.Stream))
		i := int(h.Sum32()) % appenders
		parts[i] = append(parts[i], s)
	}
	errs := make(chan error, appenders)
	for _, p := range parts {
		go func() { errs <- AppendAll(ctx, log, p) }()
	}
	var first error
	for range appenders {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func newRunner(t testing.TB, log eventlog.Store, s Store, batch int) *projections.Runner {
	t.Helper()
	r, err := projections.NewRunner(projections.RunnerConfig{Batch: batch, RetryDelay: 10 * time.Millisecond}, projections.RunnerDeps{Log: log, Views: s, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// catchUp applies the whole log to s.
func catchUp(t testing.TB, log eventlog.Store, s Store, batch int) {
	t.Helper()
	ctx := context.Background()
	head, err := log.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := newRunner(t, log, s, batch).CatchUp(ctx, head, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cp != head {
		t.Fatalf("caught up to %d, head is %d", cp, head)
	}
}

// waitFor waits until the store's checkpoint reaches pos.
func waitFor(t testing.TB, s Store, pos eventlog.Position) {
	t.Helper()
	for {
		cp, err := s.Checkpoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cp >= pos {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testRebuildEqualsLive proves the runner deterministic on a long random
// history: views kept up live, while the history was being appended by
// concurrent writers, with a restart halfway, equal views rebuilt from
// position zero in big batches, and in tiny ones.
func testRebuildEqualsLive(t *testing.T, b Backend) {
	ctx := context.Background()
	log, _ := openLog(t)
	live, loc := open(t, b)
	steps := History(HistoryConfig{Events: size(6000), Seed: 42, Junk: true, Tenants: []string{"alice", "bob", "carol", "dave"}})
	half := len(steps) / 2

	run := func(s Store) (stop func()) {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- newRunner(t, log, s, 0).Run(rctx) }()
		return func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("runner ended with %v", err)
			}
		}
	}
	stop := run(live)
	if err := AppendConcurrently(ctx, log, steps[:half], 32); err != nil {
		t.Fatal(err)
	}
	stop()
	// Restart on a new handle to the same views: it resumes from the
	// checkpoint while the second half is appended.
	live.Close()
	live = openAt(t, b, loc)
	stop = run(live)
	if err := AppendConcurrently(ctx, log, steps[half:], 32); err != nil {
		t.Fatal(err)
	}
	head, err := log.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, live, head)
	stop()

	for _, batch := range []int{4096, 7} {
		rebuilt, _ := open(t, b)
		catchUp(t, log, rebuilt, batch)
		SameViews(t, live, rebuilt)
		_, sumLive, err := StoreChecksum(ctx, live)
		if err != nil {
			t.Fatal(err)
		}
		_, sumRebuilt, err := StoreChecksum(ctx, rebuilt)
		if err != nil {
			t.Fatal(err)
		}
		if sumLive != sumRebuilt {
			t.Errorf("checksums differ after a rebuild in batches of %d: live %s, rebuilt %s", batch, sumLive, sumRebuilt)
		}
	}
	f, err := live.Figures(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if f.Pinned == 0 || f.DeadLettered == 0 || f.PinnedEver == 0 {
		t.Errorf("the history reached no pinned or dead-lettered pin: %+v", f)
	}
}

// testDeterministicOnLongHistory applies a long random history in batches
// of random sizes, and again in big ones: whatever the boundaries, the
// views are the same.
func testDeterministicOnLongHistory(t *testing.T, b Backend) {
	ctx := context.Background()
	evs := Events(History(HistoryConfig{Events: size(30000), Seed: 77, Junk: true, Active: 300}))
	rnd := rand.New(rand.NewPCG(1, 77))
	small, _ := open(t, b)
	for i := 0; i < len(evs); {
		n := min(len(evs)-i, 1+rnd.IntN(1500))
		if _, err := small.Apply(ctx, after(evs[i:i+n]), viewrow.Prepare(evs[i:i+n])); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	big, _ := open(t, b)
	for i := 0; i < len(evs); i += 4096 {
		part := evs[i:min(i+4096, len(evs))]
		if _, err := big.Apply(ctx, after(part), viewrow.Prepare(part)); err != nil {
			t.Fatal(err)
		}
	}
	SameViews(t, small, big)
}

// testResetWhileRunning resets the views under a running runner, as
// `pickup replay` does: the runner notices and follows the log again from
// position zero, and the views end equal to a rebuild.
func testResetWhileRunning(t *testing.T, b Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log, _ := openLog(t)
	steps := History(HistoryConfig{Events: size(3000), Seed: 31})
	s, _ := open(t, b)
	done := make(chan error, 1)
	go func() { done <- newRunner(t, log, s, 0).Run(ctx) }()
	if err := AppendConcurrently(ctx, log, steps[:len(steps)/2], 32); err != nil {
		t.Fatal(err)
	}
	head, _ := log.Head(ctx)
	waitFor(t, s, head)
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := AppendConcurrently(ctx, log, steps[len(steps)/2:], 32); err != nil {
		t.Fatal(err)
	}
	head, _ = log.Head(ctx)
	waitFor(t, s, head)
	cancel()
	<-done
	rebuilt, _ := open(t, b)
	catchUp(t, log, rebuilt, 4096)
	SameViews(t, s, rebuilt)
}

// testConcurrentRunners runs two runners, on two handles to the same views,
// at once: every batch counts once.
func testConcurrentRunners(t *testing.T, b Backend) {
	ctx := context.Background()
	log, _ := openLog(t)
	if err := AppendConcurrently(ctx, log, History(HistoryConfig{Events: size(4000), Seed: 9}), 8); err != nil {
		t.Fatal(err)
	}
	first, loc := open(t, b)
	second := openAt(t, b, loc)
	var wg sync.WaitGroup
	for i, s := range []Store{first, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			catchUp(t, log, s, 50+i*13)
		}()
	}
	wg.Wait()
	alone, _ := open(t, b)
	catchUp(t, log, alone, 4096)
	SameViews(t, first, alone)
}

// testBatchCuts catches the same history up in batches of many sizes:
// the views are the same wherever the runner cut the log (a root released
// and its CAR validated in one batch or two once showed two release
// times).
func testBatchCuts(t *testing.T, b Backend) {
	log, _ := openLog(t)
	if err := AppendConcurrently(context.Background(), log, History(HistoryConfig{Events: 4000, Seed: 9}), 8); err != nil {
		t.Fatal(err)
	}
	whole, _ := open(t, b)
	catchUp(t, log, whole, 1<<16)
	for _, batch := range []int{7, 50, 63} {
		s, _ := open(t, b)
		catchUp(t, log, s, batch)
		SameViews(t, s, whole)
	}
}

// testKilledRunner kills a runner process with SIGKILL in the middle of its
// work: the views it leaves, caught up by a new runner, equal a rebuild.
// An event applied twice or skipped would show in the counters.
func testKilledRunner(t *testing.T, b Backend) {
	ctx := context.Background()
	log, logPath := openLog(t)
	if err := AppendConcurrently(ctx, log, History(HistoryConfig{Events: 3000, Seed: 13}), 8); err != nil {
		t.Fatal(err)
	}
	loc := b.NewLocation(t)
	// Create the views before the child opens them.
	openAt(t, b, loc).Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childLog+"="+logPath, childViews+"="+loc)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	var last eventlog.Position
	n := 0
	for lines.Scan() {
		p, err := strconv.ParseUint(lines.Text(), 10, 64)
		if err != nil {
			t.Fatalf("runner printed %q", lines.Text())
		}
		last = eventlog.Position(p)
		if n++; n == 40 {
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	for lines.Scan() {
	}
	cmd.Wait()
	if n < 40 {
		t.Fatalf("the runner finished after %d batches before it could be killed", n)
	}
	s := openAt(t, b, loc)
	cp, err := s.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp < last {
		t.Errorf("checkpoint %d after the kill is behind the last one acknowledged, %d", cp, last)
	}
	catchUp(t, log, s, 500)
	rebuilt, _ := open(t, b)
	catchUp(t, log, rebuilt, 4096)
	SameViews(t, s, rebuilt)
	t.Logf("runner killed after checkpoint %d; resumed from %d to the end; views equal a rebuild", last, cp)
}
