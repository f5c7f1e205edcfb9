package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/notify"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/tenant"
)

// Under normal operation each receiver gets exactly the signed deliveries
// it should: one per pinned or failed pin of its tenant, of the events it
// asked for, registered before the pin's event, and never another tenant's.
func TestWebhooksGetExactlyTheirDeliveries(t *testing.T) {
	log := openLog(t, t.TempDir())
	// A pin pinned before any webhook: nobody hears of it.
	early := request(t, log, "alice")
	early.pinned(t, log)

	all, pinnedOnly, bobs := newReceiver(t), newReceiver(t), newReceiver(t)
	wAll, sAll := register(t, log, "alice", all.srv.URL+"/hooks/all")
	wPinned, sPinned := register(t, log, "alice", pinnedOnly.srv.URL+"/hooks/pinned", tenant.WebhookPinned)
	wBob, sBob := register(t, log, "bob", bobs.srv.URL, tenant.WebhookFailed)
	all.setSecret(sAll)
	pinnedOnly.setSecret(sPinned)
	bobs.setSecret(sBob)
	start(t, notifierConfig("n1"), testDeps(log))

	var alicePinned, aliceFailed, bobPinned, bobFailed []testPin
	for range 3 {
		p := request(t, log, "alice")
		p.pinned(t, log)
		alicePinned = append(alicePinned, p)
		q := request(t, log, "bob")
		q.pinned(t, log)
		bobPinned = append(bobPinned, q)
	}
	for range 2 {
		p := request(t, log, "alice")
		p.failed(t, log)
		aliceFailed = append(aliceFailed, p)
		q := request(t, log, "bob")
		q.failed(t, log)
		bobFailed = append(bobFailed, q)
	}
	// Still queued: nothing to tell.
	request(t, log, "alice")

	want := map[*receiver]map[uuid.UUID]testPin{all: {}, pinnedOnly: {}, bobs: {}}
	for _, p := range alicePinned {
		want[all][webhookDelivery(lastEventID(t, log, p), wAll)] = p
		want[pinnedOnly][webhookDelivery(lastEventID(t, log, p), wPinned)] = p
	}
	for _, p := range aliceFailed {
		want[all][webhookDelivery(lastEventID(t, log, p), wAll)] = p
	}
	for _, p := range bobFailed {
		want[bobs][webhookDelivery(lastEventID(t, log, p), wBob)] = p
	}
	for _, ids := range want {
		for id := range ids {
			waitFor(t, "delivery "+id.String(), func() bool { return final(t, log, id) })
		}
	}
	for r, ids := range want {
		got := r.got()
		if len(got) != len(ids) {
			t.Errorf("receiver %s got %d requests, want %d", r.srv.URL, len(got), len(ids))
		}
		for _, p := range got {
			id, _ := uuid.Parse(p.id)
			tp, ok := ids[id]
			switch {
			case !p.verified:
				t.Errorf("%s: signature did not verify", describe(p))
			case !ok:
				t.Errorf("%s: a delivery this receiver should not get", describe(p))
			case p.body.ID != id || p.body.Pin.RequestID != tp.id || p.body.Pin.CID != tp.cid || string(p.body.Event) != p.event:
				t.Errorf("%s: body %+v does not describe pin %+v", describe(p), p.body, tp)
			case p.event == "pinned" && (p.body.Pin.Status != pin.StatusPinned || p.body.Pin.CarCID != tp.carCID || p.body.Pin.CarBytes != 1234):
				t.Errorf("%s: pinned body %+v", describe(p), p.body.Pin)
			case p.event == "failed" && (p.body.Pin.Status != pin.StatusFailed || p.body.Pin.FailureReason != pin.ReasonTooBig || p.body.Pin.Failures != 1):
				t.Errorf("%s: failed body %+v", describe(p), p.body.Pin)
			case p.body.Time.IsZero():
				t.Errorf("%s: no time", describe(p))
			}
			delete(ids, id)
		}
		for id, p := range ids {
			t.Errorf("receiver %s never got delivery %s of pin %s", r.srv.URL, id, p.id)
		}
	}
	for _, p := range bobPinned {
		// bob's webhook asked for failures only: no delivery at all.
		id := webhookDelivery(lastEventID(t, log, p), wBob)
		if evs := deliveryEvents(t, log, id.String()); len(evs) != 0 {
			t.Errorf("pinned pin of bob got a delivery: %s", types(evs))
		}
	}
	if evs := deliveryEvents(t, log, webhookDelivery(lastEventID(t, log, early), wAll).String()); len(evs) != 0 {
		t.Errorf("a pin pinned before the webhook was registered got a delivery: %s", types(evs))
	}
}

