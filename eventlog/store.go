package eventlog

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Store is an event log. Implementations are safe for concurrent use by any
// number of goroutines.
type Store interface {
	// Append writes events to the end of stream, in order and atomically, if
	// the stream is in the expected state. It returns the revision and
	// position of the last event.
	//
	// Outcomes:
	//   - nil error: all events are durable.
	//   - the first event's id is already in the stream, with the others after
	//     it: the append was done before; nothing is written and the original
	//     result is returned, whatever expected says.
	//   - *WrongRevisionError: the stream is not in the expected state;
	//     nothing is written.
	//   - ErrDuplicateID: some event id is already in the stream, not as a
	//     retry of this append; nothing is written. (Ids are unique within a
	//     stream, not across streams.)
	//   - ErrInvalid: bad stream name or events; nothing is written.
	//   - ErrClosed, ctx errors, or I/O errors: nothing is known to be
	//     written; retrying with the same event ids is safe.
	Append(ctx context.Context, stream string, expected Expected, events ...Proposed) (AppendResult, error)

	// ReadStream returns up to limit events of stream starting at revision
	// from, going forwards or backwards. Backwards from StreamEnd starts at
	// the last event. A stream that does not exist reads as no events.
	ReadStream(ctx context.Context, stream string, from uint64, dir Direction, limit int) ([]Event, error)

	// ReadAll returns up to limit events of every stream whose positions
	// follow after, in log order.
	ReadAll(ctx context.Context, after Position, limit int) ([]Event, error)

	// Head returns the position of the last event in the log, or 0 when the
	// log is empty.
	Head(ctx context.Context) (Position, error)

	// Subscribe calls handle with every event after the given position that
	// filter matches, in log order: first those already in the log, then,
	// without a gap or a repeat, each new one as it is appended (by this
	// process or any other sharing the log). Events arrive in batches; handle
	// is never called concurrently, and a batch is never empty.
	//
	// It returns when ctx is done (with ctx's error), when handle returns an
	// error (with that error), when the store is closed (ErrClosed), or when
	// reading fails.
	Subscribe(ctx context.Context, after Position, filter Filter, handle func([]Event) error) error

	// Close releases the store. Calls after Close, and subscriptions still
	// running, fail with ErrClosed.
	Close() error
}

// AppendResult says where an append's last event landed.
type AppendResult struct {
	// Revision is the stream revision of the last event appended.
	Revision uint64
	// Position is the log position of the last event appended.
	Position Position
}

// Direction is the order of a stream read.
type Direction int

const (
	Forwards Direction = iota
	Backwards
)

// StreamEnd, as the start of a backwards read, means the last event.
const StreamEnd uint64 = math.MaxUint64

// Expected is the state an append expects a stream to be in.
type Expected struct {
	kind     expectedKind
	revision uint64
}

type expectedKind uint8

const (
	expectAny expectedKind = iota
	expectNoStream
	expectRevision
)

var (
	// Any appends whatever the stream's state.
	Any = Expected{kind: expectAny}
	// NoStream appends only if the stream has no events yet.
	NoStream = Expected{kind: expectNoStream}
)

// At appends only if the stream's last event has the given revision.
func At(revision uint64) Expected { return Expected{kind: expectRevision, revision: revision} }

// ExpectedAfter returns what to expect of a stream whose last event is known:
// NoStream when exists is false, At(last) otherwise.
func ExpectedAfter(last uint64, exists bool) Expected {
	if !exists {
		return NoStream
	}
	return At(last)
}

// Revision returns the revision expected, and whether a revision is expected
// at all (false for Any and NoStream).
func (e Expected) Revision() (uint64, bool) { return e.revision, e.kind == expectRevision }

// IsAny reports whether e is Any.
func (e Expected) IsAny() bool { return e.kind == expectAny }

// IsNoStream reports whether e is NoStream.
func (e Expected) IsNoStream() bool { return e.kind == expectNoStream }

// Allows reports whether a stream whose last event has revision current
// (exists false: no events) is in the expected state.
func (e Expected) Allows(current uint64, exists bool) bool {
	switch e.kind {
	case expectNoStream:
		return !exists
	case expectRevision:
		return exists && current == e.revision
	default:
		return true
	}
}

func (e Expected) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectRevision:
		return fmt.Sprintf("revision %d", e.revision)
	default:
		return "any"
	}
}

// Filter selects events for a subscription. The zero Filter selects every
// event. Each non-empty field narrows the selection: an event must match one
// of the stream prefixes and one of the types.
type Filter struct {
	StreamPrefixes []string
	Types          []string
}

// Matches reports whether the filter selects e.
func (f Filter) Matches(e Event) bool {
	if len(f.Types) > 0 && !slices.Contains(f.Types, e.Type) {
		return false
	}
	if len(f.StreamPrefixes) == 0 {
		return true
	}
	for _, p := range f.StreamPrefixes {
		if strings.HasPrefix(e.Stream, p) {
			return true
		}
	}
	return false
}

// IsZero reports whether the filter selects everything.
func (f Filter) IsZero() bool { return len(f.StreamPrefixes) == 0 && len(f.Types) == 0 }
