// Package eventlogtest is the conformance suite of eventlog.Store: the
// behaviour every backend must have, written once and run against each.
//
// A backend's test package runs it with
//
//	func TestMain(m *testing.M) { eventlogtest.Main(m, backend) }
//	func TestConformance(t *testing.T) { eventlogtest.Run(t, backend) }
//
// Main is needed because one case kills a writer process with SIGKILL: the
// test binary runs itself as that writer.
//
// Every case works inside streams with a prefix of its own, so the suite can
// run against a shared server whose log already holds other events.
package eventlogtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Backend describes a Store implementation to the suite.
type Backend struct {
	// Open opens the log at location. Opening a location again, while
	// another Store has it open or after that Store was closed, opens the
	// same log.
	Open func(ctx context.Context, location string) (eventlog.Store, error)
	// NewLocation returns a location for one test: a fresh, empty log where
	// the backend can make one, or a shared server.
	NewLocation func(t testing.TB) string
}

// Run runs every case of the suite against b.
func Run(t *testing.T, b Backend) {
	cases := []struct {
		name string
		run  func(*testing.T, Backend)
	}{
		{"AppendAndRead", testAppendAndRead},
		{"ExpectedState", testExpectedState},
		{"ReadBackwards", testReadBackwards},
		{"ReadAllAndHead", testReadAllAndHead},
		{"InvalidInput", testInvalidInput},
		{"RetriedAppendWritesOnce", testRetriedAppend},
		{"DuplicateIDRefused", testDuplicateID},
		{"RaceAtOneRevision", testRace},
		{"ReopenKeepsEverything", testReopen},
		{"ClosedStoreRefuses", testClosed},
		{"SubscribeCatchUpThenLive", testSubscribeCatchUpThenLive},
		{"SubscribeFiltered", testSubscribeFiltered},
		{"SubscribeAcrossHandles", testSubscribeAcrossHandles},
		{"SubscriberRestartsFromCheckpoint", testSubscriberRestart},
		{"SubscribeStops", testSubscribeStops},
		{"ConcurrentAppendsFollowed", testConcurrentAppendsFollowed},
		{"KilledWriterLosesNothing", testKilledWriter},
		{"SharedByProcesses", testSharedByProcesses},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, b) })
	}
}

// open opens a store at a new location and closes it when the test ends.
func open(t *testing.T, b Backend) (eventlog.Store, string) {
	t.Helper()
	loc := b.NewLocation(t)
	return openAt(t, b, loc), loc
}

func openAt(t *testing.T, b Backend, loc string) eventlog.Store {
	t.Helper()
	s, err := b.Open(t.Context(), loc)
	if err != nil {
		t.Fatalf("open %s: %v", loc, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// prefix returns a stream prefix no other test uses.
func prefix() string { return "t" + uuid.NewString()[:8] + "-" }

// body is the data of the suite's events: it names where the event should
// be, so that a torn or misplaced event shows.
type body struct {
	Stream string `json:"stream"`
	N      int    `json:"n"`
}

func event(stream string, n int) eventlog.Proposed {
	data, _ := json.Marshal(body{Stream: stream, N: n})
	return eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: data}
}

func events(stream string, from, count int) []eventlog.Proposed {
	out := make([]eventlog.Proposed, count)
	for i := range out {
		out[i] = event(stream, from+i)
	}
	return out
}

func mustAppend(t testing.TB, s eventlog.Store, stream string, exp eventlog.Expected, evs ...eventlog.Proposed) eventlog.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, exp, evs...)
	if err != nil {
		t.Fatalf("append to %s expecting %s: %v", stream, exp, err)
	}
	return res
}

func readStream(t testing.TB, s eventlog.Store, stream string) []eventlog.Event {
	t.Helper()
	evs, err := s.ReadStream(context.Background(), stream, 0, eventlog.Forwards, 10000)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return evs
}

