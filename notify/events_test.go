package notify_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/notify"
)

func fold(t *testing.T, ps ...notify.Payload) notify.Delivery {
	t.Helper()
	var evs []eventlog.Event
	for i, p := range ps {
		ev, err := notify.Proposal(p, uuid.New(), eventlog.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, eventlog.Event{ID: ev.ID, Stream: "delivery-x", Revision: uint64(i), Type: ev.Type, Version: ev.Version, Data: ev.Data})
	}
	d, err := notify.Fold(evs)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Claims decide who attempts and when: never a delivery that is over,
// never one whose attempt in flight still holds its lease, never before
// the retry time.
func TestClaim(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	due := notify.Due{DeliveryID: uuid.New(), Created: t0}
	started := notify.Started{Attempt: 1, By: "n1", LeaseUntil: t0.Add(30 * time.Second)}
	failed := notify.Attempted{Attempt: 1, Status: 500, RetryAt: t0.Add(time.Minute)}
	for _, c := range []struct {
		name    string
		d       notify.Delivery
		at      time.Time
		attempt int
		want    error
	}{
		{"new", fold(t, due), t0, 1, nil},
		{"lease held", fold(t, due, started), t0.Add(29 * time.Second), 0, notify.ErrNotDue},
		{"lease ran out", fold(t, due, started), t0.Add(30 * time.Second), 2, nil},
		{"before the retry", fold(t, due, started, failed), t0.Add(59 * time.Second), 0, notify.ErrNotDue},
		{"retry time", fold(t, due, started, failed), t0.Add(time.Minute), 2, nil},
		{"delivered", fold(t, due, started, notify.Delivered{Attempt: 1, Status: 200}), t0.Add(time.Hour), 0, notify.ErrFinal},
		{"abandoned", fold(t, due, notify.Abandoned{Reason: notify.ReasonWebhookRemoved}), t0.Add(time.Hour), 0, notify.ErrFinal},
		{"no delivery", notify.Delivery{}, t0, 0, notify.ErrInvalid},
	} {
		s, err := c.d.Claim("n2", c.at, 10*time.Second)
		if c.want == nil && (err != nil || s.Attempt != c.attempt || !s.LeaseUntil.Equal(c.at.Add(10*time.Second)) || s.By != "n2") ||
			c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: Claim = %+v, %v; want attempt %d, %v", c.name, s, err, c.attempt, c.want)
		}
	}
}

// Outcomes: delivered on success; otherwise a retry after a wait that
// doubles from the base up to the cap, and at the limit, abandoned.
func TestOutcomeAndBackoff(t *testing.T) {
	p := notify.Policy{MaxAttempts: 5, BaseDelay: 10 * time.Second, MaxDelay: 60 * time.Second}
	id := uuid.New()
	d := fold(t, notify.Due{DeliveryID: id})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if out := d.Outcome(notify.Started{Attempt: 2}, 204, nil, now, p); len(out) != 1 || out[0] != (notify.Delivered{Attempt: 2, Status: 204}) {
		t.Errorf("success: %+v", out)
	}
	for n, base := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 4: 60 * time.Second} {
		out := d.Outcome(notify.Started{Attempt: n}, 500, errors.New("boom"), now, p)
		a, ok := out[0].(notify.Attempted)
		wait := a.RetryAt.Sub(now)
		if len(out) != 1 || !ok || a.Status != 500 || a.Error != "boom" || wait > base || wait < base*4/5 || wait != p.Delay(n, id) {
			t.Errorf("attempt %d failed: %+v, wait %v, want %v less up to a fifth", n, out, wait, base)
		}
	}
	out := d.Outcome(notify.Started{Attempt: 5}, 0, errors.New("refused"), now, p)
	if len(out) != 2 || out[1] != (notify.Abandoned{Attempts: 5, Reason: notify.ReasonAttempts}) || !out[0].(notify.Attempted).RetryAt.IsZero() {
		t.Errorf("last attempt: %+v", out)
	}
	for _, bad := range []notify.Policy{{}, {MaxAttempts: 1, BaseDelay: time.Second}, {MaxAttempts: 1, BaseDelay: -time.Second, MaxDelay: time.Second}} {
		if bad.Validate() == nil {
			t.Errorf("policy %+v accepted", bad)
		}
	}
}

// Delivery ids are derived from the cause and the target: the same for the
// same pair, different for any other.
func TestDeliveryIDs(t *testing.T) {
	cause := uuid.New()
	w1 := notify.Target{Kind: notify.KindWebhook, WebhookID: uuid.New(), URL: "https://a.example/"}
	w2 := notify.Target{Kind: notify.KindWebhook, WebhookID: uuid.New(), URL: "https://a.example/"}
	topic := notify.Target{Kind: notify.KindSNS, TopicARN: "arn:aws:sns:us-east-1:123456789012:pinned"}
	ids := map[uuid.UUID]string{}
	for name, id := range map[string]uuid.UUID{
		"w1": notify.DeliveryID(cause, w1), "w2": notify.DeliveryID(cause, w2), "topic": notify.DeliveryID(cause, topic),
		"w1 other cause": notify.DeliveryID(uuid.New(), w1),
	} {
		if other, ok := ids[id]; ok {
			t.Errorf("%s and %s share delivery id %s", name, other, id)
		}
		ids[id] = name
	}
	if notify.DeliveryID(cause, w1) != notify.DeliveryID(cause, w1) {
		t.Error("delivery id not stable")
	}
	if id, ok := notify.DeliveryIDOf(notify.Stream(notify.DeliveryID(cause, w1))); !ok || id != notify.DeliveryID(cause, w1) {
		t.Error("DeliveryIDOf does not read Stream")
	}
}
