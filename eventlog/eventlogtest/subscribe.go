package eventlogtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// collector gathers what a subscription delivers, and checks as it goes
// that positions only increase.
type collector struct {
	mu     sync.Mutex
	events []eventlog.Event
	bad    []string
	more   chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) handle(batch []eventlog.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(batch) == 0 {
		c.bad = append(c.bad, "an empty batch")
	}
	for _, e := range batch {
		if n := len(c.events); n > 0 && e.Position <= c.events[n-1].Position {
			c.bad = append(c.bad, fmt.Sprintf("position %d after %d", e.Position, c.events[n-1].Position))
		}
		c.events = append(c.events, e)
	}
	select {
	case c.more <- struct{}{}:
	default:
	}
	return nil
}

// wait waits until n events have arrived, then returns them.
func (c *collector) wait(t testing.TB, n int) []eventlog.Event {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.events)
		c.mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("subscription delivered %d events in 30s, want %d", got, n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bad) > 0 {
		t.Errorf("subscription delivered out of order: %v", c.bad)
	}
	return append([]eventlog.Event(nil), c.events...)
}

// subscribe runs a subscription until the test ends.
func subscribe(t *testing.T, s eventlog.Store, after eventlog.Position, f eventlog.Filter) *collector {
	c := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, after, f, c.handle) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("subscription ended with %v, want context.Canceled", err)
		}
	})
	return c
}

func sameIDs(t testing.TB, what string, got []eventlog.Event, want []uuid.UUID) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i] {
			t.Fatalf("%s: event %d is %s, want %s", what, i, got[i].ID, want[i])
		}
	}
}

func testSubscribeCatchUpThenLive(t *testing.T, b Backend) {
	s, _ := open(t, b)
	p := prefix()
	start, err := s.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var want []uuid.UUID
	appendN := func(from, n int) {
		for i := from; i < from+n; i++ {
			stream := fmt.Sprintf("%s%d", p, i%5)
			e := event(stream, i)
			mustAppend(t, s, stream, eventlog.Any, e)
			want = append(want, e.ID)
		}
	}
	// More events than one batch before subscribing, so that catching up
	// takes several reads, then more while it catches up, then more live.
	appendN(0, 2500)
	c := subscribe(t, s, start, eventlog.Filter{StreamPrefixes: []string{p}})
	appendN(2500, 300)
	c.wait(t, 2600)
	appendN(2800, 50)
	got := c.wait(t, len(want))
	sameIDs(t, "catch-up then live", got, want)
	// Nothing more arrives: no duplicates after the switch to live.
	time.Sleep(200 * time.Millisecond)
	if got := c.wait(t, len(want)); len(got) != len(want) {
		t.Errorf("subscription delivered %d events, want exactly %d", len(got), len(want))
	}
}

func testSubscribeFiltered(t *testing.T, b Backend) {
	s, _ := open(t, b)
	p := prefix()
	start, err := s.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pins, tokens := p+"pin-", p+"token-"
	byPrefix := subscribe(t, s, start, eventlog.Filter{StreamPrefixes: []string{pins}})
	byType := subscribe(t, s, start, eventlog.Filter{StreamPrefixes: []string{p}, Types: []string{"Wanted", "AlsoWanted"}})
	var wantPins, wantTyped []uuid.UUID
	types := []string{"Wanted", "Unwanted", "AlsoWanted"}
	for i := range 3000 {
		stream := pins + fmt.Sprint(i%3)
		if i%2 == 1 {
			stream = tokens + fmt.Sprint(i%3)
		}
		e := event(stream, i)
		e.Type = types[i%3]
		mustAppend(t, s, stream, eventlog.Any, e)
		if i%2 == 0 {
			wantPins = append(wantPins, e.ID)
		}
		if e.Type != "Unwanted" {
			wantTyped = append(wantTyped, e.ID)
		}
	}
	sameIDs(t, "stream prefix filter", byPrefix.wait(t, len(wantPins)), wantPins)
	sameIDs(t, "type filter", byType.wait(t, len(wantTyped)), wantTyped)
}

func testSubscribeAcrossHandles(t *testing.T, b Backend) {
	writer, loc := open(t, b)
	reader := openAt(t, b, loc)
	p := prefix()
	start, err := reader.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := subscribe(t, reader, start, eventlog.Filter{StreamPrefixes: []string{p}})
	var want []uuid.UUID
	for i := range 100 {
		stream := fmt.Sprintf("%s%d", p, i%4)
		e := event(stream, i)
		mustAppend(t, writer, stream, eventlog.Any, e)
		want = append(want, e.ID)
	}
	sameIDs(t, "events appended through another handle", c.wait(t, len(want)), want)
}

var errStop = errors.New("subscriber stops")

func testSubscriberRestart(t *testing.T, b Backend) {
	s, _ := open(t, b)
	p := prefix()
	start, err := s.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f := eventlog.Filter{StreamPrefixes: []string{p}}
	var want []uuid.UUID
	for i := range 200 {
		stream := fmt.Sprintf("%s%d", p, i%3)
		e := event(stream, i)
		mustAppend(t, s, stream, eventlog.Any, e)
		want = append(want, e.ID)
	}
	// A subscriber that stops (as if it crashed) after 70 events, having
	// stored its checkpoint after each one.
	var seen []eventlog.Event
	checkpoint := start
	err = s.Subscribe(t.Context(), start, f, func(batch []eventlog.Event) error {
		for _, e := range batch {
			if len(seen) == 70 {
				return errStop
			}
			seen = append(seen, e)
			checkpoint = e.Position
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("subscription ended with %v, want the handler's error", err)
	}
	for i := 200; i < 250; i++ {
		stream := fmt.Sprintf("%s%d", p, i%3)
		e := event(stream, i)
		mustAppend(t, s, stream, eventlog.Any, e)
		want = append(want, e.ID)
	}
	c := subscribe(t, s, checkpoint, f)
	rest := c.wait(t, len(want)-70)
	sameIDs(t, "events before and after the restart", append(seen, rest...), want)
}

func testSubscribeStops(t *testing.T, b Backend) {
	s, _ := open(t, b)
	stream := prefix() + "pin"
	mustAppend(t, s, stream, eventlog.NoStream, event(stream, 0))
	f := eventlog.Filter{StreamPrefixes: []string{stream}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, 0, f, func([]eventlog.Event) error { return nil }) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled subscription ended with %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("subscription still running 10s after its context was cancelled")
	}
}
