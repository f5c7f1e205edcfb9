package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/projections/viewtest"
)

// copyChildArgs, set in a child process of the test binary, makes
// TestEventsCopyChild run pickup with these arguments (one per line): how
// TestEventsCopyMovesAHistory kills a copy midway.
const copyChildArgs = "PICKUP_TEST_EVENTS_COPY_ARGS"

// TestEventsCopyChild is not a test: it is pickup itself, in a child
// process that TestEventsCopyMovesAHistory starts and kills.
func TestEventsCopyChild(t *testing.T) {
	args := os.Getenv(copyChildArgs)
	if args == "" {
		t.Skip("runs only as the child of TestEventsCopyMovesAHistory")
	}
	e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: func(string) string { return "" }}
	os.Exit(run(context.Background(), e, strings.Split(args, "\n")))
}

// TestEventsCopyMovesAHistory copies a pickup history from an embedded log
// to PostgreSQL and from there to another embedded log, killing the second
// copy with SIGKILL midway and running it again: the last log holds the
// first's events exactly (streams, revisions, ids, types, versions, data,
// metadata, log order), a rerun writes nothing, and views built from the
// first log verify clean against the last.
func TestEventsCopyMovesAHistory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	first, last := filepath.Join(dir, "first.db"), filepath.Join(dir, "last.db")
	views := filepath.Join(dir, "views.db")
	log, err := embedded.Open(ctx, first, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := viewtest.AppendConcurrently(ctx, log, viewtest.History(viewtest.HistoryConfig{Events: 3000, Seed: 16}), 16); err != nil {
		t.Fatal(err)
	}
	log.Close()
	want := readWhole(t, first)
	pgURL := startPostgres(t)

	pickup := func(vars map[string]string, args ...string) (int, string, string) {
		t.Helper()
		e, out, errs := testEnv(vars)
		code := run(ctx, e, args)
		return code, out.String(), errs.String()
	}
	if code, _, errs := pickup(map[string]string{"PICKUP_EVENTLOG": first, "PICKUP_VIEWS": views}, "replay"); code != 0 {
		t.Fatalf("replay of the first log: exit %d: %s", code, errs)
	}

	code, out, errs := pickup(nil, "events", "copy", "--from", first, "--to", pgURL)
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("copy to PostgreSQL: exit %d\n%s%s", code, out, errs)
	}
	checkVerification(t, out, len(want))

	// The same log by the other scheme PostgreSQL's URLs have.
	pgURL = "postgresql://" + strings.TrimPrefix(pgURL, "postgres://")
	killed := killCopyMidway(t, pgURL, last, len(want))
	code, out, errs = pickup(nil, "events", "copy", "--from", pgURL, "--to", last)
	if code != 0 || !strings.Contains(errs, "resuming after") {
		t.Fatalf("copy again after the kill: exit %d\n%s%s", code, out, errs)
	}
	checkVerification(t, out, len(want))
	if !strings.Contains(out, "copied "+strconv.Itoa(len(want)-killed)+" events") {
		t.Errorf("the rerun after a kill at %d events did not copy just the rest:\n%s", killed, out)
	}
	sameHistory(t, want, readWhole(t, last))

	code, out, errs = pickup(nil, "events", "copy", "--from", pgURL, "--to", last)
	if code != 0 || !strings.Contains(out, "copied 0 events") {
		t.Fatalf("copy over a complete copy: exit %d\n%s%s", code, out, errs)
	}
	sameHistory(t, want, readWhole(t, last))

	code, out, errs = pickup(map[string]string{"PICKUP_EVENTLOG": last, "PICKUP_VIEWS": views}, "replay", "--verify")
	if code != 0 || !strings.Contains(out, "equal a rebuild") {
		t.Fatalf("replay --verify of the first log's views against the copy: exit %d\n%s%s", code, out, errs)
	}
}

