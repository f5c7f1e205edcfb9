package pin

// A root's life, one stream per root CID ("root-<canonical CIDv1>"): how a
// CAR in the carpark is held by pins and deleted once none holds it.
//
//	RootHeld* ─▶ RootDeleting ─(lease ran out)─▶ RootDeleting (taken over) ─▶ RootDeleted ─▶ RootHeld* ...
//
// Why a stream of its own, beside the pins' streams: the one thing that
// must never happen (a CAR deleted while a pin uses it) is a race between
// writers of different pin streams (a tenant's new pin, its fetcher) and
// the garbage collector, and the log orders only appends to one stream.
// Putting both sides' decisions in the root's stream, each appended at the
// revision it was decided on, makes them exclude each other: a fetcher
// appends RootHeld before it promotes a CAR of the root or completes a pin
// from the carpark, and the collector appends RootDeleting at the revision
// it read, so one of the two appends loses the race and decides again on
// the other's event (the hold is refused with ErrRootDeleting; the
// deletion sees the hold and waits for the views to show its pin).
// RootDeleted closes a generation: the CAR is gone and a later hold starts
// a new one, with nothing stored.

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Root event types, as recorded in the log.
const (
	TypeRootHeld     = "RootHeld"
	TypeRootDeleting = "RootDeleting"
	TypeRootDeleted  = "RootDeleted"
)

// RootSchemaVersion is the version every root event is written with.
const RootSchemaVersion = 1

// RootStreamPrefix starts the name of every root's stream.
const RootStreamPrefix = "root-"

// RootStream returns the name of the stream of a root, given in canonical
// form (CIDv1, base32, as the views' CarForRoot takes it).
func RootStream(canonicalRoot string) string { return RootStreamPrefix + canonicalRoot }

// RootOf returns the canonical root of a root stream's name.
func RootOf(stream string) (string, bool) {
	r, ok := strings.CutPrefix(stream, RootStreamPrefix)
	return r, ok && r != ""
}

// ErrRootDeleting refuses a hold on a root whose deletion is decided and
// not yet recorded done: the caller must not use or store a CAR of the root
// until RootDeleted, and may hold it again then (a new generation).
var ErrRootDeleting = errors.New("the root's CAR is being deleted")

// ErrRootNotDeleting refuses the record of a deletion that was not decided
// (or was recorded done already).
var ErrRootNotDeleting = errors.New("no deletion of the root is in progress")

// ErrRootDeletionHeld refuses a deletion that another actor holds under a
// lease that has not run out.
var ErrRootDeletionHeld = errors.New("another actor is deleting the root")

// RootPayload is the body of one of a root's events.
type RootPayload interface {
	EventType() string
	rootEvent()
}

// RootHeld: a pin (RequestID) is about to use the root's CAR: its fetcher
// promotes a CAR of the root, or completes the pin from the carpark.
type RootHeld struct {
	RequestID uuid.UUID `json:"request_id"`
}

// RootDeleting: a garbage collector (Actor) decided at At to delete the
// root's objects, none of the root's pins being live for the grace period;
// it holds the deletion until LeaseUntil, after which any collector may
// take it over.
type RootDeleting struct {
	Actor      string    `json:"actor"`
	At         time.Time `json:"at"`
	LeaseUntil time.Time `json:"lease_until"`
}

// RootDeleted: the root's objects (CAR, index, mapping: Objects of them
// were found) are gone from the carpark.
type RootDeleted struct {
	At      time.Time `json:"at"`
	Objects int       `json:"objects"`
}

func (RootHeld) EventType() string     { return TypeRootHeld }
func (RootDeleting) EventType() string { return TypeRootDeleting }
func (RootDeleted) EventType() string  { return TypeRootDeleted }

func (RootHeld) rootEvent()     {}
func (RootDeleting) rootEvent() {}
func (RootDeleted) rootEvent()  {}

// RootPayloads returns one (zero) value of every payload of a root's
// stream.
func RootPayloads() []RootPayload { return []RootPayload{RootHeld{}, RootDeleting{}, RootDeleted{}} }

// RootRecorded is one of a root's events as the log recorded it.
type RootRecorded struct {
	ID       uuid.UUID
	Revision uint64
	// Position is the event's place in the whole log, which the collector
	// waits for the views to reach.
	Position uint64
	At       time.Time
	Payload  RootPayload
}