// readPrefix reads every event of the log after pos whose stream has the
// prefix.
func readPrefix(t testing.TB, s eventlog.Store, after eventlog.Position, prefix string) []eventlog.Event {
	t.Helper()
	f := eventlog.Filter{StreamPrefixes: []string{prefix}}
	var out []eventlog.Event
	for {
		evs, err := s.ReadAll(context.Background(), after, 500)
		if err != nil {
			t.Fatalf("read all after %d: %v", after, err)
		}
		if len(evs) == 0 {
			return out
		}
		for _, e := range evs {
			if f.Matches(e) {
				out = append(out, e)
			}
		}
		after = evs[len(evs)-1].Position
	}
}

func dataOf(t testing.TB, e eventlog.Event) body {
	t.Helper()
	var b body
	if err := json.Unmarshal(e.Data, &b); err != nil {
		t.Fatalf("event %s at %s/%d: data %q: %v", e.ID, e.Stream, e.Revision, e.Data, err)
	}
	return b
}

func testAppendAndRead(t *testing.T, b Backend) {
	s, _ := open(t, b)
	stream := prefix() + "pin"
	corr, cause := uuid.New(), uuid.New()
	when := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	in := events(stream, 0, 3)
	in[0].Meta = eventlog.Metadata{Time: when, Actor: "gateway", CorrelationID: corr, CausationID: cause}
	in[1].Type, in[1].Version = "Other", 2
	before := time.Now().Add(-time.Second)
	res := mustAppend(t, s, stream, eventlog.NoStream, in...)
	if res.Revision != 2 {
		t.Errorf("append result revision = %d, want 2", res.Revision)
	}
	got := readStream(t, s, stream)
	if len(got) != 3 {
		t.Fatalf("read %d events, want 3", len(got))
	}
	for i, e := range got {
		if e.ID != in[i].ID || e.Stream != stream || e.Revision != uint64(i) || e.Type != in[i].Type || e.Version != in[i].Version {
			t.Errorf("event %d = %s %s/%d %s v%d, want %s %s/%d %s v%d", i,
				e.ID, e.Stream, e.Revision, e.Type, e.Version, in[i].ID, stream, i, in[i].Type, in[i].Version)
		}
		if dataOf(t, e) != (body{Stream: stream, N: i}) {
			t.Errorf("event %d data = %s", i, e.Data)
		}
		if i > 0 && e.Position <= got[i-1].Position {
			t.Errorf("positions not increasing: %d after %d", e.Position, got[i-1].Position)
		}
	}
	if got[2].Position != res.Position {
		t.Errorf("last event at position %d, append said %d", got[2].Position, res.Position)
	}
	m := got[0].Meta
	if !m.Time.Equal(when) || m.Actor != "gateway" || m.CorrelationID != corr || m.CausationID != cause {
		t.Errorf("metadata = %+v, want time %v actor gateway correlation %s causation %s", m, when, corr, cause)
	}
	if stamped := got[1].Meta.Time; stamped.Before(before) || stamped.After(time.Now().Add(time.Second)) {
		t.Errorf("event without a time was stamped %v, want about now", stamped)
	}
	if got[1].Meta.CorrelationID != uuid.Nil || got[1].Meta.CausationID != uuid.Nil {
		t.Errorf("event without ids read back ids %+v", got[1].Meta)
	}

	// Forwards from a revision, with a limit.
	part, err := s.ReadStream(t.Context(), stream, 1, eventlog.Forwards, 1)
	if err != nil || len(part) != 1 || part[0].Revision != 1 {
		t.Errorf("read from revision 1 limit 1 = %v, %v; want the event at revision 1", part, err)
	}
	none, err := s.ReadStream(t.Context(), prefix()+"missing", 0, eventlog.Forwards, 10)
	if err != nil || len(none) != 0 {
		t.Errorf("read of a missing stream = %v, %v; want no events and no error", none, err)
	}
}