// killCopyMidway runs the copy from src to dst (an embedded log) in a
// child process and kills it with SIGKILL once dst holds a quarter of the
// total. It returns how many events dst holds after the kill.
func killCopyMidway(t *testing.T, src, dst string, total int) int {
	t.Helper()
	target, err := embedded.Open(context.Background(), dst, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEventsCopyChild$")
	cmd.Env = append(os.Environ(), copyChildArgs+"="+strings.Join([]string{"events", "copy", "--from", src, "--to", dst, "--page", "50"}, "\n"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		select {
		case err := <-exited:
			t.Fatalf("the copy ended (%v) before it could be killed midway:\n%s", err, out.String())
		case <-time.After(2 * time.Millisecond):
		}
		head, err := target.Head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if int(head) >= total/4 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	held := len(readAllOf(t, target))
	if held >= total {
		t.Fatalf("the killed copy had copied all %d events", total)
	}
	t.Logf("copy killed with %d of %d events copied", held, total)
	return held
}

// TestEventsCopyRefusesAnotherHistory: a target that holds events of its
// own is not written to, and bad command lines are refused before anything
// is opened.
func TestEventsCopyRefusesAnotherHistory(t *testing.T) {
	ctx := context.Background()
	src, _ := seedLog(t)
	other := filepath.Join(t.TempDir(), "other.db")
	s, err := embedded.Open(ctx, other, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stranger := eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: json.RawMessage(`{}`)}
	if _, err := s.Append(ctx, "pin-stranger", eventlog.NoStream, stranger); err != nil {
		t.Fatal(err)
	}
	s.Close()
	e, out, errs := testEnv(nil)
	if code := run(ctx, e, []string{"events", "copy", "--from", src, "--to", other}); code != 1 || !strings.Contains(errs.String(), "another history") {
		t.Errorf("copy into a log of another history: exit %d\n%s%s", code, out, errs)
	}
	if got := readWhole(t, other); len(got) != 1 || got[0].ID != stranger.ID {
		t.Errorf("the refused target holds %d events, want its 1", len(got))
	}
	for _, args := range [][]string{
		{"events", "copy", "--from", src},
		{"events", "copy", "--to", other},
		{"events", "copy", "--from", src, "--to", src},
		{"events", "copy", "--from", src, "--to", other, "--page", "0"},
		{"events", "copy", "--from", src, "--to", "ftp://example.com/log"},
		{"events", "copy", "--from", src, "--to", other, "extra"},
	} {
		e, _, errs := testEnv(nil)
		if code := run(ctx, e, args); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage): %s", args, code, errs)
		}
	}
	if got := readWhole(t, other); len(got) != 1 {
		t.Errorf("refused command lines changed the target: %d events", len(got))
	}
}

// checkVerification checks the copy's printed verification: both sides
// the same count, the expected one, and the same checksum.
func checkVerification(t *testing.T, out string, events int) {
	t.Helper()
	var source, target string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "source: "); ok {
			source = v
		}
		if v, ok := strings.CutPrefix(line, "target: "); ok {
			target = v
		}
	}
	if source == "" || source != target || !strings.HasPrefix(source, strconv.Itoa(events)+" events, sha256 ") {
		t.Errorf("verification printed source %q, target %q; want both %d events with one checksum", source, target, events)
	}
}

// readWhole reads every event of the embedded log at path.
func readWhole(t *testing.T, path string) []eventlog.Event {
	t.Helper()
	s, err := embedded.Open(context.Background(), path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return readAllOf(t, s)
}

func readAllOf(t *testing.T, s eventlog.Store) []eventlog.Event {
	t.Helper()
	var all []eventlog.Event
	for after := eventlog.Position(0); ; {
		evs, err := s.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Position
	}
}

// sameHistory compares two logs event by event, in log order, in all but
// their positions.
func sameHistory(t *testing.T, want, got []eventlog.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("the copy holds %d events, the source %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.Stream != w.Stream || g.Revision != w.Revision || g.ID != w.ID || g.Type != w.Type || g.Version != w.Version ||
			!bytes.Equal(g.Data, w.Data) || !g.Meta.Time.Equal(w.Meta.Time) || g.Meta.Actor != w.Meta.Actor ||
			g.Meta.CorrelationID != w.Meta.CorrelationID || g.Meta.CausationID != w.Meta.CausationID {
			t.Fatalf("event %d of the copy is %+v, the source's %+v", i, g, w)
		}
	}
}
