package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

// testEnv runs commands with captured output and the given environment.
func testEnv(vars map[string]string) (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errs bytes.Buffer
	return &env{stdout: &out, stderr: &errs, getenv: func(k string) string { return vars[k] }}, &out, &errs
}

// seedLog writes two streams to a new embedded log and returns its path and
// the events as recorded.
func seedLog(t *testing.T) (string, []eventlog.Event) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := embedded.Open(context.Background(), path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	corr := uuid.New()
	for i, stream := range []string{"pin-a", "pin-b", "pin-a"} {
		e := eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: json.RawMessage(`{"n":` + string(rune('0'+i)) + `}`),
			Meta: eventlog.Metadata{Actor: "test", CorrelationID: corr, Time: time.Date(2026, 11, 25, 12, 0, i, 0, time.UTC)}}
		if _, err := s.Append(context.Background(), stream, eventlog.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ReadAll(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	return path, all
}

func decodeLines(t *testing.T, out string) []eventlog.Event {
	t.Helper()
	var evs []eventlog.Event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e eventlog.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

func TestEventsCatPrintsOneStreamAsJSONLines(t *testing.T) {
	path, all := seedLog(t)
	e, out, errs := testEnv(map[string]string{"PICKUP_EVENTLOG": path})
	if code := run(context.Background(), e, []string{"events", "cat", "pin-a"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	got := decodeLines(t, out.String())
	if len(got) != 2 || got[0].ID != all[0].ID || got[1].ID != all[2].ID {
		t.Fatalf("events cat pin-a printed %v, want the two events of pin-a", got)
	}
	first := got[0]
	if first.Stream != "pin-a" || first.Revision != 0 || first.Type != "Tested" || string(first.Data) != `{"n":0}` ||
		first.Meta.Actor != "test" || first.Meta.CorrelationID != all[0].Meta.CorrelationID || !first.Meta.Time.Equal(all[0].Meta.Time) {
		t.Errorf("printed event %+v, want %+v", first, all[0])
	}
}

func TestEventsTailPrintsTheLogInOrderFromAPosition(t *testing.T) {
	path, all := seedLog(t)
	e, out, errs := testEnv(nil)
	args := []string{"events", "tail", "--eventlog", path, "--from", "1"}
	if code := run(context.Background(), e, args); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	got := decodeLines(t, out.String())
	if len(got) != 2 || got[0].ID != all[1].ID || got[1].ID != all[2].ID {
		t.Fatalf("events tail --from 1 printed %v, want the 2nd and 3rd events", got)
	}
}

func TestEventsTailFollowsNewEvents(t *testing.T) {
	path, all := seedLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &telemetrytest.Buffer{}
	e := &env{stdout: out, stderr: out, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, []string{"events", "tail", "--eventlog", path, "--follow"}) }()
	s, err := embedded.Open(ctx, path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := uuid.New()
	if _, err := s.Append(ctx, "pin-c", eventlog.NoStream, eventlog.Proposed{ID: id, Type: "Tested", Version: 1, Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), id.String()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("interrupted tail exited %d, want 0", code)
	}
	got := decodeLines(t, out.String())
	if len(got) != len(all)+1 || got[len(all)].ID != id {
		t.Errorf("tail --follow printed %d events, want the %d old ones and then %s", len(got), len(all), id)
	}
}

func TestEventsRefusesBadArguments(t *testing.T) {
	path, _ := seedLog(t)
	for _, args := range [][]string{
		{"events"},
		{"events", "dump"},
		{"events", "cat"},
		{"events", "cat", "$all", "--eventlog", path},
		{"events", "tail", "--from", "-3", "--eventlog", path},
		{"events", "tail", "--eventlog", "http://example.com/log"},
	} {
		e, out, errs := testEnv(nil)
		if code := run(context.Background(), e, args); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage); stderr %q", args, code, errs)
		}
		if out.Len() != 0 {
			t.Errorf("%v: printed %q", args, out)
		}
	}
	e, _, errs := testEnv(nil)
	if code := run(context.Background(), e, []string{"events", "cat", "--eventlog", path, "pin-missing"}); code != 1 || !strings.Contains(errs.String(), "no events") {
		t.Errorf("cat of a missing stream: exit %d, stderr %q; want 1 and a message", code, errs)
	}
}
