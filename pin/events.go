// Package pin is the domain of a pin request: the events of its life, the
// fold from those events to its state, and the decisions that move it on.
// Each decision is a pure function from a state (and a command) to the event
// to append, or a typed refusal. The package does no I/O: callers read a
// pin's stream, fold it, decide, and append what was decided at the revision
// they read, so that a stale decision loses.
//
// A pin's life, one stream per request ("pin-<request id>"):
//
//	PinRequested ─▶ FetchStarted ─▶ FetchProgress* ─▶ CarUploaded ─▶ CarValidated   (pinned)
//	      ▲               │                                 │
//	      │               └──────────────┬──────────────────┘
//	      │                              ▼
//	RetryScheduled ◀─ (transient) ── PinFailed ── (permanent, or out of attempts) ─▶ DeadLettered
//
// PinRemoved can end any of it.
package pin

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Event types, as recorded in the log.
const (
	TypeRequested      = "PinRequested"
	TypeFetchStarted   = "FetchStarted"
	TypeFetchProgress  = "FetchProgress"
	TypeCarUploaded    = "CarUploaded"
	TypeCarValidated   = "CarValidated"
	TypeFailed         = "PinFailed"
	TypeRetryScheduled = "RetryScheduled"
	TypeDeadLettered   = "DeadLettered"
	TypeRemoved        = "PinRemoved"
)

// Types lists every event type of a pin's stream.
var Types = []string{
	TypeRequested, TypeFetchStarted, TypeFetchProgress, TypeCarUploaded, TypeCarValidated,
	TypeFailed, TypeRetryScheduled, TypeDeadLettered, TypeRemoved,
}

// StreamPrefix starts the name of every pin's stream.
const StreamPrefix = "pin-"

// Stream returns the name of the stream of a pin request.
func Stream(requestID uuid.UUID) string { return StreamPrefix + requestID.String() }

