package eventlogtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Shape of testConcurrentAppendsFollowed: hammerWriters goroutines on two
// handles of one log, each making hammerAppends appends of 1 to 3 events,
// half to a stream of its own at the revision it knows, half to one of a
// few streams every writer shares (Any), so that commits interleave.
const (
	hammerWriters = 32
	hammerAppends = 120
	hammerShared  = 4
)

// testConcurrentAppendsFollowed hammers the log with concurrent appends
// while subscribers follow, one filtered in the store and one reading
// everything: each must see every acknowledged event exactly once, in log
// order, with no gap where a transaction committed late.
func testConcurrentAppendsFollowed(t *testing.T, b Backend) {
	s, loc := open(t, b)
	other := openAt(t, b, loc)
	p := prefix()
	start, err := s.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	filtered := subscribe(t, s, start, eventlog.Filter{StreamPrefixes: []string{p}})
	everything := newCollector()
	followAll(t, other, start, func(batch []eventlog.Event) error {
		var mine []eventlog.Event
		for _, e := range batch {
			if strings.HasPrefix(e.Stream, p) {
				mine = append(mine, e)
			}
		}
		if len(mine) == 0 {
			return nil
		}
		return everything.handle(mine)
	})

	var mu sync.Mutex
	acked := map[uuid.UUID]eventlog.Position{}
	var wg sync.WaitGroup
	for w := range hammerWriters {
		store := []eventlog.Store{s, other}[w%2]
		wg.Go(func() {
			own := fmt.Sprintf("%sown-%d", p, w)
			ownLen := 0
			for n := range hammerAppends {
				size := (w+n)%3 + 1
				stream, exp := own, eventlog.ExpectedAfter(uint64(ownLen-1), ownLen > 0)
				if n%2 == 1 {
					stream, exp = fmt.Sprintf("%sshared-%d", p, n%hammerShared), eventlog.Any
				}
				evs := events(stream, n, size)
				res, err := store.Append(context.Background(), stream, exp, evs...)
				if err != nil {
					t.Errorf("writer %d append %d to %s: %v", w, n, stream, err)
					return
				}
				if stream == own {
					ownLen += size
				}
				mu.Lock()
				for i, e := range evs {
					acked[e.ID] = res.Position - eventlog.Position(size-1-i)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	log := readPrefix(t, s, start, p)
	if len(log) != len(acked) {
		t.Fatalf("the log holds %d of the test's events, %d were acknowledged", len(log), len(acked))
	}
	for name, c := range map[string]*collector{"filtered subscriber": filtered, "unfiltered subscriber": everything} {
		got := c.wait(t, len(acked))
		if len(got) != len(acked) {
			t.Errorf("%s saw %d events, want exactly %d", name, len(got), len(acked))
		}
		seen := map[uuid.UUID]bool{}
		for i, e := range got {
			switch {
			case seen[e.ID]:
				t.Fatalf("%s saw event %s twice", name, e.ID)
			case i < len(log) && e.ID != log[i].ID:
				t.Fatalf("%s: event %d is %s at %d, the log has %s at %d: a gap or a reordering", name, i, e.ID, e.Position, log[i].ID, log[i].Position)
			}
			seen[e.ID] = true
		}
	}
	// Each stream is whole: revisions 0, 1, 2, ... in log order.
	revs := map[string]uint64{}
	for _, e := range log {
		if e.Revision != revs[e.Stream] {
			t.Fatalf("%s: revision %d follows %d events in log order", e.Stream, e.Revision, revs[e.Stream])
		}
		revs[e.Stream]++
		if at, ok := acked[e.ID]; !ok || at != e.Position {
			t.Fatalf("event %s is at %d, its append answered %d (acknowledged %v)", e.ID, e.Position, at, ok)
		}
	}
	t.Logf("%d writers appended %d events on two handles; both subscribers saw each once, in log order", hammerWriters, len(log))
}

// followAll runs an unfiltered subscription until the test ends.
func followAll(t *testing.T, s eventlog.Store, after eventlog.Position, handle func([]eventlog.Event) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, after, eventlog.Filter{}, handle) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
