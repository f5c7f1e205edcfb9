package pinlog_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

func testRoot(t *testing.T) cid.Cid {
	t.Helper()
	mh, err := multihash.Sum([]byte("a root"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV0(mh)
}

func TestEveryRootPayloadSurvivesTheEnvelope(t *testing.T) {
	for _, p := range []pin.RootPayload{
		pin.RootHeld{RequestID: uuid.New()},
		pin.RootDeleting{Actor: "gc/1", At: t0, LeaseUntil: t0.Add(time.Minute)},
		pin.RootDeleted{At: t0, Objects: 3},
	} {
		eid := uuid.New()
		prop, err := pinlog.ProposeRoot(p, eid, eventlog.Metadata{Time: t0})
		if err != nil {
			t.Fatal(err)
		}
		got, err := pinlog.DecodeRoot(eventlog.Event{ID: eid, Revision: 2, Position: 9, Type: prop.Type, Version: prop.Version, Data: prop.Data, Meta: prop.Meta})
		if err != nil {
			t.Fatalf("%s: %v", p.EventType(), err)
		}
		if want := (pin.RootRecorded{ID: eid, Revision: 2, Position: 9, At: t0, Payload: p}); !reflect.DeepEqual(got, want) {
			t.Errorf("decoded %+v, want %+v", got, want)
		}
	}
	if _, err := pinlog.DecodeRoot(eventlog.Event{Type: pin.TypeRequested, Version: 1, Data: []byte(`{}`)}); !errors.Is(err, eventlog.ErrUnknownType) {
		t.Errorf("a pin event as a root's: %v, want ErrUnknownType", err)
	}
}

// TestHoldRoot holds a root (named as CIDv0: its stream is the CIDv1's),
// again for the same request (nothing more is appended), is refused while
// a deletion is in progress, and holds again after it, in a new
// generation.
func TestHoldRoot(t *testing.T) {
	ctx := context.Background()
	log := open(t)
	root := testRoot(t)
	canonical := pinlog.CanonicalRoot(root)
	if canonical == root.String() || canonical != cid.NewCidV1(cid.DagProtobuf, root.Hash()).String() {
		t.Fatalf("canonical %s of %s", canonical, root)
	}
	a, b := uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{a, a, b} {
		if err := pinlog.HoldRoot(ctx, log, root, id); err != nil {
			t.Fatal(err)
		}
	}
	s, evs, err := pinlog.ReadRoot(ctx, log, canonical)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || !s.Holders[a] || !s.Holders[b] || evs[0].Stream != pin.RootStream(canonical) {
		t.Fatalf("after holds by a, a, b: %d events %+v", len(evs), s)
	}
	c := pinlog.New(log, clock)
	decide := func(actor string) func(pin.RootState) (pinlog.RootDecision, error) {
		return func(s pin.RootState) (pinlog.RootDecision, error) {
			d, err := s.DecideDelete(actor, t0, time.Minute)
			if err != nil || d == nil {
				return pinlog.RootDecision{}, err
			}
			return pinlog.RootDecision{Payload: *d}, nil
		}
	}
	if _, err := c.CommitRoot(ctx, pinlog.RootCommit{Root: canonical, Actor: "gc/1", Decide: decide("gc/1")}); err != nil {
		t.Fatal(err)
	}
	if err := pinlog.HoldRoot(ctx, log, root, uuid.New()); !errors.Is(err, pin.ErrRootDeleting) {
		t.Fatalf("a new hold while deleting: %v, want ErrRootDeleting", err)
	}
	if err := pinlog.HoldRoot(ctx, log, root, a); !errors.Is(err, pin.ErrRootDeleting) {
		t.Fatalf("a hold by a holder while deleting: %v, want ErrRootDeleting", err)
	}
	if _, err := c.CommitRoot(ctx, pinlog.RootCommit{Root: canonical, Actor: "gc/1", Decide: func(s pin.RootState) (pinlog.RootDecision, error) {
		p, err := s.Deleted("gc/1", t0, 3)
		return pinlog.RootDecision{Payload: p}, err
	}}); err != nil {
		t.Fatal(err)
	}
	if err := pinlog.HoldRoot(ctx, log, root, a); err != nil {
		t.Fatalf("a hold after the deletion: %v", err)
	}
	s, evs, _ = pinlog.ReadRoot(ctx, log, canonical)
	if s.Generation != 1 || !s.Holders[a] || s.Holders[b] || len(evs) != 5 {
		t.Errorf("the new generation: %+v, %d events", s, len(evs))
	}
}

// TestRootDecisionsRace has many holds and two deletion decisions race on
// one root: every append states the revision it read, so each hold is
// either recorded before the decision or refused after it.
func TestRootDecisionsRace(t *testing.T) {
	ctx := context.Background()
	log := open(t)
	root := testRoot(t)
	c := pinlog.New(log, clock)
	var wg sync.WaitGroup
	var mu sync.Mutex
	held := map[uuid.UUID]bool{}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := uuid.New()
			err := pinlog.HoldRoot(ctx, log, root, id)
			switch {
			case err == nil:
				mu.Lock()
				held[id] = true
				mu.Unlock()
			case !errors.Is(err, pin.ErrRootDeleting):
				t.Error(err)
			}
		}()
	}
	var won sync.Map
	for _, actor := range []string{"gc/1", "gc/2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.CommitRoot(ctx, pinlog.RootCommit{Root: pinlog.CanonicalRoot(root), Actor: actor, Decide: func(s pin.RootState) (pinlog.RootDecision, error) {
				d, err := s.DecideDelete(actor, t0, time.Minute)
				if errors.Is(err, pin.ErrRootDeletionHeld) {
					return pinlog.RootDecision{}, nil
				}
				if err != nil || d == nil {
					return pinlog.RootDecision{}, err
				}
				return pinlog.RootDecision{Payload: *d}, nil
			}})
			if err != nil {
				t.Error(err)
			}
			if res.Appended != nil {
				won.Store(actor, true)
			}
		}()
	}
	wg.Wait()
	n := 0
	won.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d deletion decisions appended, want 1", n)
	}
	s, evs, err := pinlog.ReadRoot(ctx, log, pinlog.CanonicalRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	// Every hold that succeeded comes before the decision.
	deciding := false
	for _, e := range evs {
		r, _ := pinlog.DecodeRoot(e)
		switch p := r.Payload.(type) {
		case pin.RootDeleting:
			deciding = true
		case pin.RootHeld:
			if deciding {
				t.Errorf("hold by %s after the decision", p.RequestID)
			}
			if !held[p.RequestID] {
				t.Errorf("hold by %s recorded but refused", p.RequestID)
			}
		}
	}
	if len(s.Holders) != len(held) {
		t.Errorf("%d holders, %d holds succeeded", len(s.Holders), len(held))
	}
}
