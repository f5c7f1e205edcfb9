package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/tenant"
)

// work attempts due deliveries until ctx ends: those whose next time has
// come, the soonest first, at most Concurrency at once.
func (n *Notifier) work(ctx context.Context) {
	slots := make(chan struct{}, n.cfg.Concurrency)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		ids, wait := n.takeDue(n.cfg.Now(), cap(slots)-len(slots))
		for _, id := range ids {
			slots <- struct{}{}
			go func() {
				defer func() { <-slots }()
				n.attempt(ctx, id)
				n.mu.Lock()
				if p := n.pending[id]; p != nil {
					p.inFlight = false
				}
				n.mu.Unlock()
				n.poke()
			}()
		}
		timer.Reset(min(wait, n.cfg.Period))
		select {
		case <-ctx.Done():
			for range cap(slots) {
				slots <- struct{}{}
			}
			return
		case <-n.wake:
		case <-timer.C:
		}
	}
}

// takeDue marks up to limit due deliveries in flight and returns them,
// with the wait until the next one falls due.
func (n *Notifier) takeDue(now time.Time, limit int) ([]uuid.UUID, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	type due struct {
		id   uuid.UUID
		next time.Time
	}
	var ready []due
	wait := n.cfg.Period
	for id, p := range n.pending {
		if p.inFlight || p.kind == KindSNS && n.deps.SNS == nil {
			// A notifier that cannot publish leaves the message to one
			// that can.
			continue
		}
		if d := p.next.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		ready = append(ready, due{id, p.next})
	}
	slices.SortFunc(ready, func(a, b due) int { return a.next.Compare(b.next) })
	var ids []uuid.UUID
	for _, d := range ready[:min(len(ready), limit)] {
		n.pending[d.id].inFlight = true
		ids = append(ids, d.id)
	}
	return ids, wait
}

// readDelivery reads a delivery's stream and folds it.
func (n *Notifier) readDelivery(ctx context.Context, id uuid.UUID) (Delivery, error) {
	stream := Stream(id)
	var all []eventlog.Event
	for from := uint64(0); ; {
		evs, err := n.deps.Log.ReadStream(ctx, stream, from, eventlog.Forwards, 100)
		if err != nil {
			return Delivery{}, fmt.Errorf("read %s: %w", stream, err)
		}
		all = append(all, evs...)
		if len(evs) < 100 {
			break
		}
		from = evs[len(evs)-1].Revision + 1
	}
	return Fold(all)
}

// setNext records what the notifier learnt of a delivery from its stream.
func (n *Notifier) setNext(id uuid.UUID, d Delivery) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.pending[id]
	switch {
	case p == nil:
	case d.Final():
		delete(n.pending, id)
	default:
		p.next = d.NextAt()
	}
}

