package pinlog

// The write path of root streams ("root-<canonical CIDv1>", package pin's
// root.go): the same loop as a pin's (commitLoop), the same id rule, on
// the root's stream. A fetcher holds a root (HoldRoot) before it promotes
// a CAR of it or completes a pin from the carpark; the garbage collector
// (pin/deciders' GC) decides the deletion and records it done
// (CommitRoot).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
)

// Position is a log position, as the views' checkpoint counts it (named
// here for the deciders, which import the write path and not the log).
type Position = eventlog.Position

// rootCodec maps the root streams' payloads to the envelope; immutable.
var rootCodec = eventlog.NewCodec(pin.RootSchemaVersion, pin.RootPayloads()...)

// CanonicalRoot returns the form of a root CID that names its stream and
// its views' row: CIDv1 with the same codec and multihash, base32, as the
// views' CanonicalCID and the fetcher's CarForRoot question write it.
func CanonicalRoot(root cid.Cid) string { return cid.NewCidV1(root.Type(), root.Hash()).String() }

// ProposeRoot returns the envelope of a root's payload p with id and meta.
func ProposeRoot(p pin.RootPayload, id uuid.UUID, meta eventlog.Metadata) (eventlog.Proposed, error) {
	return rootCodec.Propose(p, id, meta)
}

// DecodeRoot returns a root's event as the domain folds it. An event type
// that is not a root's wraps eventlog.ErrUnknownType.
func DecodeRoot(e eventlog.Event) (pin.RootRecorded, error) {
	p, err := rootCodec.Decode(e)
	if err != nil {
		return pin.RootRecorded{}, err
	}
	return pin.RootRecorded{ID: e.ID, Revision: e.Revision, Position: uint64(e.Position), At: e.Meta.Time, Payload: p}, nil
}

// ApplyRoot returns s after one more recorded event.
func ApplyRoot(s pin.RootState, e eventlog.Event) (pin.RootState, error) {
	r, err := DecodeRoot(e)
	if err != nil {
		return s, err
	}
	return s.Apply(r), nil
}

// ReadRoot reads a root's stream (root in canonical form) and folds it; it
// returns the events too, for audits. A root never held is the zero
// RootState and no error.
func ReadRoot(ctx context.Context, log Reader, root string) (pin.RootState, []eventlog.Event, error) {
	stream := pin.RootStream(root)
	var all []eventlog.Event
	for from := uint64(0); ; {
		evs, err := log.ReadStream(ctx, stream, from, eventlog.Forwards, readPage)
		if err != nil {
			return pin.RootState{}, nil, fmt.Errorf("read %s: %w", stream, err)
		}
		all = append(all, evs...)
		if len(evs) < readPage {
			break
		}
		from = evs[len(evs)-1].Revision + 1
	}
	var s pin.RootState
	for _, e := range all {
		var err error
		if s, err = ApplyRoot(s, e); err != nil {
			return s, all, fmt.Errorf("fold %s: %w", stream, err)
		}
	}
	return s, all, nil
}

// RootDecision is what a decider chose to append to a root's stream.
type RootDecision struct {
	// Payload is the event to append; nil appends nothing.
	Payload pin.RootPayload
	// Key tells apart decisions of one actor on one state (the id rule).
	Key string
	// At is the event's time. Default: now by the Committer's clock.
	At time.Time
	// Correlation is the event's correlation id (a hold's request).
	Correlation uuid.UUID
}

// RootCommit is one decision to commit on a root's stream.
type RootCommit struct {
	// Root is the root, in canonical form (CanonicalRoot).
	Root string
	// Actor is who decides, recorded as the event's actor.
	Actor string
	// Decide takes the decision on the root's state, read from the log
	// (again after each lost race). It may wait (the collector waits for
	// the views to reach the state's last event). An error is a refusal or
	// a failure, returned as it is, with nothing appended.
	Decide func(pin.RootState) (RootDecision, error)
}

