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
// testKilledWriter, the writer process it kills.
func Main(m *testing.M, b Backend) {
	if loc := os.Getenv(writerLocation); loc != "" {
		if err := runWriter(b, loc, os.Getenv(writerPrefix)); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
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

func testKilledWriter(t *testing.T, b Backend) {
	loc := b.NewLocation(t)
	p := prefix()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerLocation+"="+loc, writerPrefix+"="+p)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct {
		stream   string
		revision uint64
		id       uuid.UUID
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
		if len(acks) >= 2000 && !killed {
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

	s := openAt(t, b, loc)
	streams := map[string][]eventlog.Event{}
	for g := range writerStreams {
		stream := fmt.Sprintf("%s%d", p, g)
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
	// The log is still writable where the writer stopped.
	stream := p + "0"
	n := len(streams[stream])
	mustAppend(t, s, stream, eventlog.ExpectedAfter(uint64(n-1), n > 0), event(stream, n))
	t.Logf("writer killed after %d acknowledged events; all present, none torn", len(acks))
}
