package notify

import (
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/tenant"
)

// Notification is the JSON body of a webhook's POST.
type Notification struct {
	// ID is the delivery id, as in the Pickup-Delivery-Id header.
	ID uuid.UUID `json:"id"`
	// Event is pinned or failed, as in the Pickup-Event header.
	Event tenant.WebhookEvent `json:"event"`
	// Time is when the pin was pinned or failed (the event's time in the
	// log), not when the delivery was sent.
	Time time.Time `json:"time"`
	Pin  PinInfo   `json:"pin"`
}

// PinInfo is what a notification says of the pin, in the Pinning Service
// API's words where it has them.
type PinInfo struct {
	RequestID uuid.UUID `json:"requestid"`
	CID       string    `json:"cid"`
	Name      string    `json:"name,omitempty"`
	// Status is "pinned" or "failed".
	Status pin.Status `json:"status"`
	// CarCID and CarBytes describe the CAR in the carpark (pinned).
	CarCID   string `json:"car_cid,omitempty"`
	CarBytes int64  `json:"car_bytes,omitempty"`
	// FailureReason, FailureMessage and Failures say why it failed
	// (failed).
	FailureReason  pin.Reason `json:"failure_reason,omitempty"`
	FailureMessage string     `json:"failure_message,omitempty"`
	Failures       int        `json:"failures,omitempty"`
}

// CarMessage is the message published on the SNS topic when a CAR is
// validated into the carpark, for indexers such as Elastic IPFS's.
type CarMessage struct {
	Bucket    string    `json:"bucket"`
	Key       string    `json:"key"`
	RootCID   string    `json:"root_cid"`
	CarCID    string    `json:"car_cid"`
	Bytes     int64     `json:"bytes"`
	RequestID uuid.UUID `json:"request_id"`
}

// cause is a pin event that is notified of, with what the notifications
// say about it.
type cause struct {
	eventID uuid.UUID
	at      time.Time
	request pin.Requested
	event   tenant.WebhookEvent
	// validated (pinned) or dead (failed).
	validated pin.CarValidated
	dead      pin.DeadLettered
}

func (c cause) notification(id uuid.UUID) *Notification {
	n := &Notification{ID: id, Event: c.event, Time: c.at.UTC(), Pin: PinInfo{
		RequestID: c.request.RequestID, CID: c.request.CID, Name: c.request.Name,
	}}
	switch c.event {
	case tenant.WebhookPinned:
		n.Pin.Status = pin.StatusPinned
		n.Pin.CarCID, n.Pin.CarBytes = c.validated.CarCID, c.validated.Bytes
	case tenant.WebhookFailed:
		n.Pin.Status = pin.StatusFailed
		n.Pin.FailureReason, n.Pin.FailureMessage, n.Pin.Failures = c.dead.Reason, c.dead.Message, c.dead.Failures
	}
	return n
}

func (c cause) carMessage(bucket string) *CarMessage {
	return &CarMessage{
		Bucket: bucket, Key: c.validated.Key, RootCID: c.request.CID,
		CarCID: c.validated.CarCID, Bytes: c.validated.Bytes, RequestID: c.request.RequestID,
	}
}
