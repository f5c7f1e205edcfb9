// Package pinlog is where a pin meets the event log: the one write path of
// pin streams, and the mapping between package pin's pure events and the
// log's envelope.
//
// Every writer of a pin's stream (the gateway for tenants' commands, the
// fetchers for their attempts, the retry decider and the lease watchdog)
// commits through Commit, which runs one loop:
//
//	read the pin's stream and fold it (or start from the state the caller last saw)
//	decide, with one of package pin's pure decisions
//	append the decision at the revision it was decided on
//	on a wrong revision (another writer came first): read again and decide again,
//	at most MaxRaces times
//
// so a decision taken on a stale state loses instead of overwriting, and the
// decision is taken again on the state as it now is, where it usually turns
// into a refusal (the claim is gone, the failure was decided already).
//
// # Event ids
//
// One rule names every event a decision appends, so that a decision retried
// after a lost answer, taken twice by two processes, or replayed, is
// recorded once (the log's idempotency rule, eventlog.PriorAppend, keeps a
// retried append with the same ids once):
//
//	an event on an existing stream: eventlog.DerivedID(last event's id, actor/type/key)
//	the first event of a stream:    a random id
//
// The name holds the actor, so two fetchers claiming on one state propose
// different events, and the store's revision check, not its idempotency,
// picks the winner; two deciders taking the same decision propose the same
// event, which the log keeps once. The key tells apart decisions of one
// actor on one state that differ in content (a removal names its
// replacement). The first event of a stream has no state to derive from: a
// request retried with the same Idempotency-Key must meet the first one's
// stream (and get its answer), not be taken for a retry of its own append.
package pinlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
)

// codec maps pin's payloads to the envelope and back; immutable.
var codec = eventlog.NewCodec(pin.SchemaVersion, pin.Payloads()...)

// Propose returns the envelope of payload p with id and meta.
func Propose(p pin.Payload, id uuid.UUID, meta eventlog.Metadata) (eventlog.Proposed, error) {
	return codec.Propose(p, id, meta)
}

// Decode returns a pin's event as the domain folds it. An event type that is
// not a pin's wraps eventlog.ErrUnknownType.
func Decode(e eventlog.Event) (pin.Recorded, error) {
	p, err := codec.Decode(e)
	if err != nil {
		return pin.Recorded{}, err
	}
	return pin.Recorded{ID: e.ID, Revision: e.Revision, At: e.Meta.Time, Payload: p}, nil
}

// Apply returns s after one more recorded event.
func Apply(s pin.State, e eventlog.Event) (pin.State, error) {
	r, err := Decode(e)
	if err != nil {
		return s, err
	}
	return s.Apply(r), nil
}

