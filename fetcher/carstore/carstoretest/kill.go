package carstoretest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
)

// Environment of the writer process that the kill cases start.
const (
	writerBackend  = "PICKUP_CARSTORETEST_WRITER_BACKEND"
	writerLocation = "PICKUP_CARSTORETEST_WRITER_LOCATION"
	writerPrefix   = "PICKUP_CARSTORETEST_WRITER_PREFIX"
)

// Main runs the tests, or, when the test binary was started by a kill
// case, the writer process it kills. A store's test package runs it with
//
//	func TestMain(m *testing.M) { carstoretest.Main(m, backend, ...) }
func Main(m *testing.M, backends ...Backend) {
	if name := os.Getenv(writerBackend); name != "" {
		i := slices.IndexFunc(backends, func(b Backend) bool { return b.Name == name })
		if i < 0 {
			fmt.Fprintf(os.Stderr, "writer: no backend %q\n", name)
			os.Exit(1)
		}
		if err := runWriter(backends[i], os.Getenv(writerLocation), os.Getenv(writerPrefix)); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The writer's requests, after its prefix: one killed mid-upload (attempt
// 1), one killed between Complete and Promote (attempt 1), and one whose
// attempt 1 was staged and whose attempt 2 is uploading when the writer
// stops (to be killed, or to live on beside the test).
const (
	reqUploading = "-uploading"
	reqStaged    = "-staged"
	reqRunning   = "-running"
)

// runWriter leaves, in the store at loc, what a fetcher killed at those
// points leaves, prints "ready", and waits to be killed.
func runWriter(b Backend, loc, prefix string) error {
	ctx := context.Background()
	s, err := b.Open(ctx, loc)
	if err != nil {
		return err
	}
	write := func(req string, attempt, size int, complete bool) error {
		c := writerCar(prefix, req, attempt, size)
		up, err := s.Stage(ctx, carstore.StagingKey(c.meta.RequestID, attempt), c.meta)
		if err != nil {
			return err
		}
		if err := writeChunks(up, c.data); err != nil {
			return err
		}
		if complete {
			_, err = up.Complete(ctx)
		}
		return err
	}
	steps := []struct {
		req      string
		attempt  int
		size     int
		complete bool
	}{
		{reqUploading, 1, 6 * carstore.MiB, false},
		{reqStaged, 1, 2 * carstore.MiB, true},
		{reqRunning, 1, 1 * carstore.MiB, true},
		{reqRunning, 2, 6 * carstore.MiB, false},
	}
	for _, st := range steps {
		if err := write(st.req, st.attempt, st.size, st.complete); err != nil {
			return fmt.Errorf("%s attempt %d: %w", st.req, st.attempt, err)
		}
	}
	if _, err := fmt.Println("ready"); err != nil {
		return err
	}
	select {}
}

// writerCar is the CAR the writer writes for an attempt of a request.
func writerCar(prefix, req string, attempt, size int) car {
	c := newCar(uint64(len(req)*31+attempt), size)
	c.meta.RequestID = prefix + req
	return c
}

// hasUpload reports whether open names the upload of an attempt: at its
// staging key (the directory store), or at its root's key in the carpark
// (the S3 store).
func hasUpload(open []carstore.OpenUpload, prefix, req string, attempt int) bool {
	c := writerCar(prefix, req, attempt, 0)
	return slices.ContainsFunc(open, func(u carstore.OpenUpload) bool {
		return u.Area == carstore.AreaStaging && u.Key == carstore.StagingKey(c.meta.RequestID, attempt) ||
			u.Area == carstore.AreaCarpark && u.Key == carstore.RootKey(c.meta.Root)
	})
}

// writer is a writer process started on a store's location.
type writer struct {
	cmd  *exec.Cmd
	done chan error
}

// startWriter starts the writer process on in's location and waits until
// it has left what it leaves.
func startWriter(t *testing.T, b Backend, in Instance, prefix string) *writer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerBackend+"="+b.Name, writerLocation+"="+in.Location, writerPrefix+"="+prefix)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &writer{cmd: cmd, done: make(chan error, 1)}
	t.Cleanup(func() { w.kill(t) })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("writer printed %q, not ready: %v", lines.Text(), cmd.Wait())
	}
	go func() { w.done <- cmd.Wait() }()
	return w
}

