package presence_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/fetcher/dag/bitswap"
	"github.com/pickup-ipfs/pickup/presence"
)

const seed = "a seed every fetcher of this test shares"

// clock is a clock the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fetcherProc is what a fetcher process holds: its own handle on the log
// file, its libp2p host (a real one, with its slot's key), its lease.
type fetcherProc struct {
	log   *embedded.Store
	host  *bitswap.Source
	lease *presence.Lease
}

func openLog(t testing.TB, path string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(context.Background(), path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startFetcher starts a fetcher's presence on the log file at path: a
// bitswap host on loopback with the key of the slot it claims.
func startFetcher(t *testing.T, path string, c *clock) (*fetcherProc, error) {
	t.Helper()
	f := &fetcherProc{log: openLog(t, path)}
	bind := func(_ context.Context, slot int) (presence.Endpoint, func(), error) {
		key, err := bitswap.SlotKey([]byte(seed), slot)
		if err != nil {
			return presence.Endpoint{}, nil, err
		}
		s, err := bitswap.New(bitswap.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, PrivateKey: key, AllowPrivate: true}, nil)
		if err != nil {
			return presence.Endpoint{}, nil, err
		}
		f.host = s
		var addrs []string
		for _, a := range s.Addrs() {
			addrs = append(addrs, a.String())
		}
		return presence.Endpoint{PeerID: s.Host().ID().String(), Addrs: addrs}, func() { s.Close() }, nil
	}
	l, err := presence.Acquire(context.Background(), presence.Config{Instance: t.Name()}, presence.Deps{Log: f.log, Now: c.Now}, bind)
	if err != nil {
		return nil, err
	}
	f.lease = l
	t.Cleanup(func() { f.host.Close() })
	return f, nil
}

func slotPeer(t *testing.T, slot int) string {
	t.Helper()
	key, err := bitswap.SlotKey([]byte(seed), slot)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	return id.String()
}

// TestThreeFetchers: three fetcher processes on one log take slots 0, 1
// and 2, each with its slot's peer id; the one that stops withdraws and
// its slot is free at once; the one killed keeps its slot until its
// announcement expires; a restarted fetcher takes the lowest free slot
// back, and with it its old peer id; the killed one, coming back to
// renew, finds its slot taken and is told to stop.
func TestThreeFetchers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	c := &clock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	var fs []*fetcherProc
	for i := range 3 {
		f, err := startFetcher(t, path, c)
		if err != nil {
			t.Fatal(err)
		}
		if f.lease.Slot() != i || f.lease.Endpoint().PeerID != slotPeer(t, i) || f.host.Host().ID().String() != slotPeer(t, i) {
			t.Fatalf("fetcher %d: slot %d peer %s, want slot %d peer %s", i, f.lease.Slot(), f.lease.Endpoint().PeerID, i, slotPeer(t, i))
		}
		fs = append(fs, f)
	}
	reader := openLog(t, path)
	dir := presence.NewDirectory(presence.DirectoryConfig{CacheTTL: -1}, reader, c.Now, nil)
	live := func() map[string]bool {
		t.Helper()
		addrs, err := dir.Delegates(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, a := range addrs {
			out[a[len(a)-len(slotPeer(t, 0)):]] = true
		}
		return out
	}
	if got := live(); len(got) != 3 {
		t.Fatalf("live peers %v, want 3", got)
	}

	// Fetcher 1 stops: Run withdraws when its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- fs[1].lease.Run(ctx) }()
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("run after stop: %v", err)
	}
	last, _ := reader.ReadStream(context.Background(), presence.Stream(1), eventlog.StreamEnd, eventlog.Backwards, 1)
	if len(last) != 1 || last[0].Type != presence.TypeWithdrawn {
		t.Fatalf("slot 1 ends with %v, want %s", last, presence.TypeWithdrawn)
	}
	// Fetcher 2 is killed: nothing more is written for it.
	if got := live(); len(got) != 2 || got[slotPeer(t, 1)] {
		t.Fatalf("live after a stop: %v, want slots 0 and 2", got)
	}

	// A restart takes slot 1, the one freed, and its peer id.
	again, err := startFetcher(t, path, c)
	if err != nil {
		t.Fatal(err)
	}
	if again.lease.Slot() != 1 || again.host.Host().ID().String() != slotPeer(t, 1) {
		t.Fatalf("restarted fetcher: slot %d peer %s, want slot 1 peer %s", again.lease.Slot(), again.host.Host().ID(), slotPeer(t, 1))
	}
	// The killed fetcher's slot is held until its TTL runs out...
	if f, err := startFetcher(t, path, c); err != nil || f.lease.Slot() != 3 {
		t.Fatalf("a new fetcher while slot 2 is live: %v, want slot 3", err)
	}
	// ...and then taken by the next one, with its peer id; the live ones
	// renew meanwhile.
	c.Add(presence.DefaultTTL / 2)
	for _, f := range []*fetcherProc{fs[0], again} {
		if err := f.lease.Renew(context.Background(), uuid.New()); err != nil {
			t.Fatal(err)
		}
	}
	c.Add(presence.DefaultTTL / 2)
	taker, err := startFetcher(t, path, c)
	if err != nil {
		t.Fatal(err)
	}
	if taker.lease.Slot() != 2 || taker.host.Host().ID().String() != slotPeer(t, 2) {
		t.Fatalf("after expiry: slot %d peer %s, want slot 2 peer %s", taker.lease.Slot(), taker.host.Host().ID(), slotPeer(t, 2))
	}
	if err := fs[2].lease.Renew(context.Background(), uuid.New()); !errors.Is(err, presence.ErrLost) {
		t.Fatalf("the killed fetcher's renewal: %v, want ErrLost", err)
	}
	if got := live(); len(got) != 3 || !got[slotPeer(t, 0)] || !got[slotPeer(t, 1)] || !got[slotPeer(t, 2)] {
		t.Fatalf("live at the end: %v, want slots 0, 1, 2 (slot 3 expired)", got)
	}
}

