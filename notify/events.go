package notify

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Event types of a delivery's stream.
const (
	TypeDue       = "DeliveryDue"
	TypeStarted   = "DeliveryStarted"
	TypeAttempted = "DeliveryAttempted"
	TypeDelivered = "Delivered"
	TypeAbandoned = "DeliveryAbandoned"
)

// DeliveryTypes returns every event type of a delivery's stream.
func DeliveryTypes() []string {
	return []string{TypeDue, TypeStarted, TypeAttempted, TypeDelivered, TypeAbandoned}
}

// StreamPrefix starts the name of every delivery's stream.
const StreamPrefix = "delivery-"

// SchemaVersion is the version every notify event is written with.
const SchemaVersion = 1

// Stream returns the name of a delivery's stream.
func Stream(deliveryID uuid.UUID) string { return StreamPrefix + deliveryID.String() }

// DeliveryIDOf returns the delivery id of a delivery stream's name.
func DeliveryIDOf(stream string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(stream, StreamPrefix)
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return id, err == nil
}

// Target kinds.
const (
	KindWebhook = "webhook"
	KindSNS     = "sns"
)

// Target is where a delivery goes.
type Target struct {
	Kind string `json:"kind"`
	// WebhookID and URL name a webhook (KindWebhook).
	WebhookID uuid.UUID `json:"webhook_id,omitzero"`
	URL       string    `json:"url,omitempty"`
	// TopicARN names an SNS topic (KindSNS).
	TopicARN string `json:"topic_arn,omitempty"`
}

func (t Target) key() string {
	if t.Kind == KindWebhook {
		return "webhook " + t.WebhookID.String()
	}
	return t.Kind + " " + t.TopicARN
}

// DeliveryID is the id of the delivery of the event cause to target. It is
// derived, so that two notifiers, or a replay, deciding on the same cause
// name the same delivery, and the log keeps one. It is also the id that
// receivers deduplicate on.
func DeliveryID(cause uuid.UUID, t Target) uuid.UUID {
	return eventlog.DerivedID(cause, "deliver to "+t.key())
}

// Payload is the body of one of a delivery's events.
type Payload interface {
	EventType() string
}

// Due: a notification is to be delivered. It carries everything the
// delivery sends, fixed once: every attempt, by any notifier, sends the
// same body.
type Due struct {
	DeliveryID uuid.UUID `json:"delivery_id"`
	Tenant     string    `json:"tenant,omitempty"`
	Target     Target    `json:"target"`
	// Cause is the id of the pin event notified of (CarValidated or
	// DeadLettered); RequestID the pin's.
	Cause     uuid.UUID `json:"cause"`
	RequestID uuid.UUID `json:"request_id"`
	// Webhook is the body of a webhook's POST; Car the SNS message.
	Webhook *Notification `json:"webhook,omitempty"`
	Car     *CarMessage   `json:"car,omitempty"`
	Created time.Time     `json:"created"`
}

// Started: a notifier claimed attempt Attempt, and holds it until
// LeaseUntil. A notifier that stops before it records the outcome leaves
// the claim to run out; the next attempt then sends the same delivery
// again (at least once).
type Started struct {
	Attempt    int       `json:"attempt"`
	By         string    `json:"by"`
	LeaseUntil time.Time `json:"lease_until"`
}