// kill kills the writer with SIGKILL, as a crash would, and waits for it.
func (w *writer) kill(t *testing.T) {
	if w.cmd.ProcessState != nil || w.done == nil {
		return
	}
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return // gone already
	}
	<-w.done
	w.done = nil
}

// sweepWith opens the store at in's location again, as a process that
// starts does, and sweeps it, with through answering for the writer's
// requests (and failing the test for any other). killed says the writer
// is dead: a store that removes dead processes' uploads as it opens must
// have removed its uploads before the sweep.
func sweepWith(t *testing.T, b Backend, in Instance, prefix string, killed bool, through map[string]int) Store {
	t.Helper()
	ctx := context.Background()
	s, err := b.Open(ctx, in.Location)
	if err != nil {
		t.Fatalf("open the store again: %v", err)
	}
	if c, ok := s.(io.Closer); ok {
		t.Cleanup(func() { c.Close() })
	}
	if in.RemovesDeadUploads && killed {
		if open, err := in.Store.OpenUploads(ctx); err != nil || len(open) > 0 {
			t.Errorf("a store opened again left the dead writer's uploads %+v (%v)", open, err)
		}
	}
	if _, err := s.Sweep(ctx, func(_ context.Context, requestID string) (int, error) {
		req, ok := strings.CutPrefix(requestID, prefix)
		n, known := through[req]
		if !ok || !known {
			t.Errorf("sweep asked about request %q, which no one wrote", requestID)
			return 0, nil
		}
		return n, nil
	}); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return s
}

// A writer killed mid-upload, and one killed between staging and
// promoting, leave nothing once a store opens the storage again and
// sweeps it, told which attempts are over: the directory store removes
// the dead process's uploads as it opens (whatever the sweep says), the S3
// store aborts them through their staging markers.
func testKilledWriterSwept(t *testing.T, b Backend) {
	if b.Open == nil {
		t.Skip("the backend cannot open a store again")
	}
	in := b.New(t, smallParts)
	prefix := fmt.Sprintf("kill%d", os.Getpid())
	w := startWriter(t, b, in, prefix)
	w.kill(t)
	if keys := in.Keys(t, carstore.AreaStaging); len(keys) != 2 {
		t.Fatalf("the killed writer left staged %v, want two CARs", keys)
	}
	if open, err := in.Store.OpenUploads(context.Background()); err != nil || len(open) < 2 {
		t.Fatalf("the killed writer left open uploads %+v (%v), want two at least", open, err)
	}
	// Attempt 1 of each request is over (failed, final); attempt 2 of the
	// running one too, its writer dead.
	sweepWith(t, b, in, prefix, true, map[string]int{reqUploading: 1, reqStaged: math.MaxInt, reqRunning: 2})
	checkNothingLeft(t, in)
	checkCarparkEmpty(t, in)
}

// A writer that lives on in another process keeps its upload through
// another store's start and sweep, when the sweep is told its attempt is
// not over: only its request's earlier attempt goes. Once the writer is
// killed, the next start and sweep leave nothing.
func testLiveWriterKept(t *testing.T, b Backend) {
	if b.Open == nil {
		t.Skip("the backend cannot open a store again")
	}
	in := b.New(t, smallParts)
	prefix := fmt.Sprintf("live%d", os.Getpid())
	w := startWriter(t, b, in, prefix)
	sweepWith(t, b, in, prefix, false, map[string]int{reqUploading: 0, reqStaged: 0, reqRunning: 1})
	if keys := in.Keys(t, carstore.AreaStaging); !slices.Equal(keys, []string{carstore.StagingKey(prefix+reqStaged, 1)}) {
		t.Errorf("after a sweep beside a live writer, staging holds %v, want the CAR it staged for a live attempt only", keys)
	}
	open, err := in.Store.OpenUploads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !hasUpload(open, prefix, reqUploading, 1) || !hasUpload(open, prefix, reqRunning, 2) || hasUpload(open, prefix, reqRunning, 1) {
		t.Errorf("after a sweep beside a live writer, open uploads %+v; want its live attempts' and not the one over", open)
	}
	w.kill(t)
	sweepWith(t, b, in, prefix, true, map[string]int{reqUploading: 1, reqStaged: math.MaxInt, reqRunning: 2})
	checkNothingLeft(t, in)
	checkCarparkEmpty(t, in)
}