// RequestIDOf returns the request id of a pin stream's name.
func RequestIDOf(stream string) (uuid.UUID, bool) {
	if len(stream) <= len(StreamPrefix) || stream[:len(StreamPrefix)] != StreamPrefix {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(stream[len(StreamPrefix):])
	return id, err == nil
}

// Payload is the body of one of a pin's events.
type Payload interface {
	// EventType is the type the event is recorded under.
	EventType() string
}

// Requested: a tenant asked for a CID to be pinned.
type Requested struct {
	RequestID uuid.UUID         `json:"request_id"`
	Tenant    string            `json:"tenant"`
	CID       string            `json:"cid"`
	Name      string            `json:"name,omitempty"`
	Origins   []string          `json:"origins,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	// Created is when the request was accepted, as the API shows it.
	Created time.Time `json:"created"`
	// Replaces is the request this one replaces (POST /pins/{requestid}).
	Replaces uuid.UUID `json:"replaces,omitzero"`
}

// FetchStarted: a fetcher claimed an attempt, and holds it until LeaseUntil
// unless it renews the lease.
type FetchStarted struct {
	Attempt    int       `json:"attempt"`
	Fetcher    string    `json:"fetcher"`
	LeaseUntil time.Time `json:"lease_until"`
}

// FetchProgress: how far the attempt has come; the lease is renewed.
type FetchProgress struct {
	Attempt    int       `json:"attempt"`
	Fetcher    string    `json:"fetcher"`
	Bytes      int64     `json:"bytes"`
	Blocks     int64     `json:"blocks"`
	Source     string    `json:"source,omitempty"`
	LeaseUntil time.Time `json:"lease_until"`
}

// CarUploaded: the attempt's CAR is complete in the staging area.
type CarUploaded struct {
	Attempt int    `json:"attempt"`
	Fetcher string `json:"fetcher"`
	// Key locates the staged CAR in the staging store.
	Key    string `json:"key"`
	Bytes  int64  `json:"bytes"`
	Blocks int64  `json:"blocks"`
	// CarCID is the CID of the CAR file itself (sha2-256, codec car).
	CarCID string `json:"car_cid"`
	// Checksum is the storage's own proof of the staged bytes, when it gives
	// one (see carstore.Staged), so that validation need not read them back.
	Checksum string `json:"checksum,omitempty"`
	Source   string `json:"source,omitempty"`
}

// CarValidated: the staged CAR was checked and is in the carpark; the pin is
// pinned.
type CarValidated struct {
	Attempt int `json:"attempt"`
	// Key locates the CAR in the carpark.
	Key    string `json:"key"`
	Bytes  int64  `json:"bytes"`
	CarCID string `json:"car_cid"`
	// Reused is true when the CAR was already in the carpark and nothing was
	// fetched.
	Reused bool `json:"reused,omitempty"`
}

// Failed: an attempt failed.
type Failed struct {
	Attempt   int    `json:"attempt"`
	Reason    Reason `json:"reason"`
	Message   string `json:"message"`
	Permanent bool   `json:"permanent"`
}

// RetryScheduled: the next attempt may start at NotBefore.
type RetryScheduled struct {
	// Failures is how many attempts have failed so far.
	Failures  int       `json:"failures"`
	NotBefore time.Time `json:"not_before"`
	// Requeued is true when a tenant asked again for a pin that had failed
	// for good: its count of failures starts over.
	Requeued bool `json:"requeued,omitempty"`
}

// DeadLettered: no more attempts; the pin has failed.
type DeadLettered struct {
	Failures int    `json:"failures"`
	Reason   Reason `json:"reason"`
	Message  string `json:"message"`
}

// Removed: the tenant deleted the request, or replaced it by another.
type Removed struct {
	ReplacedBy uuid.UUID `json:"replaced_by,omitzero"`
}

func (Requested) EventType() string      { return TypeRequested }
func (FetchStarted) EventType() string   { return TypeFetchStarted }
func (FetchProgress) EventType() string  { return TypeFetchProgress }
func (CarUploaded) EventType() string    { return TypeCarUploaded }
func (CarValidated) EventType() string   { return TypeCarValidated }
func (Failed) EventType() string         { return TypeFailed }
func (RetryScheduled) EventType() string { return TypeRetryScheduled }
func (DeadLettered) EventType() string   { return TypeDeadLettered }
func (Removed) EventType() string        { return TypeRemoved }

// SchemaVersion is the version every pin event is written with. Decode
// reads this version; when a schema changes, it gains a case for the old one.
const SchemaVersion = 1

// Proposal makes the event to append for a payload.
func Proposal(p Payload, id uuid.UUID, meta eventlog.Metadata) (eventlog.Proposed, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return eventlog.Proposed{}, fmt.Errorf("encode %s: %w", p.EventType(), err)
	}
	return eventlog.Proposed{ID: id, Type: p.EventType(), Version: SchemaVersion, Data: data, Meta: meta}, nil
}

// Decode returns the payload of one of a pin's events.
func Decode(e eventlog.Event) (Payload, error) {
	if e.Version != SchemaVersion {
		return nil, fmt.Errorf("decode %s at %s/%d: schema version %d, want %d", e.Type, e.Stream, e.Revision, e.Version, SchemaVersion)
	}
	var p Payload
	var err error
	switch e.Type {
	case TypeRequested:
		p, err = decode[Requested](e.Data)
	case TypeFetchStarted:
		p, err = decode[FetchStarted](e.Data)
	case TypeFetchProgress:
		p, err = decode[FetchProgress](e.Data)
	case TypeCarUploaded:
		p, err = decode[CarUploaded](e.Data)
	case TypeCarValidated:
		p, err = decode[CarValidated](e.Data)
	case TypeFailed:
		p, err = decode[Failed](e.Data)
	case TypeRetryScheduled:
		p, err = decode[RetryScheduled](e.Data)
	case TypeDeadLettered:
		p, err = decode[DeadLettered](e.Data)
	case TypeRemoved:
		p, err = decode[Removed](e.Data)
	default:
		return nil, fmt.Errorf("decode %s/%d: %w: %q", e.Stream, e.Revision, ErrUnknownEvent, e.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s at %s/%d: %w", e.Type, e.Stream, e.Revision, err)
	}
	return p, nil
}

func decode[T Payload](data []byte) (Payload, error) {
	var p T
	err := json.Unmarshal(data, &p)
	return p, err
}