func testExpectedState(t *testing.T, b Backend) {
	s, _ := open(t, b)
	stream := prefix() + "pin"
	wrong := func(exp eventlog.Expected, wantCurrent uint64, wantExists bool) {
		t.Helper()
		_, err := s.Append(t.Context(), stream, exp, event(stream, 99))
		var w *eventlog.WrongRevisionError
		if !errors.As(err, &w) {
			t.Fatalf("append expecting %s: error %v, want *WrongRevisionError", exp, err)
		}
		if w.Stream != stream || w.Current != wantCurrent || w.Exists != wantExists || w.Expected != exp {
			t.Errorf("append expecting %s: error %+v, want current %d exists %v", exp, w, wantCurrent, wantExists)
		}
	}
	wrong(eventlog.At(0), 0, false)
	mustAppend(t, s, stream, eventlog.NoStream, events(stream, 0, 2)...)
	wrong(eventlog.NoStream, 1, true)
	wrong(eventlog.At(0), 1, true)
	wrong(eventlog.At(2), 1, true)
	if res := mustAppend(t, s, stream, eventlog.At(1), event(stream, 2)); res.Revision != 2 {
		t.Errorf("append at revision 1 wrote revision %d, want 2", res.Revision)
	}
	if res := mustAppend(t, s, stream, eventlog.Any, event(stream, 3)); res.Revision != 3 {
		t.Errorf("append expecting any wrote revision %d, want 3", res.Revision)
	}
	other := prefix() + "new"
	if res := mustAppend(t, s, other, eventlog.Any, event(other, 0)); res.Revision != 0 {
		t.Errorf("append expecting any to a new stream wrote revision %d, want 0", res.Revision)
	}
	// Refused appends wrote nothing.
	got := readStream(t, s, stream)
	if len(got) != 4 {
		t.Fatalf("stream holds %d events, want 4", len(got))
	}
	for i, e := range got {
		if n := dataOf(t, e).N; n != i {
			t.Errorf("revision %d holds event %d: a refused append wrote", i, n)
		}
	}
}

func testReadBackwards(t *testing.T, b Backend) {
	s, _ := open(t, b)
	stream := prefix() + "pin"
	mustAppend(t, s, stream, eventlog.NoStream, events(stream, 0, 5)...)
	revs := func(from uint64, limit int) []uint64 {
		t.Helper()
		evs, err := s.ReadStream(t.Context(), stream, from, eventlog.Backwards, limit)
		if err != nil {
			t.Fatalf("read backwards from %d: %v", from, err)
		}
		var out []uint64
		for _, e := range evs {
			out = append(out, e.Revision)
		}
		return out
	}
	for _, c := range []struct {
		from  uint64
		limit int
		want  string
	}{
		{eventlog.StreamEnd, 2, "[4 3]"},
		{eventlog.StreamEnd, 10, "[4 3 2 1 0]"},
		{2, 10, "[2 1 0]"},
		{0, 10, "[0]"},
		{9, 1, "[4]"},
	} {
		if got := fmt.Sprint(revs(c.from, c.limit)); got != c.want {
			t.Errorf("backwards from %d limit %d = %s, want %s", c.from, c.limit, got, c.want)
		}
	}
	evs, err := s.ReadStream(t.Context(), prefix()+"missing", eventlog.StreamEnd, eventlog.Backwards, 1)
	if err != nil || len(evs) != 0 {
		t.Errorf("backwards read of a missing stream = %v, %v; want nothing", evs, err)
	}
}

func testReadAllAndHead(t *testing.T, b Backend) {
	s, _ := open(t, b)
	p := prefix()
	head, err := s.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var want []uuid.UUID
	for i := range 30 {
		stream := fmt.Sprintf("%s%d", p, i%7)
		e := event(stream, i)
		want = append(want, e.ID)
		res := mustAppend(t, s, stream, eventlog.Any, e)
		h, err := s.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if h < res.Position || h <= head {
			t.Fatalf("head %d after an append at %d (head before %d)", h, res.Position, head)
		}
		head = h
	}
	got := readPrefix(t, s, 0, p)
	if len(got) != len(want) {
		t.Fatalf("read all found %d of the test's events, want %d", len(got), len(want))
	}
	for i, e := range got {
		if e.ID != want[i] {
			t.Fatalf("event %d of the log is %s, want %s: not in append order", i, e.ID, want[i])
		}
	}
	// Reading after a position starts right after it.
	mid := got[14].Position
	rest := readPrefix(t, s, mid, p)
	if len(rest) != 15 || rest[0].ID != want[15] {
		t.Errorf("read all after the 15th event gave %d events starting %v, want 15 starting %s", len(rest), rest[0].ID, want[15])
	}
	if _, err := s.ReadAll(t.Context(), 0, 0); !errors.Is(err, eventlog.ErrInvalid) {
		t.Errorf("read all with limit 0: %v, want ErrInvalid", err)
	}
}