// Fold returns the state of a pin from its stream's events, in order.
func Fold(events []eventlog.Event) (pin.State, error) {
	var s pin.State
	for _, e := range events {
		var err error
		if s, err = Apply(s, e); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Expected is what an append decided on s must expect of the stream: no
// stream before the request, the revision of s's last event after.
func Expected(s pin.State) eventlog.Expected { return eventlog.ExpectedAfter(s.Revision, s.Exists) }

// EventID is the id of the event that actor's decision p (told apart from
// others by key) on state s appends: the rule of the package doc.
func EventID(s pin.State, actor string, p pin.Payload, key string) uuid.UUID {
	if !s.Exists {
		return uuid.New()
	}
	return eventlog.DerivedID(s.LastEventID, actor+"/"+p.EventType()+"/"+key)
}

// Reader reads streams of the event log.
type Reader interface {
	ReadStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, limit int) ([]eventlog.Event, error)
}

// Log is the event log as the write path uses it.
type Log interface {
	Reader
	Append(ctx context.Context, stream string, expected eventlog.Expected, events ...eventlog.Proposed) (eventlog.AppendResult, error)
}

// readPage is how many events one read of a stream asks for.
const readPage = 1000

// Read reads a pin's stream and folds it; it returns the events too, for
// those who tell a pin's story (audits, timelines). A pin never requested
// is the zero State (Exists false) and no error.
func Read(ctx context.Context, log Reader, requestID uuid.UUID) (pin.State, []eventlog.Event, error) {
	stream := pin.Stream(requestID)
	var all []eventlog.Event
	for from := uint64(0); ; {
		evs, err := log.ReadStream(ctx, stream, from, eventlog.Forwards, readPage)
		if err != nil {
			return pin.State{}, nil, fmt.Errorf("read %s: %w", stream, err)
		}
		all = append(all, evs...)
		if len(evs) < readPage {
			break
		}
		from = evs[len(evs)-1].Revision + 1
	}
	s, err := Fold(all)
	if err != nil {
		return s, all, fmt.Errorf("fold %s: %w", stream, err)
	}
	return s, all, nil
}

// MaxRaces is how many times Commit decides again after losing the race for
// a pin's revision before it gives up with ErrTooManyRaces. A pin being
// fetched moves every 2 s (progress); tenants' commands, the decider and the
// watchdog race with that and with each other, rarely more than once.
const MaxRaces = 32

// ErrTooManyRaces: the stream changed under every one of MaxRaces
// decisions. Nothing was appended; the caller may try again later.
var ErrTooManyRaces = errors.New("the pin kept changing while it was decided on")

// Decision is what a decider chose to append.
type Decision struct {
	// Payload is the event to append; nil appends nothing (there is nothing
	// to decide on the pin as it is).
	Payload pin.Payload
	// Key tells apart decisions of one actor on one state whose payloads
	// differ (see the package doc's id rule); usually empty.
	Key string
	// Cause is the event the decision answers, recorded as its causation
	// id. Default: the state's last event.
	Cause uuid.UUID
	// At is when the decision was taken, the event's time. Default: now by
	// the Committer's clock.
	At time.Time
}

// Commit is one decision to commit.
type Commit struct {
	// RequestID names the pin.
	RequestID uuid.UUID
	// Actor is who decides, recorded as the events' actor ("tenant:<name>",
	// a fetcher's name, "decider", "watchdog").
	Actor string
	// From, when not nil, is the state to decide on first, as the caller
	// last saw it: a writer that follows its own appends (a fetcher's
	// attempt, a new request's empty stream) saves a read. A stale From
	// costs one lost race. Nil reads the stream first.
	From *pin.State
	// Decide takes the decision on a state. An error is a refusal (one of
	// package pin's) or a failure, returned as it is, with nothing
	// appended.
	Decide func(pin.State) (Decision, error)
}

// Committed is what a commit did.
type Committed struct {
	// State is the pin's state after the append, or the state the refusal
	// or the empty decision was made on.
	State pin.State
	// Appended is the payload appended, nil if nothing was.
	Appended pin.Payload
	// Position is the log position of the event appended.
	Position eventlog.Position
}

// Committer commits decisions to pin streams. It is safe for concurrent use.
type Committer struct {
	log Log
	now func() time.Time
}

// New returns a committer writing to log, stamping events with now (nil:
// time.Now).
func New(log Log, now func() time.Time) *Committer {
	if now == nil {
		now = time.Now
	}
	return &Committer{log: log, now: now}
}

// Read reads and folds a pin's stream (see the function Read).
func (c *Committer) Read(ctx context.Context, requestID uuid.UUID) (pin.State, []eventlog.Event, error) {
	return Read(ctx, c.log, requestID)
}

// Commit decides on the pin and appends the decision at the revision it was
// decided on, deciding again on a fresh read after each lost race. Its
// outcomes:
//   - the decision was appended: Committed.Appended is it, State the state
//     after it, nil error;
//   - the decision was empty: Appended nil, State as decided on, nil error;
//   - the decision refused, or failed: its error, State as decided on;
//   - reading or appending failed: the error, wrapped; after an append
//     error the event may or may not be recorded (eventlog.Store's
//     outcomes), and committing the same decision again on the same state
//     proposes the same id, so the log keeps it once;
//   - every decision lost its race: ErrTooManyRaces.
func (c *Committer) Commit(ctx context.Context, cm Commit) (Committed, error) {
	var appended pin.Payload
	s, res, err := commitLoop(ctx, c.log, loop[pin.State]{
		stream: pin.Stream(cm.RequestID),
		from:   cm.From,
		read: func(ctx context.Context) (pin.State, error) {
			s, _, err := c.Read(ctx, cm.RequestID)
			return s, err
		},
		decide: func(s pin.State) (*eventlog.Proposed, error) {
			appended = nil
			d, err := cm.Decide(s)
			if err != nil || d.Payload == nil {
				return nil, err
			}
			at, cause := d.At, d.Cause
			if at.IsZero() {
				at = c.now()
			}
			if cause == uuid.Nil {
				cause = s.LastEventID
			}
			prop, err := Propose(d.Payload, EventID(s, cm.Actor, d.Payload, d.Key), eventlog.Metadata{
				Time: at, Actor: cm.Actor, CorrelationID: cm.RequestID, CausationID: cause,
			})
			if err != nil {
				return nil, err
			}
			appended = d.Payload
			return &prop, nil
		},
		expected: Expected,
		apply:    Apply,
		what:     func() string { return appended.EventType() },
	})
	if res == nil {
		return Committed{State: s}, err
	}
	return Committed{State: s, Appended: appended, Position: res.Position}, err
}

// loop is one stream's part in the write path's loop (commitLoop): how its
// events fold to a state S, and the decision to append.
type loop[S any] struct {
	stream string
	// from, when not nil, is the state to decide on first.
	from *S
	// read reads the stream and folds it.
	read func(context.Context) (S, error)
	// decide returns the event to append on a state, nil for nothing, or
	// the refusal.
	decide func(S) (*eventlog.Proposed, error)
	// expected is what an append decided on a state expects of the stream.
	expected func(S) eventlog.Expected
	// apply folds the appended event into the state.
	apply func(S, eventlog.Event) (S, error)
	// what names the decision appended, for errors.
	what func() string
}

// commitLoop is the write path's one loop, for every kind of stream (a
// pin's, a root's): read and fold (or start from l.from), decide, append at
// the revision decided on, and on a wrong revision read again and decide
// again, at most MaxRaces times. It returns the state after the append and
// the append's result, or the state decided on, a nil result and the
// refusal, failure or nil for an empty decision; ErrTooManyRaces when
// every decision lost its race.
func commitLoop[S any](ctx context.Context, log Log, l loop[S]) (S, *eventlog.AppendResult, error) {
	var s S
	known := l.from != nil
	if known {
		s = *l.from
	}
	for range MaxRaces {
		if !known {
			var err error
			if s, err = l.read(ctx); err != nil {
				return s, nil, err
			}
		}
		known = false
		prop, err := l.decide(s)
		if err != nil || prop == nil {
			return s, nil, err
		}
		res, err := log.Append(ctx, l.stream, l.expected(s), *prop)
		if eventlog.IsWrongRevision(err) {
			continue
		}
		if err != nil {
			return s, nil, fmt.Errorf("append %s to %s: %w", l.what(), l.stream, err)
		}
		after, err := l.apply(s, eventlog.AsRecorded(l.stream, *prop, res))
		return after, &res, err
	}
	return s, nil, fmt.Errorf("decide on %s: %w", l.stream, ErrTooManyRaces)
}