// TestAllSlotsLive: with every slot live, Acquire answers ErrNoSlot and
// binds nothing; concurrent claims on an empty log get distinct slots.
func TestAllSlotsLive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	c := &clock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	bound := map[int]int{}
	claim := func(log *embedded.Store) (*presence.Lease, error) {
		return presence.Acquire(context.Background(), presence.Config{}, presence.Deps{Log: log, Now: c.Now},
			func(_ context.Context, slot int) (presence.Endpoint, func(), error) {
				mu.Lock()
				bound[slot]++
				mu.Unlock()
				id := slotPeer(t, slot)
				return presence.Endpoint{PeerID: id, Addrs: []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + id}}, func() {}, nil
			})
	}
	logs := []*embedded.Store{openLog(t, path), openLog(t, path)}
	slots := make(chan int, presence.Slots)
	var wg sync.WaitGroup
	for i := range presence.Slots {
		wg.Go(func() {
			l, err := claim(logs[i%2])
			if err != nil {
				t.Error(err)
				return
			}
			slots <- l.Slot()
		})
	}
	wg.Wait()
	close(slots)
	seen := map[int]bool{}
	for s := range slots {
		if seen[s] {
			t.Errorf("slot %d claimed twice", s)
		}
		seen[s] = true
	}
	if len(seen) != presence.Slots {
		t.Fatalf("%d slots claimed, want %d", len(seen), presence.Slots)
	}
	before := len(bound)
	if _, err := claim(logs[0]); !errors.Is(err, presence.ErrNoSlot) {
		t.Fatalf("a claim with every slot live: %v, want ErrNoSlot", err)
	}
	if len(bound) != before {
		t.Error("a refused claim bound a slot")
	}
}

// TestRunRenews: Run renews the announcement while it runs (each renewal
// a new event at the next revision, later ExpiresAt), and withdraws at
// the end.
func TestRunRenews(t *testing.T) {
	log := openLog(t, filepath.Join(t.TempDir(), "events.db"))
	id := slotPeer(t, 0)
	l, err := presence.Acquire(context.Background(), presence.Config{TTL: 300 * time.Millisecond}, presence.Deps{Log: log},
		func(context.Context, int) (presence.Endpoint, func(), error) {
			return presence.Endpoint{PeerID: id, Addrs: []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + id}}, func() {}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- l.Run(ctx) }()
	var events []eventlog.Event
	for len(events) < 3 {
		time.Sleep(20 * time.Millisecond)
		if events, err = log.ReadStream(context.Background(), presence.Stream(0), 0, eventlog.Forwards, 10); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	events, _ = log.ReadStream(context.Background(), presence.Stream(0), 0, eventlog.Forwards, 100)
	var prev time.Time
	for i, e := range events[:len(events)-1] {
		p, err := presence.Decode(e)
		a, ok := p.(presence.Announced)
		if err != nil || !ok || !a.ExpiresAt.After(prev) {
			t.Fatalf("event %d: %v %v, want an announcement expiring after %v", i, p, err, prev)
		}
		prev = a.ExpiresAt
	}
	if last := events[len(events)-1]; last.Type != presence.TypeWithdrawn {
		t.Fatalf("last event %s, want %s", last.Type, presence.TypeWithdrawn)
	}
}

// TestAcquireRefusesUndialable: an endpoint whose addresses nobody can
// dial (a bare /p2p/, another peer's) is refused, unbound, and nothing is
// written.
func TestAcquireRefusesUndialable(t *testing.T) {
	log := openLog(t, filepath.Join(t.TempDir(), "events.db"))
	id := slotPeer(t, 0)
	for _, addr := range []string{"/p2p/" + id, "/ip4/127.0.0.1/tcp/4001/p2p/" + slotPeer(t, 1)} {
		undone := false
		_, err := presence.Acquire(context.Background(), presence.Config{}, presence.Deps{Log: log},
			func(context.Context, int) (presence.Endpoint, func(), error) {
				return presence.Endpoint{PeerID: id, Addrs: []string{addr}}, func() { undone = true }, nil
			})
		if err == nil || !undone {
			t.Errorf("%s: %v (undone %v), want a refusal that undoes the binding", addr, err, undone)
		}
	}
	if head, _ := log.Head(context.Background()); head != 0 {
		t.Errorf("refused claims wrote to the log (head %d)", head)
	}
}