func testInvalidInput(t *testing.T, b Backend) {
	s, _ := open(t, b)
	p := prefix()
	stream := p + "pin"
	good := event(stream, 0)
	noID := event(stream, 0)
	noID.ID = uuid.Nil
	badJSON := event(stream, 0)
	badJSON.Data = []byte(`{"cid":`)
	noType := event(stream, 0)
	noType.Type = ""
	sysType := event(stream, 0)
	sysType.Type = "$metadata"
	v0 := event(stream, 0)
	v0.Version = 0
	for _, c := range []struct {
		name   string
		stream string
		events []eventlog.Proposed
	}{
		{"empty stream", "", []eventlog.Proposed{good}},
		{"reserved stream", "$" + stream, []eventlog.Proposed{good}},
		{"control character", stream + "\n", []eventlog.Proposed{good}},
		{"too long", p + string(make([]byte, eventlog.MaxStreamName)), []eventlog.Proposed{good}},
		{"no events", stream, nil},
		{"no id", stream, []eventlog.Proposed{noID}},
		{"same id twice", stream, []eventlog.Proposed{good, good}},
		{"bad json", stream, []eventlog.Proposed{badJSON}},
		{"no type", stream, []eventlog.Proposed{noType}},
		{"system type", stream, []eventlog.Proposed{sysType}},
		{"version 0", stream, []eventlog.Proposed{v0}},
	} {
		if _, err := s.Append(t.Context(), c.stream, eventlog.Any, c.events...); !errors.Is(err, eventlog.ErrInvalid) {
			t.Errorf("%s: append error %v, want ErrInvalid", c.name, err)
		}
	}
	if got := readPrefix(t, s, 0, p); len(got) != 0 {
		t.Errorf("refused appends wrote %d events", len(got))
	}
	if _, err := s.ReadStream(t.Context(), stream, 0, eventlog.Forwards, 0); !errors.Is(err, eventlog.ErrInvalid) {
		t.Errorf("read with limit 0: %v, want ErrInvalid", err)
	}
}

func testRetriedAppend(t *testing.T, b Backend) {
	s, _ := open(t, b)
	stream := prefix() + "pin"
	mustAppend(t, s, stream, eventlog.NoStream, event(stream, 0))
	batch := events(stream, 1, 3)
	first := mustAppend(t, s, stream, eventlog.At(0), batch...)
	mustAppend(t, s, stream, eventlog.At(3), event(stream, 4))
	// The same append again, as a writer would retry after a lost answer:
	// with its original expectation, and with Any.
	for _, exp := range []eventlog.Expected{eventlog.At(0), eventlog.Any} {
		again, err := s.Append(t.Context(), stream, exp, batch...)
		if err != nil {
			t.Fatalf("retried append expecting %s: %v", exp, err)
		}
		if again.Revision != first.Revision {
			t.Errorf("retried append expecting %s answered revision %d, first answer %d", exp, again.Revision, first.Revision)
		}
	}
	if got := readStream(t, s, stream); len(got) != 5 {
		t.Errorf("stream holds %d events after retries, want 5", len(got))
	}
	// A retried creation of a stream.
	fresh := prefix() + "pin"
	e := event(fresh, 0)
	mustAppend(t, s, fresh, eventlog.NoStream, e)
	if _, err := s.Append(t.Context(), fresh, eventlog.NoStream, e); err != nil {
		t.Errorf("retried append expecting no stream: %v", err)
	}
	if got := readStream(t, s, fresh); len(got) != 1 {
		t.Errorf("stream holds %d events after a retried creation, want 1", len(got))
	}
}