// Attempted: an attempt failed; the next may start at RetryAt (zero when
// the delivery was abandoned instead).
type Attempted struct {
	Attempt int       `json:"attempt"`
	Status  int       `json:"status,omitempty"`
	Error   string    `json:"error,omitempty"`
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// Delivered: the receiver accepted the delivery (HTTP 2xx; SNS accepted
// the message). Final.
type Delivered struct {
	Attempt int `json:"attempt"`
	Status  int `json:"status,omitempty"`
}

// Abandoned: no more attempts. Final.
type Abandoned struct {
	Attempts int    `json:"attempts"`
	Reason   string `json:"reason"`
}

// Reasons a delivery is abandoned.
const (
	ReasonAttempts       = "attempts_exhausted"
	ReasonWebhookRemoved = "webhook_removed"
)

func (Due) EventType() string       { return TypeDue }
func (Started) EventType() string   { return TypeStarted }
func (Attempted) EventType() string { return TypeAttempted }
func (Delivered) EventType() string { return TypeDelivered }
func (Abandoned) EventType() string { return TypeAbandoned }

// ErrInvalid marks an event that cannot be read, or a bad configuration.
var ErrInvalid = errors.New("invalid")

// codec maps a delivery's payloads to the envelope and back; immutable.
var codec = eventlog.NewCodec[Payload](SchemaVersion, Due{}, Started{}, Attempted{}, Delivered{}, Abandoned{})

// Proposal makes the event to append for a payload.
func Proposal(p Payload, id uuid.UUID, meta eventlog.Metadata) (eventlog.Proposed, error) {
	return codec.Propose(p, id, meta)
}

// Decode returns the payload of one of a delivery's events; an event it
// cannot read wraps ErrInvalid.
func Decode(e eventlog.Event) (Payload, error) {
	p, err := codec.Decode(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return p, nil
}

// Delivery is what a delivery's events add up to.
type Delivery struct {
	// Exists is false until DeliveryDue; Revision is then the revision of
	// the last event folded, and LastEventID its id.
	Exists      bool
	Revision    uint64
	LastEventID uuid.UUID
	Due         Due
	// Attempts counts the attempts claimed so far.
	Attempts int
	// InFlight is the attempt claimed and not yet decided, if any.
	InFlight *Started
	// RetryAt is when the next attempt may start after a failed one.
	RetryAt    time.Time
	LastStatus int
	LastError  string
	Delivered  bool
	Abandoned  bool
}

// Final reports whether the delivery is over.
func (d Delivery) Final() bool { return d.Delivered || d.Abandoned }

// NextAt is when the delivery may next be worked on: at once when new,
// after a failed attempt's RetryAt, when an attempt in flight's lease runs
// out. Zero for a final delivery.
func (d Delivery) NextAt() time.Time {
	switch {
	case d.Final() || !d.Exists:
		return time.Time{}
	case d.InFlight != nil:
		return d.InFlight.LeaseUntil
	case !d.RetryAt.IsZero():
		return d.RetryAt
	}
	return d.Due.Created
}

// With returns the delivery after one more payload.
func (d Delivery) With(p Payload) Delivery {
	switch p := p.(type) {
	case Due:
		d.Due = p
	case Started:
		d.Attempts = max(d.Attempts, p.Attempt)
		c := p
		d.InFlight = &c
	case Attempted:
		d.InFlight = nil
		d.RetryAt = p.RetryAt
		d.LastStatus, d.LastError = p.Status, p.Error
	case Delivered:
		d.InFlight = nil
		d.LastStatus, d.LastError = p.Status, ""
		d.Delivered = true
	case Abandoned:
		d.InFlight = nil
		d.Abandoned = true
	}
	return d
}

// Apply returns the delivery after one more event.
func (d Delivery) Apply(e eventlog.Event) (Delivery, error) {
	p, err := Decode(e)
	if err != nil {
		return d, err
	}
	d = d.With(p)
	d.Exists, d.Revision, d.LastEventID = true, e.Revision, e.ID
	return d, nil
}

// Fold returns a delivery from its events, in order.
func Fold(events []eventlog.Event) (Delivery, error) {
	var d Delivery
	for _, e := range events {
		var err error
		if d, err = d.Apply(e); err != nil {
			return d, err
		}
	}
	return d, nil
}

// Expected is what an append to the delivery's stream must expect.
func (d Delivery) Expected() eventlog.Expected { return eventlog.ExpectedAfter(d.Revision, d.Exists) }

// Refusals of Claim.
var (
	// ErrFinal: the delivery is over.
	ErrFinal = errors.New("delivery is over")
	// ErrNotDue: an attempt holds the delivery, or the next may not start
	// yet.
	ErrNotDue = errors.New("delivery not due")
)

// Claim decides on a notifier taking the next attempt at time now, holding
// it for lease.
func (d Delivery) Claim(by string, now time.Time, lease time.Duration) (Started, error) {
	switch {
	case !d.Exists:
		return Started{}, fmt.Errorf("claim delivery: %w: no such delivery", ErrInvalid)
	case d.Final():
		return Started{}, fmt.Errorf("claim delivery %s: %w", d.Due.DeliveryID, ErrFinal)
	case now.Before(d.NextAt()):
		return Started{}, fmt.Errorf("claim delivery %s: %w until %s", d.Due.DeliveryID, ErrNotDue, d.NextAt().Format(time.RFC3339Nano))
	}
	return Started{Attempt: d.Attempts + 1, By: by, LeaseUntil: now.Add(lease)}, nil
}

// Policy is how failed attempts are retried.
type Policy struct {
	// MaxAttempts is how many attempts are made before the delivery is
	// abandoned. Default 8.
	MaxAttempts int
	// BaseDelay is the wait after the first failed attempt, doubled after
	// each further one up to MaxDelay. Defaults 30s and 1h.
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

// DefaultPolicy has every default: 8 attempts over about an hour.
func DefaultPolicy() Policy {
	return Policy{MaxAttempts: 8, BaseDelay: 30 * time.Second, MaxDelay: time.Hour}
}

// Validate reports a policy that cannot work.
func (p Policy) Validate() error {
	switch {
	case p.MaxAttempts < 1:
		return fmt.Errorf("%w: delivery attempts %d, want at least 1", ErrInvalid, p.MaxAttempts)
	case p.BaseDelay <= 0 || p.MaxDelay < p.BaseDelay:
		return fmt.Errorf("%w: delivery delays %v..%v, want 0 < base <= max", ErrInvalid, p.BaseDelay, p.MaxDelay)
	}
	return nil
}

// Delay is the wait after failed attempt n (from 1): BaseDelay doubled
// n-1 times, at most MaxDelay, less up to a fifth taken from seed, so
// that deliveries failing together spread out, and so that every notifier
// computes the same wait.
func (p Policy) Delay(n int, seed uuid.UUID) time.Duration {
	d := min(float64(p.BaseDelay)*math.Pow(2, float64(max(n-1, 0))), float64(p.MaxDelay))
	u := float64(binary.BigEndian.Uint64(seed[8:])>>11) / (1 << 53)
	return time.Duration(d * (1 - 0.2*u))
}

// Outcome decides what an attempt's result records: Delivered on success;
// otherwise Attempted with the time of the next attempt, or, when it was
// the last, Attempted and Abandoned. status is the HTTP status (0 if none);
// failure is nil when the receiver accepted the delivery.
func (d Delivery) Outcome(claim Started, status int, failure error, now time.Time, p Policy) []Payload {
	if failure == nil {
		return []Payload{Delivered{Attempt: claim.Attempt, Status: status}}
	}
	msg := failure.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	a := Attempted{Attempt: claim.Attempt, Status: status, Error: msg}
	if claim.Attempt >= p.MaxAttempts {
		return []Payload{a, Abandoned{Attempts: claim.Attempt, Reason: ReasonAttempts}}
	}
	a.RetryAt = now.Add(p.Delay(claim.Attempt, d.Due.DeliveryID))
	return []Payload{a}
}
