package presence_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/presence"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// recorded is the slot's state after p was appended at revision rev.
func recorded(t *testing.T, slot int, rev uint64, p presence.Payload) presence.Slot {
	t.Helper()
	prop, err := presence.Proposal(p, uuid.New(), eventlog.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	e := eventlog.AsRecorded(presence.Stream(slot), prop, eventlog.AppendResult{Revision: rev, Position: eventlog.Position(rev + 1)})
	return presence.SlotFrom(slot, []eventlog.Event{e})
}

func announced(slot int, expires time.Time, addrs ...string) presence.Announced {
	return presence.Announced{Slot: slot, PeerID: fmt.Sprintf("peer%d", slot), Addrs: addrs, ExpiresAt: expires}
}

// TestFree: a slot is free when empty, withdrawn, or expired (at its
// expiry exactly, too), never while announced, nor when its last event is
// of a schema this binary does not read.
func TestFree(t *testing.T) {
	newer := presence.SlotFrom(3, []eventlog.Event{{Stream: presence.Stream(3), Revision: 4, Type: presence.TypeAnnounced, Version: 2, Data: []byte(`{}`)}})
	cases := []struct {
		name string
		slot presence.Slot
		free bool
	}{
		{"empty", presence.SlotFrom(0, nil), true},
		{"announced", recorded(t, 0, 0, announced(0, t0.Add(time.Second))), false},
		{"expired", recorded(t, 0, 0, announced(0, t0.Add(-time.Second))), true},
		{"expires now", recorded(t, 0, 0, announced(0, t0)), true},
		{"withdrawn", recorded(t, 0, 5, presence.Withdrawn{Slot: 0}), true},
		{"newer schema", newer, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.slot.Free(t0); got != c.free {
				t.Errorf("Free = %v, want %v", got, c.free)
			}
		})
	}
	if newer.Err == nil {
		t.Error("a version-2 event decoded without error")
	}
}

// TestChoose: the lowest free slot is chosen, with the revision to claim it
// at; none when every slot is live.
func TestChoose(t *testing.T) {
	live := func(n int) presence.Slot { return recorded(t, n, 7, announced(n, t0.Add(time.Minute))) }
	slots := []presence.Slot{live(0), live(1), recorded(t, 2, 9, announced(2, t0.Add(-time.Minute))), presence.SlotFrom(3, nil)}
	s, ok := presence.Choose(slots, t0)
	if !ok || s.Number != 2 {
		t.Fatalf("chose %d (%v), want slot 2 (expired)", s.Number, ok)
	}
	if rev, at := s.Expected().Revision(); !at || rev != 9 {
		t.Errorf("claim expects %v, want revision 9", s.Expected())
	}
	if s, _ := presence.Choose(slots[3:], t0); !s.Expected().IsNoStream() {
		t.Errorf("claim of an empty slot expects %v, want no stream", s.Expected())
	}
	var full []presence.Slot
	for n := range presence.Slots {
		full = append(full, live(n))
	}
	if s, ok := presence.Choose(full, t0); ok {
		t.Errorf("chose slot %d of %d live ones", s.Number, presence.Slots)
	}
}

// TestDelegates: live fetchers' addresses in slot order, each fetcher's
// first address before anyone's second, at most max, each once; expired
// and withdrawn fetchers are not named.
func TestDelegates(t *testing.T) {
	later := t0.Add(time.Minute)
	slots := []presence.Slot{
		recorded(t, 0, 0, announced(0, later, "a0", "a1")),
		recorded(t, 1, 0, announced(1, t0.Add(-time.Second), "expired")),
		recorded(t, 2, 0, presence.Withdrawn{Slot: 2}),
		recorded(t, 3, 0, announced(3, later, "b0", "b1", "b2")),
		recorded(t, 4, 0, announced(4, later, "a0", "c1")),
	}
	for _, c := range []struct {
		max  int
		want []string
	}{
		{20, []string{"a0", "b0", "a1", "b1", "c1", "b2"}},
		{3, []string{"a0", "b0", "a1"}},
		{1, []string{"a0"}},
	} {
		if got := presence.Delegates(slots, t0, c.max); !slices.Equal(got, c.want) {
			t.Errorf("max %d: %v, want %v", c.max, got, c.want)
		}
	}
	if got := presence.Delegates(slots, later, 20); len(got) != 0 {
		t.Errorf("after every expiry: %v, want none", got)
	}
}

// TestStream: a slot's stream name.
func TestStream(t *testing.T) {
	if presence.Stream(7) != "fetcher-7" {
		t.Errorf("Stream(7) = %s", presence.Stream(7))
	}
}

// TestConfig: renewal must come before expiry.
func TestConfig(t *testing.T) {
	if err := (presence.Config{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	c := presence.Config{}.WithDefaults()
	if c.TTL != presence.DefaultTTL || c.Renew != presence.DefaultRenew {
		t.Errorf("defaults %v/%v", c.TTL, c.Renew)
	}
	if c := (presence.Config{TTL: 3 * time.Second}).WithDefaults(); c.Renew != time.Second {
		t.Errorf("a 3s TTL renews every %v, want 1s", c.Renew)
	}
	if err := (presence.Config{TTL: time.Minute, Renew: time.Minute}).Validate(); err == nil {
		t.Error("renewal at the TTL accepted")
	}
}

// countingReader is the log as a Directory reads it, counting reads.
type countingReader struct {
	presence.Reader
	n atomic.Int64
}

func (c *countingReader) reads() int { return int(c.n.Load()) }

func (c *countingReader) ReadStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, limit int) ([]eventlog.Event, error) {
	c.n.Add(1)
	return c.Reader.ReadStream(ctx, stream, from, dir, limit)
}

// TestDirectoryCache: the live set is read once per CacheTTL; an empty
// one is read again after a second, so that the first fetcher to start is
// named at once.
func TestDirectoryCache(t *testing.T) {
	log := openLog(t, filepath.Join(t.TempDir(), "events.db"))
	reads := &countingReader{Reader: log}
	c := &clock{now: t0}
	dir := presence.NewDirectory(presence.DirectoryConfig{}, reads, c.Now, nil)
	ask := func() []string {
		t.Helper()
		got, err := dir.Delegates(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := ask(); len(got) != 0 || reads.reads() != presence.Slots {
		t.Fatalf("empty log: %v after %d reads, want none after %d", got, reads.reads(), presence.Slots)
	}
	id := "12D3KooWLYddiuv1m7YvJzDiMuht5eLRXe2wZ52si7Hz7XpdhchL"
	addr := "/ip4/127.0.0.1/tcp/4001/p2p/" + id
	if _, err := presence.Acquire(context.Background(), presence.Config{}, presence.Deps{Log: log, Now: c.Now},
		func(context.Context, int) (presence.Endpoint, func(), error) {
			return presence.Endpoint{PeerID: id, Addrs: []string{addr}}, func() {}, nil
		}); err != nil {
		t.Fatal(err)
	}
	if got := ask(); len(got) != 0 {
		t.Fatalf("within the empty answer's second: %v", got)
	}
	c.Add(time.Second)
	if got := ask(); !slices.Equal(got, []string{addr}) {
		t.Fatalf("a second later: %v, want %s", got, addr)
	}
	before := reads.reads()
	c.Add(presence.DefaultCacheTTL - time.Millisecond)
	ask()
	if reads.reads() != before {
		t.Errorf("read again within the cache's TTL")
	}
	c.Add(time.Millisecond)
	ask()
	if reads.reads() != before+presence.Slots {
		t.Errorf("%d reads after the TTL, want %d", reads.reads()-before, presence.Slots)
	}
}