func testDuplicateID(t *testing.T, b Backend) {
	s, _ := open(t, b)
	p := prefix()
	stream := p + "a"
	used := event(stream, 0)
	mustAppend(t, s, stream, eventlog.NoStream, used, event(stream, 1))
	other := p + "b"
	for _, c := range []struct {
		name   string
		stream string
		events []eventlog.Proposed
	}{
		{"after a new event", stream, []eventlog.Proposed{event(stream, 2), used}},
		{"followed by a new event", stream, []eventlog.Proposed{used, event(stream, 2)}},
	} {
		_, err := s.Append(t.Context(), c.stream, eventlog.Any, c.events...)
		if !errors.Is(err, eventlog.ErrDuplicateID) {
			t.Errorf("%s: error %v, want ErrDuplicateID", c.name, err)
		}
	}
	if got := readPrefix(t, s, 0, p); len(got) != 2 {
		t.Errorf("log holds %d of the test's events, want 2", len(got))
	}
	// Ids are unique within a stream only: another stream may use one.
	mustAppend(t, s, other, eventlog.NoStream, used)
}

func testRace(t *testing.T, b Backend) {
	s, _ := open(t, b)
	stream := prefix() + "pin"
	mustAppend(t, s, stream, eventlog.NoStream, event(stream, 0))
	const racers = 64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won, lost int
	var other []error
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			_, err := s.Append(context.Background(), stream, eventlog.At(0), event(stream, 100+i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case eventlog.IsWrongRevision(err):
				lost++
			default:
				other = append(other, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if won != 1 || lost != racers-1 || len(other) > 0 {
		t.Errorf("%d racers at one revision: %d won, %d lost to a wrong revision, other errors %v; want 1 and %d", racers, won, lost, other, racers-1)
	}
	if got := readStream(t, s, stream); len(got) != 2 {
		t.Errorf("stream holds %d events, want 2", len(got))
	}
}

func testReopen(t *testing.T, b Backend) {
	s, loc := open(t, b)
	stream := prefix() + "pin"
	in := events(stream, 0, 10)
	mustAppend(t, s, stream, eventlog.NoStream, in...)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s2 := openAt(t, b, loc)
	got := readStream(t, s2, stream)
	if len(got) != len(in) {
		t.Fatalf("after reopening, the stream holds %d events, want %d", len(got), len(in))
	}
	for i, e := range got {
		if e.ID != in[i].ID || dataOf(t, e).N != i {
			t.Errorf("after reopening, revision %d is %s, want %s", i, e.ID, in[i].ID)
		}
	}
	// The reopened log goes on where it was.
	if res := mustAppend(t, s2, stream, eventlog.At(9), event(stream, 10)); res.Revision != 10 {
		t.Errorf("append after reopening wrote revision %d, want 10", res.Revision)
	}
}

func testClosed(t *testing.T, b Backend) {
	s, _ := open(t, b)
	stream := prefix() + "pin"
	mustAppend(t, s, stream, eventlog.NoStream, event(stream, 0))
	subDone := make(chan error, 1)
	go func() {
		subDone <- s.Subscribe(context.Background(), 0, eventlog.Filter{StreamPrefixes: []string{stream}}, func([]eventlog.Event) error { return nil })
	}()
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := s.Append(t.Context(), stream, eventlog.Any, event(stream, 1)); !errors.Is(err, eventlog.ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadStream(t.Context(), stream, 0, eventlog.Forwards, 1); !errors.Is(err, eventlog.ErrClosed) {
		t.Errorf("read after close: %v, want ErrClosed", err)
	}
	select {
	case err := <-subDone:
		if !errors.Is(err, eventlog.ErrClosed) {
			t.Errorf("subscription ended with %v at close, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("subscription still running 10s after close")
	}
}