// RootState is what a root's events add up to.
type RootState struct {
	// Exists is false until the first event; Revision is then the
	// revision of the last event folded, LastEventID its id and
	// LastPosition its log position.
	Exists       bool
	Revision     uint64
	LastEventID  uuid.UUID
	LastPosition uint64

	// Generation counts the deletions recorded done.
	Generation int
	// Holders are the requests that held the root in this generation.
	Holders map[uuid.UUID]bool
	// Deleting is true from RootDeleting to RootDeleted; Deleter and
	// LeaseUntil say who holds the deletion, and until when.
	Deleting   bool
	Deleter    string
	LeaseUntil time.Time
	// LastDeleted is the last deletion recorded done.
	LastDeleted RootDeleted
}

// Apply returns the state after one more event.
func (s RootState) Apply(e RootRecorded) RootState {
	switch p := e.Payload.(type) {
	case RootHeld:
		h := make(map[uuid.UUID]bool, len(s.Holders)+1)
		for k := range s.Holders {
			h[k] = true
		}
		h[p.RequestID] = true
		s.Holders = h
	case RootDeleting:
		s.Deleting, s.Deleter, s.LeaseUntil = true, p.Actor, p.LeaseUntil
	case RootDeleted:
		s.Generation++
		s.Holders = nil
		s.Deleting, s.Deleter, s.LeaseUntil = false, "", time.Time{}
		s.LastDeleted = p
	}
	s.Exists, s.Revision, s.LastEventID, s.LastPosition = true, e.Revision, e.ID, e.Position
	return s
}

// Hold decides on a pin holding the root. It is nil (nothing to append)
// when the request holds it already in this generation, and refused with
// ErrRootDeleting while a deletion is in progress, whatever its lease: only
// a collector may finish it.
func (s RootState) Hold(requestID uuid.UUID) (*RootHeld, error) {
	switch {
	case requestID == uuid.Nil:
		return nil, fmt.Errorf("hold: %w: no request id", ErrInvalid)
	case s.Deleting:
		return nil, fmt.Errorf("hold for %s: %w (by %s, lease until %s)", requestID, ErrRootDeleting, s.Deleter, s.LeaseUntil.UTC().Format(time.RFC3339))
	case s.Holders[requestID]:
		return nil, nil
	}
	return &RootHeld{RequestID: requestID}, nil
}

// DecideDelete is a collector's decision to delete the root's objects (the
// caller has checked that no pin holds it), or to take over a deletion
// whose lease ran out before now. A deletion the actor holds already is
// nil (nothing to append: it goes on with it); one that another actor
// holds under a running lease is refused with ErrRootDeletionHeld.
func (s RootState) DecideDelete(actor string, now time.Time, lease time.Duration) (*RootDeleting, error) {
	switch {
	case actor == "" || lease <= 0:
		return nil, fmt.Errorf("decide delete: %w: a deletion needs an actor and a lease", ErrInvalid)
	case s.Deleting && s.Deleter == actor && now.Before(s.LeaseUntil):
		return nil, nil
	case s.Deleting && now.Before(s.LeaseUntil):
		return nil, fmt.Errorf("decide delete: %w (%s, lease until %s)", ErrRootDeletionHeld, s.Deleter, s.LeaseUntil.UTC().Format(time.RFC3339))
	}
	return &RootDeleting{Actor: actor, At: now, LeaseUntil: now.Add(lease)}, nil
}

// Deleted decides on the record that the actor's deletion is done. It is
// refused with ErrRootNotDeleting when no deletion is in progress (another
// actor recorded it), and with ErrRootDeletionHeld when another actor took
// the deletion over: its record is the one that counts.
func (s RootState) Deleted(actor string, now time.Time, objects int) (RootDeleted, error) {
	switch {
	case !s.Deleting:
		return RootDeleted{}, fmt.Errorf("deleted: %w", ErrRootNotDeleting)
	case s.Deleter != actor:
		return RootDeleted{}, fmt.Errorf("deleted by %s: %w (%s took it over)", actor, ErrRootDeletionHeld, s.Deleter)
	case objects < 0:
		return RootDeleted{}, fmt.Errorf("deleted: %w: %d objects", ErrInvalid, objects)
	}
	return RootDeleted{At: now, Objects: objects}, nil
}