// A receiver that fails gets the same delivery again, with backoff, until
// it accepts it; the log records every attempt.
func TestRetriesWithBackoffUntilAccepted(t *testing.T) {
	log := openLog(t, t.TempDir())
	r := newReceiver(t)
	r.status = func(_ string, n int) int {
		if n < 3 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	}
	w, secret := register(t, log, "alice", r.srv.URL)
	r.setSecret(secret)
	start(t, notifierConfig("n1"), testDeps(log))
	p := request(t, log, "alice")
	p.pinned(t, log)
	id := webhookDelivery(lastEventID(t, log, p), w)
	waitFor(t, "the delivery", func() bool { return final(t, log, id) })

	got := r.got()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 3 (500, 500, then 204)", len(got))
	}
	for _, g := range got {
		if g.id != id.String() || !g.verified {
			t.Errorf("request %s (verified %v), want delivery %s, signed", g.id, g.verified, id)
		}
	}
	evs := deliveryEvents(t, log, id.String())
	if want := "DeliveryDue,DeliveryStarted,DeliveryAttempted,DeliveryStarted,DeliveryAttempted,DeliveryStarted,Delivered"; types(evs) != want {
		t.Fatalf("delivery stream %s, want %s", types(evs), want)
	}
	var delays []time.Duration
	for _, e := range evs {
		if e.Type != notify.TypeAttempted {
			continue
		}
		var a notify.Attempted
		if err := json.Unmarshal(e.Data, &a); err != nil {
			t.Fatal(err)
		}
		if a.Status != http.StatusInternalServerError || a.RetryAt.IsZero() {
			t.Errorf("attempt %d recorded %+v, want status 500 and a retry time", a.Attempt, a)
		}
		delays = append(delays, a.RetryAt.Sub(e.Meta.Time))
	}
	// The recorded waits follow the policy: 20ms then 40ms, less up to a
	// fifth.
	policy := notifierConfig("").Policy
	for i, d := range delays {
		want := policy.Delay(i+1, id)
		if d < want-time.Millisecond || d > want+time.Millisecond {
			t.Errorf("wait after attempt %d recorded as %v, the policy says %v", i+1, d, want)
		}
	}
}

// After MaxAttempts failures the delivery is abandoned: the receiver got
// exactly MaxAttempts requests, and nothing more is tried.
func TestAbandonedAfterTheLimit(t *testing.T) {
	log := openLog(t, t.TempDir())
	r := newReceiver(t)
	r.status = func(string, int) int { return http.StatusServiceUnavailable }
	w, secret := register(t, log, "alice", r.srv.URL)
	r.setSecret(secret)
	cfg := notifierConfig("n1")
	cfg.Policy.MaxAttempts = 3
	n, _ := start(t, cfg, testDeps(log))
	p := request(t, log, "alice")
	p.failed(t, log)
	id := webhookDelivery(lastEventID(t, log, p), w)
	waitFor(t, "the delivery to end", func() bool { return final(t, log, id) })
	evs := deliveryEvents(t, log, id.String())
	if types(evs) != "DeliveryDue,DeliveryStarted,DeliveryAttempted,DeliveryStarted,DeliveryAttempted,DeliveryStarted,DeliveryAttempted,DeliveryAbandoned" {
		t.Fatalf("delivery stream %s", types(evs))
	}
	var a notify.Abandoned
	if err := json.Unmarshal(evs[len(evs)-1].Data, &a); err != nil || a.Attempts != 3 || a.Reason != notify.ReasonAttempts {
		t.Errorf("abandoned %+v (%v), want 3 attempts, %s", a, err, notify.ReasonAttempts)
	}
	// A later pass finds the delivery over and sends nothing.
	p2 := request(t, log, "bob")
	p2.pinned(t, log)
	if err := n.SaveCheckpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := r.byID()[id.String()]; c != 3 {
		t.Errorf("receiver got the abandoned delivery %d times, want 3", c)
	}
}

