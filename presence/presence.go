// Package presence is which fetchers are live and where they can be
// dialed, as events in the log: the delegates the API answers are read
// from it.
//
// There are Slots slots (20, the Pinning Service API's most delegates),
// each a stream of its own, "fetcher-<slot>". A fetcher leases one: it
// claims the lowest slot whose last event is none, a FetcherWithdrawn or a
// FetcherAnnounced that has expired, by appending its own FetcherAnnounced
// at the revision it read (the log's optimistic concurrency: of two
// fetchers claiming one slot, one append lands, the other is refused and
// tries the next slot). It renews the announcement at the revision it last
// wrote while it lives, and appends FetcherWithdrawn when it stops. A
// fetcher that goes silent (killed, partitioned) expires at the
// announcement's ExpiresAt, and its slot is free again. A renewal refused
// because the slot moved on means another fetcher took it (this one was
// silent longer than the lease): the holder must stop (ErrLost).
//
// The slot number is what makes a fetcher's peer identity stable: the
// fetcher derives its libp2p key from a seed and its slot, so each live
// fetcher has a distinct peer id, and a fetcher that replaces another takes
// its slot and its peer id.
//
// # Cost
//
// With the defaults (DefaultTTL 3 min, DefaultRenew 60 s) a fetcher appends
// one event a minute: 1,440 events a day each, 28,800 a day for 20
// fetchers, a few hundred bytes each. The gateway reads the slots' last
// events (Slots reads of one event, in parallel) at most once per
// DefaultCacheTTL (15 s) per process: about 1.1 ms on the embedded log
// with every slot live (BenchmarkRead, 2-core machine).
//
// The package knows nothing of libp2p: addresses are strings, and the
// fetcher binds its host to a slot through a callback (Bind).
package presence

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Event types of a slot's stream.
const (
	TypeAnnounced = "FetcherAnnounced"
	TypeWithdrawn = "FetcherWithdrawn"
)

// StreamPrefix starts the name of every slot's stream.
const StreamPrefix = "fetcher-"

// SchemaVersion is the version presence events are written with.
const SchemaVersion = 1

// Slots is the number of slots: the Pinning Service API's most delegates,
// so that every live fetcher can be one.
const Slots = 20

// Stream returns the name of a slot's stream.
func Stream(slot int) string { return StreamPrefix + strconv.Itoa(slot) }

// Payload is the body of a presence event.
type Payload interface {
	eventlog.Payload
	isPresence()
}

// Announced: a fetcher holds the slot until ExpiresAt, and is dialed at
// Addrs (each ending in /p2p/<PeerID>).
type Announced struct {
	Slot   int      `json:"slot"`
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
	// Instance names the process (a host name and process id, or an ECS
	// task), for people reading the log.
	Instance  string    `json:"instance"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Withdrawn: the fetcher that held the slot stopped; the slot is free.
type Withdrawn struct {
	Slot     int    `json:"slot"`
	PeerID   string `json:"peer_id"`
	Instance string `json:"instance"`
}

func (Announced) EventType() string { return TypeAnnounced }
func (Withdrawn) EventType() string { return TypeWithdrawn }
func (Announced) isPresence()       {}
func (Withdrawn) isPresence()       {}

// codec maps presence payloads to the envelope and back; immutable.
var codec = eventlog.NewCodec[Payload](SchemaVersion, Announced{}, Withdrawn{})

// Proposal makes the event to append for p.
func Proposal(p Payload, id uuid.UUID, meta eventlog.Metadata) (eventlog.Proposed, error) {
	return codec.Propose(p, id, meta)
}

// Decode returns the body of a presence event; another type wraps
// eventlog.ErrUnknownType.
func Decode(e eventlog.Event) (Payload, error) { return codec.Decode(e) }

// Slot is what the log says of one slot: its last event.
type Slot struct {
	Number int
	// Exists is false for a slot whose stream has no events.
	Exists bool
	// Revision is the revision of the last event, when Exists.
	Revision uint64
	// Last is the last event's body; nil when the stream is empty, or
	// when the last event did not decode (Err says why: a newer schema).
	Last Payload
	Err  error
}

// SlotFrom is the slot number's state after its last event (none: empty
// stream).
func SlotFrom(number int, last []eventlog.Event) Slot {
	s := Slot{Number: number}
	if len(last) == 0 {
		return s
	}
	e := last[len(last)-1]
	s.Exists, s.Revision = true, e.Revision
	s.Last, s.Err = Decode(e)
	return s
}

// Live returns the slot's announcement if it holds at now.
func (s Slot) Live(now time.Time) (Announced, bool) {
	a, ok := s.Last.(Announced)
	if !ok || !now.Before(a.ExpiresAt) {
		return Announced{}, false
	}
	return a, true
}

// Free reports whether a fetcher may claim the slot at now: its stream is
// empty, withdrawn, or its announcement has expired. A last event that did
// not decode (a newer version's) is never free: its holder is unknown.
func (s Slot) Free(now time.Time) bool {
	if !s.Exists {
		return true
	}
	switch s.Last.(type) {
	case Withdrawn:
		return true
	case Announced:
		_, live := s.Live(now)
		return !live
	}
	return false
}

// Expected is what an append claiming the slot expects of its stream.
func (s Slot) Expected() eventlog.Expected { return eventlog.ExpectedAfter(s.Revision, s.Exists) }

// Choose returns the lowest-numbered free slot of slots at now, or false
// when every slot is live.
func Choose(slots []Slot, now time.Time) (Slot, bool) {
	var best Slot
	found := false
	for _, s := range slots {
		if s.Free(now) && (!found || s.Number < best.Number) {
			best, found = s, true
		}
	}
	return best, found
}

// Delegates returns the addresses of the live announcements of slots at
// now, at most max: each fetcher's first address in slot order, then each
// one's second, and so on, so that with more addresses than room every live
// fetcher is still named. An address given twice is kept once.
func Delegates(slots []Slot, now time.Time, max int) []string {
	var live [][]string
	for _, s := range slots {
		if a, ok := s.Live(now); ok && len(a.Addrs) > 0 {
			live = append(live, a.Addrs)
		}
	}
	var out []string
	seen := map[string]bool{}
	for round := 0; len(out) < max; round++ {
		more := false
		for _, addrs := range live {
			if round >= len(addrs) || len(out) >= max {
				continue
			}
			more = true
			if a := addrs[round]; !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
		if !more {
			break
		}
	}
	return out
}

// checkEndpoint refuses what cannot be announced.
func checkEndpoint(e Endpoint) error {
	if e.PeerID == "" {
		return fmt.Errorf("presence: an endpoint without a peer id")
	}
	for _, a := range e.Addrs {
		if !strings.HasSuffix(a, "/p2p/"+e.PeerID) {
			return fmt.Errorf("presence: address %q does not end in /p2p/%s", a, e.PeerID)
		}
		if strings.HasPrefix(a, "/p2p/") {
			return fmt.Errorf("presence: address %q has no transport: nobody can dial it", a)
		}
	}
	return nil
}
