package eventlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/google/uuid"
)

// Payload is the body of one domain event: it names the type the event is
// recorded under.
type Payload interface {
	EventType() string
}

// ErrUnknownType marks an event whose type a codec does not know.
var ErrUnknownType = errors.New("unknown event type")

// Codec maps one domain's payloads (the events of pin, notify or tenant) to
// the envelope and back: a payload becomes a Proposed event with its type,
// the domain's schema version and its JSON body; a recorded Event becomes
// its payload again. It is the one place where a domain's Go types meet
// the log's bytes, so the domains themselves stay free of the envelope.
//
// A Codec is immutable after NewCodec and safe for concurrent use.
type Codec[P Payload] struct {
	version int
	types   map[string]reflect.Type
}

// NewCodec returns the codec of the payload types given by one value of each
// (their zero values will do), written and read at schema version version.
// When a schema changes, Decode gains a case for the old version.
func NewCodec[P Payload](version int, kinds ...P) Codec[P] {
	types := make(map[string]reflect.Type, len(kinds))
	for _, k := range kinds {
		types[k.EventType()] = reflect.TypeOf(k)
	}
	return Codec[P]{version: version, types: types}
}

// Propose makes the event to append for p, with id and meta.
func (c Codec[P]) Propose(p P, id uuid.UUID, meta Metadata) (Proposed, error) {
	if _, ok := c.types[p.EventType()]; !ok {
		return Proposed{}, fmt.Errorf("encode %s: %w", p.EventType(), ErrUnknownType)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return Proposed{}, fmt.Errorf("encode %s: %w", p.EventType(), err)
	}
	return Proposed{ID: id, Type: p.EventType(), Version: c.version, Data: data, Meta: meta}, nil
}

// Decode returns the payload of a recorded event. An unknown type wraps
// ErrUnknownType; another schema version, or a body that does not parse,
// is an error naming the event.
func (c Codec[P]) Decode(e Event) (P, error) {
	var zero P
	t, ok := c.types[e.Type]
	if !ok {
		return zero, fmt.Errorf("decode %s/%d: %w: %q", e.Stream, e.Revision, ErrUnknownType, e.Type)
	}
	if e.Version != c.version {
		return zero, fmt.Errorf("decode %s at %s/%d: schema version %d, want %d", e.Type, e.Stream, e.Revision, e.Version, c.version)
	}
	v := reflect.New(t)
	if err := json.Unmarshal(e.Data, v.Interface()); err != nil {
		return zero, fmt.Errorf("decode %s at %s/%d: %w", e.Type, e.Stream, e.Revision, err)
	}
	return v.Elem().Interface().(P), nil
}

// AsRecorded returns the event as the log records an append of prop at
// res: what a writer folds after its own append, without reading it back.
func AsRecorded(stream string, prop Proposed, res AppendResult) Event {
	return Event{
		ID: prop.ID, Stream: stream, Revision: res.Revision, Position: res.Position,
		Type: prop.Type, Version: prop.Version, Data: prop.Data, Meta: prop.Meta,
	}
}