// A notifier stopped after its POST and before recording the outcome
// leaves its claim to run out; the next notifier sends the same delivery
// again, with the same id: at least once, never lost.
func TestStoppedBetweenPostAndRecordResendsTheSameDelivery(t *testing.T) {
	log := openLog(t, t.TempDir())
	r := newReceiver(t)
	w, secret := register(t, log, "alice", r.srv.URL)
	r.setSecret(secret)
	cfg := notifierConfig("n1")
	cfg.Timeout, cfg.Lease = 100*time.Millisecond, 300*time.Millisecond
	_, stop1 := start(t, cfg, testDeps(log))
	// The first request stops the notifier that sent it before it hears
	// the answer: a crash between the POST and the append.
	r.before = func(_ string, n int) {
		if n == 1 {
			go stop1()
			time.Sleep(20 * time.Millisecond)
		}
	}
	p := request(t, log, "alice")
	p.pinned(t, log)
	id := webhookDelivery(lastEventID(t, log, p), w)
	waitFor(t, "the first request", func() bool { return len(r.got()) == 1 })
	stop1()
	if evs := deliveryEvents(t, log, id.String()); types(evs) != "DeliveryDue,DeliveryStarted" {
		t.Fatalf("after the stop the delivery is %s, want claimed and not recorded", types(evs))
	}
	cfg.Actor = "n2"
	start(t, cfg, testDeps(log))
	waitFor(t, "the delivery", func() bool { return final(t, log, id) })
	got := r.byID()
	if len(got) != 1 || got[id.String()] != 2 {
		t.Errorf("receiver got %v, want delivery %s twice (at least once, same id)", got, id)
	}
	evs := deliveryEvents(t, log, id.String())
	if types(evs) != "DeliveryDue,DeliveryStarted,DeliveryStarted,Delivered" {
		t.Errorf("delivery stream %s", types(evs))
	}
	if evs[2].Meta.Actor != "n2" {
		t.Errorf("second attempt by %q, want n2", evs[2].Meta.Actor)
	}
}

