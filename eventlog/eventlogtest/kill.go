package eventlogtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Environment of the writer process that testKilledWriter starts.
const (
	writerLocation = "PICKUP_EVENTLOGTEST_WRITER_LOCATION"
	writerPrefix   = "PICKUP_EVENTLOGTEST_WRITER_PREFIX"
)

// writerStreams is how many streams the writer process appends to at once;
// stream i gets appends of i%3+1 events, so a torn append would show as a
// stream whose length is not a multiple of its append size.
const writerStreams = 8

// Main runs the tests, or, when the test binary was started by
// testKilledWriter, the writer process it kills, and exits.
func Main(m *testing.M, b Backend) { os.Exit(MainCode(m, b)) }

// MainCode is Main for a TestMain that has to clean up after the tests (stop
// a server it started): it returns the exit code instead of exiting. In the
// writer process it never returns.
func MainCode(m *testing.M, b Backend) int {
	if loc := os.Getenv(writerLocation); loc != "" {
		if err := runWriter(b, loc, os.Getenv(writerPrefix)); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	return m.Run()
}

// runWriter appends to writerStreams streams until it is killed, printing a
// line "stream revision id" for every event whose append was acknowledged.
func runWriter(b Backend, loc, prefix string) error {
	ctx := context.Background()
	s, err := b.Open(ctx, loc)
	if err != nil {
		return err
	}
	var out sync.Mutex
	errs := make(chan error, writerStreams)
	for g := range writerStreams {
		go func() {
			stream := fmt.Sprintf("%s%d", prefix, g)
			size := g%3 + 1
			for n := 0; ; n += size {
				evs := events(stream, n, size)
				if _, err := s.Append(ctx, stream, eventlog.ExpectedAfter(uint64(n-1), n > 0), evs...); err != nil {
					errs <- err
					return
				}
				var line strings.Builder
				for i, e := range evs {
					fmt.Fprintf(&line, "%s %d %s\n", stream, n+i, e.ID)
				}
				out.Lock()
				_, err := os.Stdout.WriteString(line.String())
				out.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	return <-errs
}

// ack is an event the writer process was told is appended.
type ack struct {
	stream   string
	revision uint64
	id       uuid.UUID
}

// runKilledWriter starts the writer process on the log at loc, and kills it
// with SIGKILL once it has acknowledged killAfter events. It returns every
// acknowledgement the writer printed before it died.
func runKilledWriter(t *testing.T, loc, prefix string, killAfter int) []ack {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerLocation+"="+loc, writerPrefix+"="+prefix)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acks []ack
	lines := bufio.NewScanner(stdout)
	killed := false
	for lines.Scan() {
		var a ack
		var id string
		if _, err := fmt.Sscanf(lines.Text(), "%s %d %s", &a.stream, &a.revision, &id); err != nil {
			t.Fatalf("writer printed %q: %v", lines.Text(), err)
		}
		a.id = uuid.MustParse(id)
		acks = append(acks, a)
		// Kill it well into its work, with appends in flight.
		if len(acks) >= killAfter && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("writer ended by itself after %d acknowledged events: %v", len(acks), err)
	}
	return acks
}

// checkWriterStreams reads the writer's streams and checks that every
// acknowledged event is there and no append is torn or misplaced.
func checkWriterStreams(t *testing.T, s eventlog.Store, prefix string, acks []ack) map[string][]eventlog.Event {
	t.Helper()
	streams := map[string][]eventlog.Event{}
	for g := range writerStreams {
		stream := fmt.Sprintf("%s%d", prefix, g)
		streams[stream] = readStream(t, s, stream)
		size := g%3 + 1
		if n := len(streams[stream]); n%size != 0 {
			t.Errorf("%s holds %d events, not a whole number of appends of %d: an append was torn", stream, n, size)
		}
		for i, e := range streams[stream] {
			if d := dataOf(t, e); d.Stream != stream || d.N != i || e.Revision != uint64(i) {
				t.Errorf("%s revision %d holds %+v at revision %d: a torn or misplaced event", stream, i, d, e.Revision)
			}
		}
	}
	for _, a := range acks {
		evs := streams[a.stream]
		if a.revision >= uint64(len(evs)) || evs[a.revision].ID != a.id {
			t.Fatalf("acknowledged event %s at %s/%d is missing after the writer was killed", a.id, a.stream, a.revision)
		}
	}
	return streams
}

func testKilledWriter(t *testing.T, b Backend) {
	loc := b.NewLocation(t)
	p := prefix()
	acks := runKilledWriter(t, loc, p, 2000)

	s := openAt(t, b, loc)
	streams := checkWriterStreams(t, s, p, acks)
	// The log is still writable where the writer stopped.
	stream := p + "0"
	n := len(streams[stream])
	mustAppend(t, s, stream, eventlog.ExpectedAfter(uint64(n-1), n > 0), event(stream, n))
	t.Logf("writer killed after %d acknowledged events; all present, none torn", len(acks))
}

// testSharedByProcesses runs a writer process and this one on the same log
// at once: both append, and a subscriber here sees every event of both.
func testSharedByProcesses(t *testing.T, b Backend) {
	loc := b.NewLocation(t)
	s := openAt(t, b, loc)
	p := prefix()
	start, err := s.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := subscribe(t, s, start, eventlog.Filter{StreamPrefixes: []string{p}})
	mine := p + "here"
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		for ; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Append(context.Background(), mine, eventlog.ExpectedAfter(uint64(n-1), n > 0), event(mine, n)); err != nil {
				t.Errorf("append here while another process appends: %v", err)
				return
			}
		}
	}()
	acks := runKilledWriter(t, loc, p+"w", 1500)
	close(stop)
	n := <-done
	streams := checkWriterStreams(t, s, p+"w", acks)
	total := n
	for _, evs := range streams {
		total += len(evs)
	}
	got := c.wait(t, total)
	if len(got) != total {
		t.Errorf("subscriber saw %d events of both processes, want %d", len(got), total)
	}
	if here := readStream(t, s, mine); len(here) != n {
		t.Errorf("this process appended %d events, its stream holds %d", n, len(here))
	}
	t.Logf("this process appended %d events while the other appended %d", n, total-n)
}
