package pin_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/pin"
)

func TestRootStreamNames(t *testing.T) {
	const root = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
	if s := pin.RootStream(root); s != "root-"+root {
		t.Errorf("stream %q", s)
	}
	if r, ok := pin.RootOf(pin.RootStream(root)); !ok || r != root {
		t.Errorf("root of its stream: %q %v", r, ok)
	}
	for _, s := range []string{"root-", "pin-" + uuid.NewString(), root} {
		if _, ok := pin.RootOf(s); ok {
			t.Errorf("%q taken for a root's stream", s)
		}
	}
}

// TestRootDecisions walks a root through two generations with every
// decision and refusal.
func TestRootDecisions(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	a, b := uuid.New(), uuid.New()
	var s pin.RootState
	rev := uint64(0)
	apply := func(p pin.RootPayload) {
		s = s.Apply(pin.RootRecorded{ID: uuid.New(), Revision: rev, Position: 10 + rev, At: t0, Payload: p})
		rev++
	}
	mustHold := func(id uuid.UUID, want bool) {
		t.Helper()
		h, err := s.Hold(id)
		if err != nil || (h != nil) != want {
			t.Fatalf("hold by %s: %+v %v, want an event: %v", id, h, err, want)
		}
		if h != nil {
			apply(*h)
		}
	}
	mustHold(a, true)
	mustHold(a, false) // idempotent per request
	mustHold(b, true)
	if s.LastPosition != 11 || s.Revision != 1 || len(s.Holders) != 2 {
		t.Fatalf("after two holds: %+v", s)
	}
	if _, err := s.Hold(uuid.Nil); !errors.Is(err, pin.ErrInvalid) {
		t.Errorf("a hold without a request: %v", err)
	}
	if _, err := s.DecideDelete("", t0, time.Minute); !errors.Is(err, pin.ErrInvalid) {
		t.Errorf("a decision without an actor: %v", err)
	}
	if _, err := s.Deleted("gc/1", t0, 3); !errors.Is(err, pin.ErrRootNotDeleting) {
		t.Errorf("a record without a decision: %v", err)
	}
	d, err := s.DecideDelete("gc/1", t0, time.Minute)
	if err != nil || d == nil || d.LeaseUntil != t0.Add(time.Minute) {
		t.Fatalf("decision: %+v %v", d, err)
	}
	apply(*d)
	if _, err := s.Hold(a); !errors.Is(err, pin.ErrRootDeleting) {
		t.Errorf("a holder's hold while deleting: %v, want ErrRootDeleting", err)
	}
	if d, err := s.DecideDelete("gc/1", t0.Add(time.Second), time.Minute); err != nil || d != nil {
		t.Errorf("the deleter again within its lease: %+v %v, want nothing to append", d, err)
	}
	if _, err := s.DecideDelete("gc/2", t0.Add(time.Second), time.Minute); !errors.Is(err, pin.ErrRootDeletionHeld) {
		t.Errorf("another GC within the lease: %v, want ErrRootDeletionHeld", err)
	}
	over, err := s.DecideDelete("gc/2", t0.Add(time.Minute), time.Minute)
	if err != nil || over == nil || over.Actor != "gc/2" {
		t.Fatalf("a takeover after the lease: %+v %v", over, err)
	}
	apply(*over)
	if _, err := s.Deleted("gc/1", t0, 3); !errors.Is(err, pin.ErrRootDeletionHeld) {
		t.Errorf("the first GC's record after a takeover: %v, want ErrRootDeletionHeld", err)
	}
	done, err := s.Deleted("gc/2", t0.Add(2*time.Minute), 3)
	if err != nil {
		t.Fatal(err)
	}
	apply(done)
	if s.Generation != 1 || s.Deleting || len(s.Holders) != 0 || s.LastDeleted.Objects != 3 {
		t.Fatalf("after the deletion: %+v", s)
	}
	mustHold(a, true) // a new generation
}