// A restarted notifier neither resends what was delivered nor loses what
// was pending: it resumes a delivery mid-backoff, and sees new pins.
func TestRestartNeitherLosesNorDuplicates(t *testing.T) {
	for _, c := range []struct {
		name       string
		checkpoint bool
	}{{"from its checkpoint", true}, {"with no checkpoint", false}} {
		t.Run(c.name, func(t *testing.T) {
			log := openLog(t, t.TempDir())
			r := newReceiver(t)
			var failFirst atomic.Value // delivery id whose first try fails
			failFirst.Store("")
			r.status = func(id string, n int) int {
				if id == failFirst.Load().(string) && n == 1 {
					return http.StatusBadGateway
				}
				return http.StatusOK
			}
			w, secret := register(t, log, "alice", r.srv.URL)
			r.setSecret(secret)
			cfg := notifierConfig("n1")
			cfg.Policy.BaseDelay, cfg.Policy.MaxDelay = time.Second, time.Second
			if !c.checkpoint {
				cfg.CheckpointEvery = time.Hour
			}
			n1, stop1 := start(t, cfg, testDeps(log))
			var ids []uuid.UUID
			for range 5 {
				p := request(t, log, "alice")
				p.pinned(t, log)
				ids = append(ids, webhookDelivery(lastEventID(t, log, p), w))
			}
			for _, id := range ids {
				waitFor(t, "delivery", func() bool { return final(t, log, id) })
			}
			// One more, whose first attempt fails: the restart comes during
			// its backoff.
			p := request(t, log, "alice")
			p.pinned(t, log)
			pendingID := webhookDelivery(lastEventID(t, log, p), w)
			failFirst.Store(pendingID.String())
			waitFor(t, "the failed attempt", func() bool {
				evs := deliveryEvents(t, log, pendingID.String())
				return len(evs) > 0 && evs[len(evs)-1].Type == notify.TypeAttempted
			})
			if c.checkpoint {
				if err := n1.SaveCheckpoint(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			stop1()
			cp, err := log.ReadStream(context.Background(), notify.CheckpointStream, eventlog.StreamEnd, eventlog.Backwards, 1)
			if err != nil {
				t.Fatal(err)
			}
			if c.checkpoint {
				due := deliveryEvents(t, log, pendingID.String())[0]
				var saved notify.Checkpoint
				if len(cp) != 1 || json.Unmarshal(cp[0].Data, &saved) != nil || saved.Position != due.Position-1 {
					t.Fatalf("checkpoint %v, want just before the pending delivery at %d", cp, due.Position)
				}
			} else if len(cp) != 0 {
				t.Fatalf("a checkpoint was saved: %v", cp)
			}

			cfg.Actor = "n2"
			start(t, cfg, testDeps(log))
			q := request(t, log, "alice")
			q.pinned(t, log)
			ids = append(ids, pendingID, webhookDelivery(lastEventID(t, log, q), w))
			for _, id := range ids {
				waitFor(t, "delivery", func() bool { return final(t, log, id) })
			}
			got := r.byID()
			for i, id := range ids {
				want := 1
				if id == pendingID {
					want = 2 // failed once, then delivered
				}
				if got[id.String()] != want {
					t.Errorf("delivery %d (%s) sent %d times, want %d", i, id, got[id.String()], want)
				}
				if evs := deliveryEvents(t, log, id.String()); evs[len(evs)-1].Type != notify.TypeDelivered {
					t.Errorf("delivery %d: %s", i, types(evs))
				}
			}
			if len(got) != len(ids) {
				t.Errorf("receiver got %d deliveries, want %d", len(got), len(ids))
			}
		})
	}
}

// Two notifiers at once, in two processes sharing the log: every delivery
// is claimed and sent once.
func TestTwoNotifiersDeliverEachOnce(t *testing.T) {
	dir := t.TempDir()
	log1, log2 := openLog(t, dir), openLog(t, dir)
	r := newReceiver(t)
	w, secret := register(t, log1, "alice", r.srv.URL)
	r.setSecret(secret)
	start(t, notifierConfig("n1"), testDeps(log1))
	start(t, notifierConfig("n2"), testDeps(log2))
	var ids []uuid.UUID
	for i := range 20 {
		log := []eventlog.Store{log1, log2}[i%2]
		p := request(t, log, "alice")
		if i%3 == 0 {
			p.failed(t, log)
		} else {
			p.pinned(t, log)
		}
		ids = append(ids, webhookDelivery(lastEventID(t, log, p), w))
	}
	for _, id := range ids {
		waitFor(t, "delivery", func() bool { return final(t, log1, id) })
	}
	got := r.byID()
	by := map[string]int{}
	for _, id := range ids {
		if got[id.String()] != 1 {
			t.Errorf("delivery %s sent %d times, want once", id, got[id.String()])
		}
		evs := deliveryEvents(t, log1, id.String())
		if types(evs) != "DeliveryDue,DeliveryStarted,Delivered" {
			t.Errorf("delivery %s: %s, want one claim and its outcome", id, types(evs))
		}
		by[evs[1].Meta.Actor]++
	}
	if len(got) != len(ids) {
		t.Errorf("receiver got %d deliveries, want %d", len(got), len(ids))
	}
	t.Logf("attempts by notifier: %v", by)
}

// A delivery still pending when its webhook is removed is abandoned at its
// next attempt, and the webhook hears of nothing after.
func TestRemovedWebhookAbandonsPendingDeliveries(t *testing.T) {
	log := openLog(t, t.TempDir())
	r := newReceiver(t)
	r.status = func(string, int) int { return http.StatusInternalServerError }
	w, secret := register(t, log, "alice", r.srv.URL)
	r.setSecret(secret)
	cfg := notifierConfig("n1")
	cfg.Policy.BaseDelay, cfg.Policy.MaxDelay = 300*time.Millisecond, 300*time.Millisecond
	start(t, cfg, testDeps(log))
	p := request(t, log, "alice")
	p.pinned(t, log)
	id := webhookDelivery(lastEventID(t, log, p), w)
	waitFor(t, "the first attempt", func() bool { return len(r.got()) == 1 })
	unregister(t, log, w.WebhookID)
	waitFor(t, "the delivery to end", func() bool { return final(t, log, id) })
	evs := deliveryEvents(t, log, id.String())
	var a notify.Abandoned
	if err := json.Unmarshal(evs[len(evs)-1].Data, &a); err != nil || a.Reason != notify.ReasonWebhookRemoved || a.Attempts != 1 {
		t.Errorf("stream %s ends with %+v, want abandoned as %s after 1 attempt", types(evs), a, notify.ReasonWebhookRemoved)
	}
	q := request(t, log, "alice")
	q.pinned(t, log)
	later := webhookDelivery(lastEventID(t, log, q), w)
	// The notifier takes the log in order: once a later pin's delivery is
	// over, it has passed q.
	marker := newReceiver(t)
	w2, s2 := register(t, log, "carol", marker.srv.URL)
	marker.setSecret(s2)
	m := request(t, log, "carol")
	m.pinned(t, log)
	waitFor(t, "carol's delivery", func() bool { return final(t, log, webhookDelivery(lastEventID(t, log, m), w2)) })
	if evs := deliveryEvents(t, log, later.String()); len(evs) != 0 {
		t.Errorf("removed webhook got a delivery: %s", types(evs))
	}
	if n := len(r.got()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

// A notifier holding another key than the webhook was registered with
// fails its attempts instead of signing with a secret the receiver does
// not have.
func TestWrongKeyNeverSigns(t *testing.T) {
	log := openLog(t, t.TempDir())
	r := newReceiver(t)
	w, secret := register(t, log, "alice", r.srv.URL)
	r.setSecret(secret)
	cfg := notifierConfig("n1")
	cfg.Policy.MaxAttempts = 2
	deps := testDeps(log)
	other := mustKey("0000000000000000000000000000000000000000000000000000000000000001")
	deps.Key = func() ([]byte, error) { return other, nil }
	start(t, cfg, deps)
	p := request(t, log, "alice")
	p.pinned(t, log)
	id := webhookDelivery(lastEventID(t, log, p), w)
	waitFor(t, "the delivery to end", func() bool { return final(t, log, id) })
	if n := len(r.got()); n != 0 {
		t.Errorf("receiver got %d requests signed with the wrong key", n)
	}
	evs := deliveryEvents(t, log, id.String())
	var a notify.Attempted
	json.Unmarshal(evs[len(evs)-2].Data, &a)
	if evs[len(evs)-1].Type != notify.TypeAbandoned || a.Error == "" {
		t.Errorf("stream %s, last attempt %+v", types(evs), a)
	}
}

// Without private webhooks allowed, the client refuses loopback and
// private URLs, and its dialler refuses private addresses, which is what
// stops a public name that resolves into the private network.
func TestClientRefusesPrivateAddresses(t *testing.T) {
	r := newReceiver(t)
	r.setSecret("s")
	c := notify.NewWebhookClient(notify.WebhookClientConfig{})
	for _, u := range []string{r.srv.URL, "https://127.0.0.1:1/", "https://localhost./x", "https://10.1.2.3/"} {
		if _, err := c.Post(context.Background(), notify.WebhookRequest{URL: u, ID: uuid.New(), Body: []byte("{}"), Secret: "s", Time: time.Now()}); err == nil {
			t.Errorf("POST %s: no error", u)
		}
	}
	if len(r.got()) != 0 {
		t.Errorf("receiver got %d requests", len(r.got()))
	}
	for addr, public := range map[string]bool{
		"127.0.0.1:443": false, "[::1]:443": false, "10.0.0.7:443": false, "169.254.169.254:80": false,
		"[::ffff:192.168.1.1]:443": false, "[fd00::1]:443": false, "8.8.8.8:443": true, "[2606:4700::1111]:443": true,
	} {
		err := notify.DialControl("tcp", addr, nil)
		if (err == nil) != public || err != nil && !errors.Is(err, notify.ErrPrivateAddress) {
			t.Errorf("dial %s: %v, want allowed %v", addr, err, public)
		}
	}
	allowed := notify.NewWebhookClient(notify.WebhookClientConfig{AllowPrivate: true})
	if status, err := allowed.Post(context.Background(), notify.WebhookRequest{URL: r.srv.URL, ID: uuid.New(), Event: "pinned", Body: []byte("{}"), Secret: "s", Time: time.Now()}); err != nil || status != http.StatusOK {
		t.Errorf("allowed POST: %d %v", status, err)
	}
	if !slices.ContainsFunc(r.got(), func(p post) bool { return p.verified }) {
		t.Error("the allowed POST did not verify")
	}
}