// attempt makes one attempt at a delivery, if it is still due: it claims
// the attempt at the revision it read (a notifier that loses the race
// sends nothing), sends, and records the outcome after the claim. Stopped
// between the send and the record, it leaves the claim to run out: the
// delivery is then sent again, with the same id.
func (n *Notifier) attempt(ctx context.Context, id uuid.UUID) {
	logger := n.logger.With("delivery_id", id)
	d, err := n.readDelivery(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("reading the delivery failed", "err", err)
		}
		return
	}
	now := n.cfg.Now()
	claim, err := d.Claim(n.cfg.Actor, now, n.cfg.Lease)
	if errors.Is(err, ErrFinal) || errors.Is(err, ErrNotDue) {
		n.setNext(id, d)
		return
	}
	if err != nil {
		logger.Error("claiming the delivery failed", "err", err)
		return
	}
	meta := eventlog.Metadata{Time: now, Actor: n.cfg.Actor, CorrelationID: d.Due.RequestID, CausationID: d.LastEventID}
	var hook tenant.WebhookRegistered
	if d.Due.Target.Kind == KindWebhook {
		var ok bool
		n.mu.Lock()
		hook, ok = n.registry.Get(d.Due.Target.WebhookID)
		n.mu.Unlock()
		if !ok {
			// The webhook is gone: nobody wants this any more.
			n.record(ctx, logger, d, eventlog.DerivedID(d.LastEventID, "abandon"), meta,
				Abandoned{Attempts: d.Attempts, Reason: ReasonWebhookRemoved})
			return
		}
	}
	started, err := Proposal(claim, uuid.New(), meta)
	if err != nil {
		logger.Error("claiming the delivery failed", "err", err)
		return
	}
	res, err := n.deps.Log.Append(ctx, Stream(id), d.Expected(), started)
	if eventlog.IsWrongRevision(err) {
		return // another notifier got there first
	}
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("claiming the delivery failed", "err", err)
		}
		return
	}
	d = d.With(claim)
	d.Revision, d.LastEventID = res.Revision, started.ID
	n.setNext(id, d)

	status, failure := n.send(ctx, d, hook, now)
	if ctx.Err() != nil {
		return // stopped: the claim runs out, and the delivery is sent again
	}
	outcome := d.Outcome(claim, status, failure, n.cfg.Now(), n.cfg.Policy)
	meta = eventlog.Metadata{Time: n.cfg.Now(), Actor: n.cfg.Actor, CorrelationID: d.Due.RequestID, CausationID: started.ID}
	ids := []uuid.UUID{eventlog.DerivedID(started.ID, "outcome"), eventlog.DerivedID(started.ID, "abandon")}
	n.record(ctx, logger, d, ids[0], meta, outcome[0], outcome[1:]...)
	result := "failed"
	switch outcome[len(outcome)-1].(type) {
	case Delivered:
		result = "delivered"
		logger.Debug("delivered", "kind", d.Due.Target.Kind, "attempt", claim.Attempt, "status", status)
	case Abandoned:
		result = "abandoned"
		logger.Warn("delivery abandoned", "kind", d.Due.Target.Kind, "attempts", claim.Attempt, "status", status, "err", failure)
	default:
		logger.Info("delivery attempt failed", "kind", d.Due.Target.Kind, "attempt", claim.Attempt, "status", status, "err", failure)
	}
	if n.deps.Attempts != nil {
		n.deps.Attempts.WithLabelValues(d.Due.Target.Kind, result).Inc()
	}
}

// record appends what was decided on d, at the revision it was decided
// on; the second payload, if any, gets an id derived from the first's.
func (n *Notifier) record(ctx context.Context, logger *slog.Logger, d Delivery, id uuid.UUID, meta eventlog.Metadata, first Payload, rest ...Payload) {
	var evs []eventlog.Proposed
	for i, p := range append([]Payload{first}, rest...) {
		eid := id
		if i > 0 {
			eid = eventlog.DerivedID(id, p.EventType())
		}
		ev, err := Proposal(p, eid, meta)
		if err != nil {
			logger.Error("recording the delivery failed", "err", err)
			return
		}
		evs = append(evs, ev)
	}
	_, err := n.deps.Log.Append(ctx, Stream(d.Due.DeliveryID), d.Expected(), evs...)
	if err != nil && !eventlog.IsWrongRevision(err) && ctx.Err() == nil {
		// The claim runs out, and the next attempt sends again.
		logger.Error("recording the delivery failed", "err", err)
	}
}

// send makes the attempt: a signed POST to the webhook, or a message on
// the topic.
func (n *Notifier) send(ctx context.Context, d Delivery, hook tenant.WebhookRegistered, now time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	switch d.Due.Target.Kind {
	case KindWebhook:
		if d.Due.Webhook == nil {
			return 0, fmt.Errorf("%w: webhook delivery without a body", ErrInvalid)
		}
		key, err := n.deps.Key()
		if err != nil {
			return 0, fmt.Errorf("signing key: %w", err)
		}
		if KeyID(key) != hook.KeyID {
			return 0, fmt.Errorf("signing key %s is not the key %s webhook %s was registered with", KeyID(key), hook.KeyID, hook.WebhookID)
		}
		body, err := json.Marshal(d.Due.Webhook)
		if err != nil {
			return 0, fmt.Errorf("encode notification: %w", err)
		}
		return n.deps.Webhooks.Post(ctx, WebhookRequest{
			URL: d.Due.Target.URL, ID: d.Due.DeliveryID, Event: string(d.Due.Webhook.Event),
			Body: body, Secret: Secret(key, hook.WebhookID), Time: now,
		})
	case KindSNS:
		if d.Due.Car == nil {
			return 0, fmt.Errorf("%w: SNS delivery without a message", ErrInvalid)
		}
		return 0, n.deps.SNS.Publish(ctx, d.Due.DeliveryID, *d.Due.Car)
	}
	return 0, fmt.Errorf("%w: unknown delivery target %q", ErrInvalid, d.Due.Target.Kind)
}
