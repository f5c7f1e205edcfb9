package viewtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/views"
	"github.com/pickup-ipfs/pickup/tenant"
)

// testCID returns the i-th test CID, as a CIDv0 (Qm...).
func testCID(i int) string {
	mh, _ := multihash.Sum([]byte(fmt.Sprint("block ", i)), multihash.SHA2_256, -1)
	return cid.NewCidV0(mh).String()
}

func canonical(t testing.TB, c string) string {
	t.Helper()
	k, err := views.CanonicalCID(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const lease = 30 * time.Second

func testStatusAndInfo(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	id := h.request(pin.Requested{Tenant: "alice", CID: testCID(1), Name: "photos", Origins: []string{"/dnsaddr/peer"}, Meta: map[string]string{"app": "web"}})
	check := func(step string, want func(v views.Pin) string) {
		t.Helper()
		if msg := want(mustView(t, s, "alice", id)); msg != "" {
			t.Errorf("after %s: %s", step, msg)
		}
	}
	check("request", func(v views.Pin) string {
		switch {
		case v.Status != pin.StatusQueued || v.ClusterStatus != "pin_queued":
			return fmt.Sprintf("status %s/%s, want queued/pin_queued", v.Status, v.ClusterStatus)
		case v.CID != testCID(1) || v.Name != "photos" || !slices.Equal(v.Origins, []string{"/dnsaddr/peer"}) || v.Meta["app"] != "web":
			return fmt.Sprintf("pin %+v does not show the request", v)
		case !v.Created.Equal(t0) || v.Attempt != 0:
			return fmt.Sprintf("created %v attempt %d", v.Created, v.Attempt)
		}
		return ""
	})
	h.now = h.now.Add(time.Second)
	h.do(id, must[pin.FetchStarted](t)(h.state(id).Claim("f1", h.now, lease)))
	h.do(id, must[pin.FetchProgress](t)(h.state(id).Progress(pin.FetchProgress{Fetcher: "f1", Attempt: 1, Bytes: 4096, Blocks: 3, Source: "gateway"}, h.now, lease)))
	check("progress", func(v views.Pin) string {
		if v.Status != pin.StatusPinning || v.Attempt != 1 || v.Bytes != 4096 || v.Blocks != 3 || v.Source != "gateway" {
			return fmt.Sprintf("got %s attempt %d, %d bytes %d blocks from %q; want pinning, 1, 4096, 3, gateway", v.Status, v.Attempt, v.Bytes, v.Blocks, v.Source)
		}
		return ""
	})
	h.do(id, must[pin.Failed](t)(h.state(id).Fail("f1", 1, pin.ReasonStalled, "no bytes for 2m0s", false)))
	check("transient failure", func(v views.Pin) string {
		if v.Status != pin.StatusQueued || v.FailureReason != pin.ReasonStalled || v.FailureMessage != "no bytes for 2m0s" || v.Failures != 1 {
			return fmt.Sprintf("got %s, failure %q %q, %d failures", v.Status, v.FailureReason, v.FailureMessage, v.Failures)
		}
		return ""
	})
	h.do(id, must[pin.Payload](t)(h.state(id).DecideRetry(Policy())))
	h.now = h.now.Add(time.Minute)
	h.do(id, must[pin.FetchStarted](t)(h.state(id).Claim("f2", h.now, lease)))
	h.do(id, must[pin.CarUploaded](t)(h.state(id).Upload(pin.CarUploaded{Attempt: 2, Fetcher: "f2", Key: "staging/x", Bytes: 9000, Blocks: 7, CarCID: "bagcar"})))
	h.do(id, must[pin.CarValidated](t)(h.state(id).Validate(pin.CarValidated{Attempt: 2, Key: "carpark/x", Bytes: 9000, CarCID: "bagcar"})))
	check("validation", func(v views.Pin) string {
		if v.Status != pin.StatusPinned || v.ClusterStatus != "pinned" || v.CarCID != "bagcar" || v.CarBytes != 9000 || v.CarKey != "carpark/x" || v.Attempt != 2 {
			return fmt.Sprintf("got %s/%s CAR %q %d %q attempt %d", v.Status, v.ClusterStatus, v.CarCID, v.CarBytes, v.CarKey, v.Attempt)
		}
		return ""
	})

	// A permanent failure shows failed at once, and the dead letter's reason
	// once decided.
	id2 := h.request(pin.Requested{Tenant: "alice", CID: testCID(2)})
	h.do(id2, must[pin.FetchStarted](t)(h.state(id2).Claim("f1", h.now, lease)))
	h.do(id2, must[pin.Failed](t)(h.state(id2).Fail("f1", 1, pin.ReasonTooBig, "34 GB, limit 31 GiB", true)))
	if v := mustView(t, s, "alice", id2); v.Status != pin.StatusFailed || v.ClusterStatus != "pin_error" {
		t.Errorf("permanent failure shows %s/%s, want failed/pin_error", v.Status, v.ClusterStatus)
	}
	h.do(id2, must[pin.Payload](t)(h.state(id2).DecideRetry(Policy())))
	if v := mustView(t, s, "alice", id2); v.Status != pin.StatusFailed || v.FailureReason != pin.ReasonTooBig || v.Phase != pin.PhaseDeadLettered {
		t.Errorf("dead letter shows %s %q in %s", v.Status, v.FailureReason, v.Phase)
	}
}

func testCreated(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	at := t0.Add(123456789 * time.Nanosecond) // finer than a microsecond
	var ids []uuid.UUID
	// Equal, earlier and finer-than-µs times: created still strictly grows,
	// in log order, one microsecond at least.
	for _, c := range []time.Time{at, at, at.Add(-time.Hour), at.Add(500 * time.Nanosecond), at.Add(time.Second)} {
		ids = append(ids, h.request(pin.Requested{Tenant: "alice", Created: c}))
	}
	other := h.request(pin.Requested{Tenant: "bob", Created: at})
	want := []time.Time{
		at.Truncate(time.Microsecond),
		at.Truncate(time.Microsecond).Add(time.Microsecond),
		at.Truncate(time.Microsecond).Add(2 * time.Microsecond),
		at.Truncate(time.Microsecond).Add(3 * time.Microsecond),
		at.Add(time.Second).Truncate(time.Microsecond),
	}
	for i, id := range ids {
		if got := mustView(t, s, "alice", id).Created; !got.Equal(want[i]) {
			t.Errorf("request %d: created %s, want %s", i, got.Format(time.RFC3339Nano), want[i].Format(time.RFC3339Nano))
		}
	}
	if got := mustView(t, s, "bob", other).Created; !got.Equal(at.Truncate(time.Microsecond)) {
		t.Errorf("another tenant's request: created %s, want %s: tenants are numbered apart", got, at.Truncate(time.Microsecond))
	}
}

func testTenantIsolation(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	a := h.request(pin.Requested{Tenant: "alice", CID: testCID(1)})
	bob := h.request(pin.Requested{Tenant: "bob", CID: testCID(1)})
	ctx := context.Background()
	_, err := s.Pin(ctx, "bob", a)
	wantNotFound(t, err, "bob reading alice's pin")
	_, err = s.Pin(ctx, "alice", uuid.New())
	wantNotFound(t, err, "an unknown pin")
	res, err := s.List(ctx, views.ListQuery{Tenant: "bob", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Count != 1 || len(res.Pins) != 1 || res.Pins[0].RequestID != bob {
		t.Errorf("bob lists %+v, want only his pin", res)
	}
	v, err := s.NewestByCID(ctx, "bob", canonical(t, testCID(1)))
	if err != nil || v.RequestID != bob {
		t.Errorf("bob's newest for the CID: %v %v, want his own", v.RequestID, err)
	}
	// Replacing another tenant's pin hides nothing.
	h.request(pin.Requested{Tenant: "bob", Replaces: a})
	if _, err := s.Pin(ctx, "alice", a); err != nil {
		t.Errorf("bob's request naming alice's pin as replaced hid it: %v", err)
	}
}

func testRemovedAndReplaced(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	ctx := context.Background()
	gone := h.request(pin.Requested{CID: testCID(1)})
	h.do(gone, must[pin.Removed](t)(h.state(gone).Remove(uuid.Nil)))
	_, err := s.Pin(ctx, "alice", gone)
	wantNotFound(t, err, "a removed pin")

	old := h.request(pin.Requested{CID: testCID(2), Name: "v1"})
	repl := h.request(pin.Requested{CID: testCID(3), Name: "v2", Replaces: old})
	// Before the old pin's PinRemoved lands, it is already hidden.
	_, err = s.Pin(ctx, "alice", old)
	wantNotFound(t, err, "a replaced pin before its PinRemoved")
	res, err := s.List(ctx, views.ListQuery{Tenant: "alice", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Count != 1 || res.Pins[0].RequestID != repl || res.Pins[0].Replaces != old {
		t.Errorf("listing after a replacement: %+v, want only the replacement", res)
	}
	if due, _ := s.DueForClaim(ctx, h.now.Add(time.Hour), 10); slices.Contains(due, old) {
		t.Errorf("a replaced pin is still offered to fetchers")
	}
	h.do(old, must[pin.Removed](t)(h.state(old).Remove(repl)))
	v, err := s.NewestByCID(ctx, "alice", canonical(t, testCID(2)))
	if err != nil || v.RequestID != old || !v.Removed || v.ClusterStatus != "unpinned" || v.ReplacedBy != repl {
		t.Errorf("newest request of the replaced CID: %+v %v, want the old request, removed, unpinned", v, err)
	}
	f, err := s.Figures(ctx, h.now)
	if err != nil {
		t.Fatal(err)
	}
	if f.Backlog != 1 {
		t.Errorf("backlog %d after a removal and a replacement, want 1", f.Backlog)
	}
}

func testNewestByCID(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	ctx := context.Background()
	first := h.request(pin.Requested{CID: testCID(7)})
	h.now = h.now.Add(time.Second)
	// The same content asked as a CIDv1: the same root.
	second := h.request(pin.Requested{CID: canonical(t, testCID(7))})
	h.do(second, must[pin.Removed](t)(h.state(second).Remove(uuid.Nil)))
	v, err := s.NewestByCID(ctx, "alice", canonical(t, testCID(7)))
	if err != nil || v.RequestID != second || !v.Removed {
		t.Errorf("newest: %v removed %v (%v), want the second request, removed", v.RequestID, v.Removed, err)
	}
	_ = first
	_, err = s.NewestByCID(ctx, "alice", canonical(t, testCID(8)))
	wantNotFound(t, err, "a CID never requested")
	_, err = s.NewestByCID(ctx, "bob", canonical(t, testCID(7)))
	wantNotFound(t, err, "another tenant's CID")
}

func tokenEvent(t testing.TB, h *pins, id uuid.UUID, rev uint64, p tenant.Payload) eventlog.Event {
	t.Helper()
	return h.event(tenant.Stream(id), rev, p, func(eid uuid.UUID) (eventlog.Proposed, error) {
		return tenant.Proposal(p, eid, eventlog.Metadata{})
	})
}

func testTokens(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	ctx := context.Background()
	secret, issued, err := tenant.Issue("alice", "ci", t0)
	if err != nil {
		t.Fatal(err)
	}
	h.apply(tokenEvent(t, h, issued.TokenID, 0, issued))
	got, err := s.TokenTenant(ctx, tenant.HashToken(secret))
	if err != nil || got != "alice" {
		t.Fatalf("token tenant: %q %v, want alice", got, err)
	}
	_, err = s.TokenTenant(ctx, tenant.HashToken(secret+"x"))
	wantNotFound(t, err, "an unknown token")
	_, other, _ := tenant.Issue("bob", "", t0.Add(time.Second))
	h.apply(tokenEvent(t, h, other.TokenID, 0, other))
	list, err := s.Tokens(ctx, "")
	if err != nil || len(list) != 2 || list[0].ID != issued.TokenID || list[0].Label != "ci" || list[1].Tenant != "bob" {
		t.Errorf("tokens: %+v %v", list, err)
	}
	h.apply(tokenEvent(t, h, issued.TokenID, 1, tenant.TokenRevoked{TokenID: issued.TokenID}))
	_, err = s.TokenTenant(ctx, tenant.HashToken(secret))
	wantNotFound(t, err, "a revoked token")
	list, err = s.Tokens(ctx, "alice")
	if err != nil || len(list) != 1 || !list[0].Revoked {
		t.Errorf("alice's tokens after revocation: %+v %v", list, err)
	}
}

func ids(vs []views.Pin) []uuid.UUID {
	out := make([]uuid.UUID, len(vs))
	for i, v := range vs {
		out[i] = v.RequestID
	}
	return out
}

func testWorkViews(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	ctx := context.Background()
	const queueTimeout = time.Hour

	older := h.request(pin.Requested{CID: testCID(1)})
	h.now = h.now.Add(time.Minute)
	newer := h.request(pin.Requested{CID: testCID(2), Tenant: "bob"})
	claimed := h.request(pin.Requested{CID: testCID(3)})
	h.do(claimed, must[pin.FetchStarted](t)(h.state(claimed).Claim("f1", h.now, lease)))
	failed := h.request(pin.Requested{CID: testCID(4)})
	h.do(failed, must[pin.FetchStarted](t)(h.state(failed).Claim("f1", h.now, lease)))
	h.do(failed, must[pin.Failed](t)(h.state(failed).Fail("f1", 1, pin.ReasonStalled, "stalled", false)))
	retried := h.request(pin.Requested{CID: testCID(5)})
	h.do(retried, must[pin.FetchStarted](t)(h.state(retried).Claim("f1", h.now, lease)))
	h.do(retried, must[pin.Failed](t)(h.state(retried).Fail("f1", 1, pin.ReasonStalled, "stalled", false)))
	h.do(retried, must[pin.Payload](t)(h.state(retried).DecideRetry(Policy())))
	notBefore := h.state(retried).NotBefore
	pinned := h.request(pin.Requested{CID: testCID(6), Tenant: "carol"})
	h.do(pinned, must[pin.FetchStarted](t)(h.state(pinned).Claim("f2", h.now, lease)))
	h.do(pinned, must[pin.CarUploaded](t)(h.state(pinned).Upload(pin.CarUploaded{Attempt: 1, Fetcher: "f2", Key: "s", Bytes: 10, Blocks: 1, CarCID: "bagcar6"})))
	h.do(pinned, must[pin.CarValidated](t)(h.state(pinned).Validate(pin.CarValidated{Attempt: 1, Key: "carpark/6", Bytes: 10, CarCID: "bagcar6"})))

	due, err := s.DueForClaim(ctx, h.now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := due; !slices.Equal(got, []uuid.UUID{older, newer}) {
		t.Errorf("due for a claim: %v, want %v (oldest first; no claimed, failed, pinned or not-yet-due pin)", got, []uuid.UUID{older, newer})
	}
	if due, _ := s.DueForClaim(ctx, notBefore, 10); !slices.Contains(due, retried) {
		t.Errorf("a retry is not offered once due")
	}
	if due, _ := s.DueForClaim(ctx, h.now, 1); len(due) != 1 || due[0] != older {
		t.Errorf("limit 1 gave %v", due)
	}

	awaiting, err := s.AwaitingDecision(ctx, 10)
	if err != nil || !slices.Equal(awaiting, []uuid.UUID{failed}) {
		t.Errorf("awaiting decision: %v %v, want %v", awaiting, err, failed)
	}

	// Before any deadline, nothing is overdue; after the lease, the claimed
	// pin is; after the queue timeout, the queued ones too, soonest first.
	if od, _ := s.Overdue(ctx, h.now, queueTimeout, 10); len(od) != 0 {
		t.Errorf("overdue before any deadline: %v", od)
	}
	if od, _ := s.Overdue(ctx, h.now.Add(lease+time.Second), queueTimeout, 10); !slices.Equal(od, []uuid.UUID{claimed}) {
		t.Errorf("overdue after the lease: %v, want the claimed pin", od)
	}
	late := h.now.Add(queueTimeout + time.Second)
	od, err := s.Overdue(ctx, late, queueTimeout, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := od; !slices.Equal(got, []uuid.UUID{claimed, older, newer}) {
		t.Errorf("overdue after the queue timeout: %v, want %v", got, []uuid.UUID{claimed, older, newer})
	}
	for _, id := range od {
		if d, ok := h.state(id).Deadline(queueTimeout); !ok || !d.Before(late) {
			t.Errorf("%s listed overdue, but its deadline is %v", id, d)
		}
	}
	if od, _ := s.Overdue(ctx, late, 0, 10); !slices.Equal(od, []uuid.UUID{claimed}) {
		t.Errorf("with no queue timeout, overdue: %v, want only the lease", od)
	}

	car, ok, err := s.CarForRoot(ctx, canonical(t, testCID(6)))
	if err != nil || !ok || car != "bagcar6" {
		t.Errorf("car for a pinned root %s: %q %v %v, want bagcar6", pinned, car, ok, err)
	}
	if car, ok, err := s.CarForRoot(ctx, canonical(t, testCID(1))); err != nil || ok || car != "" {
		t.Errorf("car of a root not pinned: %q %v %v, want none", car, ok, err)
	}
}

func testFigures(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	ctx := context.Background()
	h.request(pin.Requested{CID: testCID(1)})
	h.now = h.now.Add(time.Minute)
	h.request(pin.Requested{CID: testCID(2)})
	flying := h.request(pin.Requested{CID: testCID(3)})
	h.do(flying, must[pin.FetchStarted](t)(h.state(flying).Claim("f1", h.now, lease)))
	later := h.request(pin.Requested{CID: testCID(4)})
	h.do(later, must[pin.FetchStarted](t)(h.state(later).Claim("f1", h.now, lease)))
	h.do(later, must[pin.Failed](t)(h.state(later).Fail("f1", 1, pin.ReasonStalled, "stalled", false)))
	h.do(later, must[pin.Payload](t)(h.state(later).DecideRetry(Policy())))
	done := h.request(pin.Requested{CID: testCID(5)})
	h.do(done, must[pin.FetchStarted](t)(h.state(done).Claim("f1", h.now, lease)))
	h.do(done, must[pin.CarUploaded](t)(h.state(done).Upload(pin.CarUploaded{Attempt: 1, Fetcher: "f1", Key: "s", Bytes: 1000, Blocks: 1, CarCID: "c"})))
	h.do(done, must[pin.CarValidated](t)(h.state(done).Validate(pin.CarValidated{Attempt: 1, Key: "k", Bytes: 1000, CarCID: "c"})))
	dead := h.request(pin.Requested{CID: testCID(6)})
	h.do(dead, must[pin.FetchStarted](t)(h.state(dead).Claim("f1", h.now, lease)))
	h.do(dead, must[pin.Failed](t)(h.state(dead).Fail("f1", 1, pin.ReasonTooBig, "big", true)))
	h.do(dead, must[pin.Payload](t)(h.state(dead).DecideRetry(Policy())))

	f, err := s.Figures(ctx, h.now)
	if err != nil {
		t.Fatal(err)
	}
	want := projections.Figures{Checkpoint: h.pos, Backlog: 2, Scheduled: 1, InFlight: 1, Pinned: 1, DeadLettered: 1, BytesPinned: 1000,
		OldestDue: t0, PinnedEver: 1, DeadLetteredEver: 1}
	if !f.OldestDue.Equal(want.OldestDue) {
		t.Errorf("oldest due %v, want %v", f.OldestDue, want.OldestDue)
	}
	f.OldestDue = want.OldestDue
	if f != want {
		t.Errorf("figures\n got %+v\nwant %+v", f, want)
	}
	// Removing the pinned pin takes its bytes off; what was ever pinned stays.
	h.do(done, must[pin.Removed](t)(h.state(done).Remove(uuid.Nil)))
	if f, _ := s.Figures(ctx, h.now); f.Pinned != 0 || f.BytesPinned != 0 || f.PinnedEver != 1 {
		t.Errorf("after removing the pinned pin: %+v", f)
	}
}

func testApplyTwice(t *testing.T, b Backend) {
	evs := Events(History(HistoryConfig{Events: 3000, Seed: 7}))
	ctx := context.Background()
	once, _ := open(t, b)
	if _, err := once.Apply(ctx, after(evs), viewrow.Prepare(evs)); err != nil {
		t.Fatal(err)
	}
	twice, _ := open(t, b)
	// Overlapping and repeated batches: each event counts once.
	var reached eventlog.Position
	for _, r := range [][2]int{{0, 1000}, {500, 1500}, {0, 2000}, {1999, 3000}, {0, 3000}} {
		res, err := twice.Apply(ctx, after(evs[r[0]:r[1]]), viewrow.Prepare(evs[r[0]:r[1]]))
		if err != nil {
			t.Fatal(err)
		}
		reached = max(reached, evs[r[1]-1].Position)
		if res.Checkpoint != reached {
			t.Errorf("checkpoint %d after applying up to %d", res.Checkpoint, reached)
		}
	}
	SameViews(t, once, twice)
}

// SameViews fails the test if the stores' views differ, printing how.
func SameViews(t testing.TB, a, b Store) {
	t.Helper()
	ctx := context.Background()
	err := a.Dump(ctx, func(cpA eventlog.Position, rowsA viewrow.Rows) error {
		return b.Dump(ctx, func(cpB eventlog.Position, rowsB viewrow.Rows) error {
			if cpA != cpB {
				t.Errorf("checkpoints %d and %d differ", cpA, cpB)
			}
			diffs, _, err := viewrow.Diff(rowsA, rowsB, 10)
			for _, d := range diffs {
				t.Error(d)
			}
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testSkipped(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	id := h.request(pin.Requested{CID: testCID(1)})
	ghost := uuid.New()
	res := h.apply(
		h.pinEvent(ghost, pin.FetchStarted{Attempt: 1, Fetcher: "f", LeaseUntil: t0}), // no request
		h.event(pin.Stream(id), 1, nil, func(eid uuid.UUID) (eventlog.Proposed, error) { // a second request
			return pinlog.Propose(pin.Requested{RequestID: id, Tenant: "mallory", CID: testCID(9), Created: t0}, eid, eventlog.Metadata{})
		}),
		h.event("something-else", 0, nil, func(eid uuid.UUID) (eventlog.Proposed, error) { // not a view's stream
			return eventlog.Proposed{ID: eid, Type: "Other", Version: 1, Data: []byte(`{}`)}, nil
		}),
	)
	if len(res.Skipped) != 2 {
		t.Errorf("skipped %d events, want 2 (the other stream is simply not a view's): %v", len(res.Skipped), res.Skipped)
	}
	if res.Checkpoint != h.pos {
		t.Errorf("checkpoint %d, want %d: skipped events are passed", res.Checkpoint, h.pos)
	}
	if v := mustView(t, s, "alice", id); v.CID != testCID(1) {
		t.Errorf("a second request changed the pin: %+v", v)
	}
	if res, _ := s.List(context.Background(), views.ListQuery{Tenant: "mallory", Limit: 10}); res.Count != 0 {
		t.Errorf("the second request's tenant sees %d pins", res.Count)
	}
}

func testReset(t *testing.T, b Backend) {
	s, _ := open(t, b)
	ctx := context.Background()
	evs := Events(History(HistoryConfig{Events: 500, Seed: 3}))
	if _, err := s.Apply(ctx, 0, viewrow.Prepare(evs)); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	empty, _ := open(t, b)
	SameViews(t, s, empty)
	// A runner that read before the reset has its next batch refused: it
	// does not follow the new checkpoint.
	more := Events(History(HistoryConfig{Events: 600, Seed: 3}))[500:]
	if _, err := s.Apply(ctx, evs[len(evs)-1].Position, viewrow.Prepare(more)); !errors.Is(err, projections.ErrCheckpointMoved) {
		t.Errorf("apply after a reset: %v, want ErrCheckpointMoved", err)
	}
	SameViews(t, s, empty)
}

// The queue offers one request per root at a time, the longest waiting,
// and none for a root being fetched: across any number of fetcher
// processes a root is fetched once, and its other requests then complete
// from the carpark.
func testOneClaimPerRoot(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	ctx := context.Background()
	first := h.request(pin.Requested{CID: testCID(1)})
	h.now = h.now.Add(time.Second)
	// The same root as CIDv1 text, for another tenant: one root all the same.
	second := h.request(pin.Requested{CID: canonical(t, testCID(1)), Tenant: "bob"})
	h.now = h.now.Add(time.Second)
	other := h.request(pin.Requested{CID: testCID(2)})
	h.now = h.now.Add(time.Second)
	third := h.request(pin.Requested{CID: testCID(1)})

	due := func(want ...uuid.UUID) {
		t.Helper()
		got, err := s.DueForClaim(ctx, h.now, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("due for a claim: %v, want %v", got, want)
		}
		// Claimable answers the same question for one pin.
		for _, id := range []uuid.UUID{first, second, other, third} {
			ok, err := s.Claimable(ctx, id, h.now)
			if err != nil || ok != slices.Contains(want, id) {
				t.Errorf("claimable %s: %v %v, want %v", id, ok, err, slices.Contains(want, id))
			}
		}
		if ok, err := s.Claimable(ctx, uuid.New(), h.now); err != nil || ok {
			t.Errorf("an unknown pin is claimable: %v %v", ok, err)
		}
	}
	due(first, other)
	// While the first request's attempt fetches the root, no request of
	// that root is offered.
	h.do(first, must[pin.FetchStarted](t)(h.state(first).Claim("f1", h.now, lease)))
	due(other)
	// Once it is pinned, the next one is, to complete from the carpark.
	h.do(first, must[pin.CarUploaded](t)(h.state(first).Upload(pin.CarUploaded{Attempt: 1, Fetcher: "f1", Key: "s", Bytes: 10, Blocks: 1, CarCID: "bagcar1"})))
	due(other)
	h.do(first, must[pin.CarValidated](t)(h.state(first).Validate(pin.CarValidated{Attempt: 1, Key: "carpark/1", Bytes: 10, CarCID: "bagcar1"})))
	due(second, other)
	// A failed attempt frees the root too.
	h.do(second, must[pin.FetchStarted](t)(h.state(second).Claim("f2", h.now, lease)))
	due(other)
	h.do(second, must[pin.Failed](t)(h.state(second).Fail("f2", 1, pin.ReasonStalled, "stalled", false)))
	due(other, third)
}
