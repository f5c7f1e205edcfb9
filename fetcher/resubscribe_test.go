package fetcher_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/fetcher"
	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/trustless"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
)

// hiccupLog is the world's log with faults: its head fails the first
// headFails reads, and its first subscription fails once it has handed
// over one batch. It records where each subscription starts.
type hiccupLog struct {
	fetcher.Log
	mu        sync.Mutex
	headFails int
	subs      []eventlog.Position
	delivered []eventlog.Position
}

func (l *hiccupLog) Head(ctx context.Context) (eventlog.Position, error) {
	l.mu.Lock()
	fail := l.headFails > 0
	l.headFails--
	l.mu.Unlock()
	if fail {
		return 0, errors.New("injected: the log is away")
	}
	return l.Log.Head(ctx)
}

func (l *hiccupLog) Subscribe(ctx context.Context, after eventlog.Position, f eventlog.Filter, handle func([]eventlog.Event) error) error {
	l.mu.Lock()
	l.subs = append(l.subs, after)
	first := len(l.subs) == 1
	l.mu.Unlock()
	errBroke := errors.New("injected: the subscription broke")
	err := l.Log.Subscribe(ctx, after, f, func(batch []eventlog.Event) error {
		l.mu.Lock()
		for _, e := range batch {
			l.delivered = append(l.delivered, e.Position)
		}
		l.mu.Unlock()
		if err := handle(batch); err != nil {
			return err
		}
		if first {
			return errBroke
		}
		return nil
	})
	return err
}

func (l *hiccupLog) starts() []eventlog.Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]eventlog.Position(nil), l.subs...)
}

// TestPoolFollowsTheLogAgain: a pool whose log fails to give its head at
// start, and whose subscription breaks after its first batch, keeps
// running: it follows the log again from the last event it handled (none
// missed, none handled twice), and claims what is requested after.
func TestPoolFollowsTheLogAgain(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	log := &hiccupLog{Log: w.log, headFails: 2}
	src, err := trustless.New(trustless.Config{URL: w.gw.URL()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dag.New([]dag.Source{src}, dag.Limits{ChunkTimeout: 10 * time.Second}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	// The scan is all but off: work comes from the log feed.
	p, err := fetcher.New(fetcher.Config{Name: "hiccups", ScanInterval: time.Hour, Lease: 3 * time.Second, ResubscribeDelay: 20 * time.Millisecond},
		fetcher.Deps{Log: log, Queue: w.views, DAG: d, CARs: w.cars, Index: w.views, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitUntil(t, "the first subscription", func() bool { return len(log.starts()) >= 1 })

	first := w.request(w.file(50<<10, 11))
	w.waitFor(first, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
	waitUntil(t, "a second subscription", func() bool { return len(log.starts()) >= 2 })
	second := w.request(w.file(50<<10, 12))
	w.waitFor(second, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })

	select {
	case err := <-done:
		t.Fatalf("the pool stopped: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	starts := log.starts()
	log.mu.Lock()
	delivered := append([]eventlog.Position(nil), log.delivered...)
	log.mu.Unlock()
	// The second subscription starts after the last event the first
	// handed over; no event is handed over twice.
	if len(starts) < 2 || len(delivered) == 0 || starts[1] != delivered[0] {
		t.Errorf("subscriptions started at %v, events delivered at %v: want the second to start at the first batch's end", starts, delivered)
	}
	seen := map[eventlog.Position]bool{}
	for _, pos := range delivered {
		if seen[pos] {
			t.Errorf("event %d delivered twice (%v)", pos, delivered)
		}
		seen[pos] = true
	}
	for _, id := range []struct {
		name string
		evs  []eventlog.Event
	}{{"first", w.events(first)}, {"second", w.events(second)}} {
		if n := count(id.evs, pin.TypeFetchStarted); n != 1 {
			t.Errorf("%s pin claimed %d times", id.name, n)
		}
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
