package fetcher_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// While the garbage collector deletes a root's CAR, an attempt at a pin of
// that root neither uses a CAR of it nor stores one: it is handed back
// (not a failure that counts) and the carpark gets nothing. Once the
// deletion is recorded, the pin's next attempt holds the root anew and
// pins it.
func TestAttemptWaitsForARootBeingDeleted(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, ipfstest.GatewayOptions{})
	root := w.file(300<<10, 2)
	canon := pinlog.CanonicalRoot(root)
	gc := pinlog.New(w.log, time.Now)
	decide := func(d func(pin.RootState) (pin.RootPayload, error)) {
		t.Helper()
		_, err := gc.CommitRoot(ctx, pinlog.RootCommit{Root: canon, Actor: "gc-test", Decide: func(s pin.RootState) (pinlog.RootDecision, error) {
			p, err := d(s)
			return pinlog.RootDecision{Payload: p}, err
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	decide(func(s pin.RootState) (pin.RootPayload, error) {
		d, err := s.DecideDelete("gc-test", time.Now(), time.Hour)
		return *d, err
	})

	id := w.request(root)
	stop := w.startPool(poolOptions{name: "f1"})
	defer stop()
	s := w.waitFor(id, "handed back", func(s pin.State) bool { return s.LastFailure != nil })
	if s.LastFailure.Reason != pin.ReasonHandedBack || s.Failures != 0 {
		t.Fatalf("attempt ended %+v (failures %d), want handed back, not counted", s.LastFailure, s.Failures)
	}
	if entries, _ := os.ReadDir(filepath.Join(w.carDir, "carpark")); len(entries) != 0 {
		t.Fatalf("the carpark got %d entries while the root was being deleted", len(entries))
	}
	if rs, _, err := pinlog.ReadRoot(ctx, w.log, canon); err != nil || len(rs.Holders) != 0 {
		t.Fatalf("root state %+v, %v: want no hold recorded during the deletion", rs, err)
	}

	decide(func(s pin.RootState) (pin.RootPayload, error) { return s.Deleted("gc-test", time.Now(), 0) })
	if _, err := pinlog.New(w.log, time.Now).Commit(ctx, pinlog.Commit{RequestID: id, Actor: "decider", Decide: func(s pin.State) (pinlog.Decision, error) {
		r, err := s.DecideRetry(pin.DefaultRetryPolicy())
		return pinlog.Decision{Payload: r}, err
	}}); err != nil {
		t.Fatal(err)
	}
	w.waitFor(id, "pinned", func(s pin.State) bool { return s.Status() == pin.StatusPinned })
	rs, _, err := pinlog.ReadRoot(ctx, w.log, canon)
	if err != nil || !rs.Holders[id] || rs.Generation != 1 {
		t.Fatalf("root state %+v, %v: want the pin holding the root in its next generation", rs, err)
	}
}