// RootCommitted is what a root commit did.
type RootCommitted struct {
	// State is the root's state after the append, or the state the
	// refusal or the empty decision was made on.
	State pin.RootState
	// Appended is the payload appended, nil if nothing was.
	Appended pin.RootPayload
	// Position is the log position of the event appended.
	Position eventlog.Position
}

// rootEventID is the id rule of the package doc, on a root's state.
func rootEventID(s pin.RootState, actor string, p pin.RootPayload, key string) uuid.UUID {
	if !s.Exists {
		return uuid.New()
	}
	return eventlog.DerivedID(s.LastEventID, actor+"/"+p.EventType()+"/"+key)
}

// CommitRoot decides on a root and appends the decision at the revision it
// was decided on, deciding again on a fresh read after each lost race: the
// outcomes of Commit, on the root's stream.
func (c *Committer) CommitRoot(ctx context.Context, cm RootCommit) (RootCommitted, error) {
	if cm.Root == "" {
		return RootCommitted{}, fmt.Errorf("commit on a root: %w: no root", pin.ErrInvalid)
	}
	var appended pin.RootPayload
	s, res, err := commitLoop(ctx, c.log, loop[pin.RootState]{
		stream: pin.RootStream(cm.Root),
		read: func(ctx context.Context) (pin.RootState, error) {
			s, _, err := ReadRoot(ctx, c.log, cm.Root)
			return s, err
		},
		decide: func(s pin.RootState) (*eventlog.Proposed, error) {
			appended = nil
			d, err := cm.Decide(s)
			if err != nil || d.Payload == nil {
				return nil, err
			}
			at := d.At
			if at.IsZero() {
				at = c.now()
			}
			prop, err := ProposeRoot(d.Payload, rootEventID(s, cm.Actor, d.Payload, d.Key), eventlog.Metadata{
				Time: at, Actor: cm.Actor, CorrelationID: d.Correlation, CausationID: s.LastEventID,
			})
			if err != nil {
				return nil, err
			}
			appended = d.Payload
			return &prop, nil
		},
		expected: func(s pin.RootState) eventlog.Expected { return eventlog.ExpectedAfter(s.Revision, s.Exists) },
		apply:    ApplyRoot,
		what:     func() string { return appended.EventType() },
	})
	if res == nil {
		return RootCommitted{State: s}, err
	}
	return RootCommitted{State: s, Appended: appended, Position: res.Position}, err
}

// HoldActor is the actor recorded on holds.
const HoldActor = "fetcher"

// HoldRoot records that the pin requestID is about to use the root's CAR:
// a fetcher calls it before it promotes a CAR of the root into the carpark
// and before it completes a pin from a CAR there. Its outcomes:
//   - nil: the hold is recorded (or was already, in this generation: it is
//     idempotent per request); the CAR will not be deleted while the pin
//     is live, and for the grace period after;
//   - an error wrapping pin.ErrRootDeleting: a deletion of the root's
//     objects is decided and not yet done; the caller must neither store
//     nor use a CAR of the root, and may try again later (after
//     RootDeleted the hold starts a new generation);
//   - another error: reading or appending failed; after an append error
//     the hold may or may not be recorded, and holding again is safe.
//
// It is safe for concurrent use.
func HoldRoot(ctx context.Context, log Log, root cid.Cid, requestID uuid.UUID) error {
	if !root.Defined() {
		return fmt.Errorf("hold root: %w: undefined cid", pin.ErrInvalid)
	}
	_, err := New(log, nil).CommitRoot(ctx, RootCommit{Root: CanonicalRoot(root), Actor: HoldActor, Decide: func(s pin.RootState) (RootDecision, error) {
		h, err := s.Hold(requestID)
		if err != nil || h == nil {
			return RootDecision{}, err
		}
		return RootDecision{Payload: *h, Key: requestID.String(), Correlation: requestID}, nil
	}})
	if err != nil && !errors.Is(err, pin.ErrRootDeleting) {
		return fmt.Errorf("hold root %s for %s: %w", root, requestID, err)
	}
	return err
}
