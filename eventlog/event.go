// Package eventlog is pickup's source of truth: an append-only log of events,
// one stream per pin request, read back in order by anyone who wants to know
// what happened.
//
// It defines the event envelope, the Store every backend implements, and the
// errors callers branch on. The backends live in subpackages: embedded (the
// default, one local file), postgres (PostgreSQL, Aurora on AWS) and esdb
// (EventStoreDB/KurrentDB). The conformance
// suite in eventlogtest is what makes them interchangeable: every backend
// passes the same cases.
package eventlog

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Position is an event's place in the whole log. Positions increase strictly
// with the order in which events were committed, but need not be dense (an
// EventStoreDB position is a byte offset). The zero Position is the start of
// the log, before the first event; it doubles as the checkpoint of a reader
// that has seen nothing yet.
type Position uint64

// Metadata is what is known about an event besides its body: when it was
// recorded, who recorded it, and why.
type Metadata struct {
	// Time is when the event was recorded. A writer may leave it zero, and the
	// store then stamps the time of the append.
	Time time.Time
	// Actor names the part of pickup that wrote the event ("gateway",
	// "fetcher/host-1", "decider"), or the tenant for user commands.
	Actor string
	// CorrelationID ties together every event of one piece of work: for a pin,
	// its request id. uuid.Nil when there is none.
	CorrelationID uuid.UUID
	// CausationID is the id of the event that caused this one, uuid.Nil for an
	// event caused by a command from outside.
	CausationID uuid.UUID
}

// Proposed is an event a writer asks the store to append.
type Proposed struct {
	// ID is chosen by the writer. Appending an event whose id is already in
	// the log writes nothing again, so a writer that retries after a lost
	// answer cannot record anything twice.
	ID uuid.UUID
	// Type names what happened, such as "PinRequested".
	Type string
	// Version is the schema version of Data, starting at 1.
	Version int
	// Data is the event's body, a JSON document.
	Data json.RawMessage
	Meta Metadata
}

// Event is an event as recorded in the log.
type Event struct {
	ID uuid.UUID
	// Stream is the name of the stream the event belongs to.
	Stream string
	// Revision is the event's index in its stream, counting from 0.
	Revision uint64
	// Position is the event's place in the whole log.
	Position Position
	Type     string
	Version  int
	Data     json.RawMessage
	Meta     Metadata
}

// eventJSON is the external shape of an event, as `pickup events` prints it
// and as audits read it.
type eventJSON struct {
	Position      Position        `json:"position"`
	Stream        string          `json:"stream"`
	Revision      uint64          `json:"revision"`
	ID            uuid.UUID       `json:"id"`
	Type          string          `json:"type"`
	Version       int             `json:"version"`
	Time          time.Time       `json:"time"`
	Actor         string          `json:"actor,omitempty"`
	CorrelationID *uuid.UUID      `json:"correlation_id,omitempty"`
	CausationID   *uuid.UUID      `json:"causation_id,omitempty"`
	Data          json.RawMessage `json:"data"`
}

// MarshalJSON writes the event as one flat JSON object with its data inline.
func (e Event) MarshalJSON() ([]byte, error) {
	out := eventJSON{
		Position: e.Position, Stream: e.Stream, Revision: e.Revision, ID: e.ID,
		Type: e.Type, Version: e.Version, Time: e.Meta.Time.UTC(), Actor: e.Meta.Actor, Data: e.Data,
	}
	if e.Meta.CorrelationID != uuid.Nil {
		out.CorrelationID = &e.Meta.CorrelationID
	}
	if e.Meta.CausationID != uuid.Nil {
		out.CausationID = &e.Meta.CausationID
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Event) UnmarshalJSON(b []byte) error {
	var in eventJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*e = Event{
		ID: in.ID, Stream: in.Stream, Revision: in.Revision, Position: in.Position,
		Type: in.Type, Version: in.Version, Data: in.Data,
		Meta: Metadata{Time: in.Time, Actor: in.Actor},
	}
	if in.CorrelationID != nil {
		e.Meta.CorrelationID = *in.CorrelationID
	}
	if in.CausationID != nil {
		e.Meta.CausationID = *in.CausationID
	}
	return nil
}

// MaxStreamName is the longest stream name a store accepts.
const MaxStreamName = 255

// CheckStream reports why a stream name is unusable, or nil. Names are
// non-empty, at most MaxStreamName bytes, printable, and never start with "$",
// which EventStoreDB reserves for its own streams.
func CheckStream(stream string) error {
	switch {
	case stream == "":
		return fmt.Errorf("%w: empty stream name", ErrInvalid)
	case len(stream) > MaxStreamName:
		return fmt.Errorf("%w: stream name longer than %d bytes", ErrInvalid, MaxStreamName)
	case strings.HasPrefix(stream, "$"):
		return fmt.Errorf("%w: stream name %q starts with the reserved $", ErrInvalid, stream)
	case strings.ContainsFunc(stream, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w: stream name %q holds a control character", ErrInvalid, stream)
	}
	return nil
}

// CheckProposed reports why events cannot be appended as they are, or nil.
// Every backend calls it before writing, so that bad input is refused the same
// way everywhere.
func CheckProposed(events []Proposed) error {
	if len(events) == 0 {
		return fmt.Errorf("%w: no events to append", ErrInvalid)
	}
	seen := make(map[uuid.UUID]bool, len(events))
	for i, e := range events {
		switch {
		case e.ID == uuid.Nil:
			return fmt.Errorf("%w: event %d has no id", ErrInvalid, i)
		case seen[e.ID]:
			return fmt.Errorf("%w: event id %s appears twice in one append", ErrInvalid, e.ID)
		case e.Type == "" || strings.HasPrefix(e.Type, "$"):
			return fmt.Errorf("%w: event %d has type %q: types are non-empty and never start with $", ErrInvalid, i, e.Type)
		case e.Version < 1:
			return fmt.Errorf("%w: event %d (%s) has schema version %d, want 1 or more", ErrInvalid, i, e.Type, e.Version)
		case !json.Valid(e.Data):
			return fmt.Errorf("%w: event %d (%s) data is not valid JSON", ErrInvalid, i, e.Type)
		}
		seen[e.ID] = true
	}
	return nil
}

// DerivedID returns the id of an event that follows from cause, named by
// what was decided. Deciders use it so that deciding twice on the same cause,
// by a replay or by two deciders at once, proposes the same event id and the
// log keeps only one.
func DerivedID(cause uuid.UUID, decision string) uuid.UUID {
	return uuid.NewSHA1(cause, []byte(decision))
}
