// Package pin is the domain of a pin request: the events of its life, the
// fold from those events to its state, and the decisions that move it on.
// Each decision is a pure function from a state (and a command) to the event
// to append, or a typed refusal. The package does no I/O and knows nothing of
// the log's envelope: pin/pinlog, the one write path, reads a pin's stream,
// folds it here, lets a caller decide here, and appends what was decided at
// the revision it read, so that a stale decision loses.
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
	"time"

	"github.com/google/uuid"
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

// Payloads returns one (zero) value of every payload of a pin's stream, in
// the order of a pin's life.
func Payloads() []Payload {
	return []Payload{
		Requested{}, FetchStarted{}, FetchProgress{}, CarUploaded{}, CarValidated{},
		Failed{}, RetryScheduled{}, DeadLettered{}, Removed{},
	}
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
	// pinEvent closes the set: only this package's events are a pin's.
	pinEvent()
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
	// Upload names the CAR the tenant sent with the request (its key in
	// the uploads area, package carupload), received whole before this
	// event was appended: the DAG is read from it, not from the network.
	// Empty for a pin by CID alone.
	Upload string `json:"upload,omitempty"`
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
	Attempt int    `json:"attempt"`
	Fetcher string `json:"fetcher"`
	// Bytes and Blocks are the CAR's so far: its bytes (header and
	// framing included) and its blocks.
	Bytes  int64  `json:"bytes"`
	Blocks int64  `json:"blocks"`
	Source string `json:"source,omitempty"`
	// BlockBytes is the blocks' own bytes among Bytes, without the CAR's
	// framing: what ExpectedBytes is compared with.
	BlockBytes int64 `json:"block_bytes,omitempty"`
	// ExpectedBytes is the DAG's size as its root declares it: a dag-pb
	// root's own bytes plus the cumulative sizes (Tsize) of its links, the
	// blocks' bytes without the CAR's framing (see dag.Estimate for how it
	// may differ from what is fetched). 0 when the root declares none
	// (raw, dag-cbor, dag-json roots) or it is not known yet.
	ExpectedBytes int64 `json:"expected_bytes,omitempty"`
	// Checkpoint is the CAR bytes stored for good with a note of how to go
	// on from them: what a later attempt, on any fetcher, goes on from if
	// this one dies (see dag.ResumableSink). 0: none yet, or a store that
	// keeps none.
	Checkpoint int64 `json:"checkpoint,omitempty"`
	// ResumedFrom is the CAR bytes this attempt found kept by an earlier
	// one and went on from, fetching only the rest; 0 when it began at the
	// start.
	ResumedFrom int64     `json:"resumed_from,omitempty"`
	LeaseUntil  time.Time `json:"lease_until"`
}

// CarUploaded: the attempt's CAR is written, verified as it streamed, and
// staged: stored, but not yet visible in the carpark (in S3, the parts of
// a multipart upload at the carpark key, left open; in a directory, a file
// in staging/).
type CarUploaded struct {
	Attempt int    `json:"attempt"`
	Fetcher string `json:"fetcher"`
	// Key locates what the attempt staged (in S3, a marker naming its
	// upload), so that validation, or the cleanup of a failed attempt,
	// finds it.
	Key    string `json:"key"`
	Bytes  int64  `json:"bytes"`
	Blocks int64  `json:"blocks"`
	// CarCID is the CID of the CAR file itself (sha2-256, codec car).
	CarCID string `json:"car_cid"`
	// Checksum is the proof of the staged bytes the storage can check (see
	// carstore.Staged: the parts' composite SHA-256 and the whole CAR's), so
	// that validation need not read them back.
	Checksum string `json:"checksum,omitempty"`
	Source   string `json:"source,omitempty"`
	// ExpectedBytes is the DAG's size as its root declared it (see
	// FetchProgress), so that a fetch too quick to report its progress
	// still records it; 0 when the root declared none.
	ExpectedBytes int64 `json:"expected_bytes,omitempty"`
	// ResumedFrom is the CAR bytes an earlier attempt kept that this one
	// went on from (see FetchProgress); 0 when it wrote the CAR whole.
	ResumedFrom int64 `json:"resumed_from,omitempty"`
}

// CarValidated: the staged CAR was checked and made visible in the carpark;
// the pin is pinned.
type CarValidated struct {
	Attempt int `json:"attempt"`
	// Key locates the CAR in the carpark: <rootCid>/<rootCid>.car in S3
	// (written once where it stays), <carCid>/<carCid>.car in a directory
	// and for CARs stored before that change.
	Key    string `json:"key"`
	Bytes  int64  `json:"bytes"`
	CarCID string `json:"car_cid"`
	// Reused is true when the CAR was already in the carpark and nothing was
	// fetched.
	Reused bool `json:"reused,omitempty"`
	// Index locates the CAR's block index in the carpark (the CAR's key
	// and ".idx"); IndexBytes and IndexSHA256 (hex) are the index object's
	// size and SHA-256, as read back from the carpark. Empty in events
	// recorded before CARs had indexes.
	Index       string `json:"index,omitempty"`
	IndexBytes  int64  `json:"index_bytes,omitempty"`
	IndexSHA256 string `json:"index_sha256,omitempty"`
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

func (Requested) pinEvent()      {}
func (FetchStarted) pinEvent()   {}
func (FetchProgress) pinEvent()  {}
func (CarUploaded) pinEvent()    {}
func (CarValidated) pinEvent()   {}
func (Failed) pinEvent()         {}
func (RetryScheduled) pinEvent() {}
func (DeadLettered) pinEvent()   {}
func (Removed) pinEvent()        {}

// SchemaVersion is the version every pin event is written with. When a
// schema changes, the decoding in pin/pinlog gains a case for the old one.
// A field added later that is optional (omitempty, its zero meaning "not
// known") is no change of schema: an event recorded before it decodes with
// the zero value, and a reader built before it ignores it.
// FetchProgress.BlockBytes and ExpectedBytes, CarUploaded.ExpectedBytes and
// Requested.Upload are such fields.
const SchemaVersion = 1

// Recorded is one of a pin's events as the log recorded it: its payload, its
// id, its revision in the pin's stream and when it happened. The write path
// (pin/pinlog) makes it from the log's envelope; the domain folds it.
type Recorded struct {
	ID       uuid.UUID
	Revision uint64
	At       time.Time
	Payload  Payload
}
