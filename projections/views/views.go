// Package views is the read model of pins: what the APIs show of a pin
// request (Pin), the listing query and its page (ListQuery, ListResult,
// with the Pinning Service API's filters and limits), and Reader, which the
// view stores (projections/embedded, projections/postgres) implement and
// the gateway reads through. It is WASM-clean, as the gateway's core is.
//
// The views lag the log by the projector's batch (milliseconds); a reader
// that wants its own writes waits until Checkpoint reaches the position of
// its append.
package views

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
)

// ErrNotFound is returned for a pin that does not exist for the tenant
// asking (or was removed), and for an unknown or revoked token.
var ErrNotFound = errors.New("not found")

// ErrInvalid is returned for a query that cannot be run: a limit out of
// range, too many CIDs, an unknown match or status.
var ErrInvalid = errors.New("invalid query")

// Pin is what the APIs show of one pin request.
type Pin struct {
	RequestID uuid.UUID
	Tenant    string
	// Created is unique and strictly increasing among a tenant's requests,
	// so clients can page with before/after.
	Created time.Time
	Status  pin.Status
	// ClusterStatus is the status in ipfs-cluster's words.
	ClusterStatus string
	Removed       bool

	CID     string
	Name    string
	Origins []string
	Meta    map[string]string

	// Attempt is the current or last attempt (0 before the first claim);
	// Failures counts failed attempts.
	Attempt  int
	Failures int
	// Bytes and Blocks fetched so far in the current attempt, and from
	// which source.
	Bytes  int64
	Blocks int64
	Source string
	// Completion is how far the attempt has come towards the DAG's size
	// as its root declares it: its zero value when the root declares none.
	Completion pin.Completion
	// The CAR, once pinned.
	CarCID   string
	CarBytes int64
	CarKey   string
	// The last failure, if any.
	FailureReason  pin.Reason
	FailureMessage string
	// FailedAt is when the last failure happened.
	FailedAt time.Time
	// NotBefore is when a scheduled retry may start.
	NotBefore time.Time
	UpdatedAt time.Time

	// What the status page and the tests read besides.

	// Phase is where the pin is in its life (pin.State.Phase).
	Phase pin.Phase
	// Revision is the revision of the pin's last event the view reflects.
	Revision uint64
	// Fetcher and LeaseUntil name the current claim, if any.
	Fetcher    string
	LeaseUntil time.Time
	// DueAt is when a queued pin became claimable.
	DueAt time.Time
	// Replaces and ReplacedBy link a request to the one it replaced, or
	// that replaced it.
	Replaces   uuid.UUID
	ReplacedBy uuid.UUID
}

// Match is how a listing's name filter compares names: the API's
// strategies (package api).
type Match = api.Match

// The strategies, under the read model's names.
const (
	MatchExact    = api.MatchExact
	MatchIExact   = api.MatchIExact
	MatchPartial  = api.MatchPartial
	MatchIPartial = api.MatchIPartial
)

// ParseMatch returns the match strategy named s; "" is exact.
func ParseMatch(s string) (Match, error) {
	switch m := Match(s); m {
	case "":
		return MatchExact, nil
	case MatchExact, MatchIExact, MatchPartial, MatchIPartial:
		return m, nil
	}
	return "", fmt.Errorf("unknown match %q (want exact, iexact, partial or ipartial)", s)
}

// MaxListLimit and MaxListCIDs bound a listing, as the Pinning Service API
// does.
const (
	MaxListLimit = 1000
	MaxListCIDs  = 10
)

// ListQuery selects a tenant's pins, newest first. Every non-zero field
// narrows the selection.
type ListQuery struct {
	Tenant string
	// CIDs are canonical CID strings (CIDv1, base32: what CanonicalCID
	// returns); a pin matches when its CID's canonical form is one of them.
	CIDs []string
	// Name filters by name, compared as Match says.
	Name  string
	Match Match
	// Statuses: a pin matches when its status is one of them; empty means
	// any status.
	Statuses []pin.Status
	// Before and After bound Created, both exclusive.
	Before, After time.Time
	// Meta: a pin matches when its meta has every key with the same value.
	Meta map[string]string
	// Limit is the most pins returned, 1..MaxListLimit.
	Limit int
}

// ListResult is a page of a listing.
type ListResult struct {
	// Count is the number of pins matching the query, not the page size.
	Count int
	Pins  []Pin
}

// Reader is what the APIs read. View stores implement it; implementations
// are safe for concurrent use.
type Reader interface {
	// Pin returns the tenant's pin request, or ErrNotFound when it does not
	// exist, belongs to another tenant, or was removed.
	Pin(ctx context.Context, tenant string, requestID uuid.UUID) (Pin, error)
	// List returns a page of the tenant's pins matching q (removed pins
	// never match), newest first, with the count of all matches.
	List(ctx context.Context, q ListQuery) (ListResult, error)
	// NewestByCID returns the tenant's newest request for the CID (given in
	// canonical form), removed or not, or ErrNotFound.
	NewestByCID(ctx context.Context, tenant, canonicalCID string) (Pin, error)
	// TokenTenant returns the tenant of the bearer token whose SHA-256 is
	// hash, or ErrNotFound for an unknown or revoked token.
	TokenTenant(ctx context.Context, hash [32]byte) (string, error)
	// Checkpoint returns the log position of the last event the views
	// reflect; a reader that wants its own writes waits until it reaches
	// the position of the append.
	Checkpoint(ctx context.Context) (eventlog.Position, error)
}

// CanonicalCID returns the one string the views index a CID by: CIDv1 in
// base32, with the same codec and multihash. A CIDv0 becomes the dag-pb
// CIDv1 of the same hash, so that a pin requested as Qm... is found by a
// filter given as bafy... and the other way round.
func CanonicalCID(s string) (string, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return "", fmt.Errorf("canonical cid %q: %w", s, err)
	}
	if !c.Defined() {
		return "", fmt.Errorf("canonical cid %q: undefined cid", s)
	}
	return cid.NewCidV1(c.Type(), c.Hash()).String(), nil
}

// TokenInfo is what the views show of a token: never its hash.
type TokenInfo struct {
	ID      uuid.UUID
	Tenant  string
	Label   string
	Created time.Time
	Revoked bool
}

// Of returns what the APIs show of a pin in state s, as its stream folds:
// what the views hold, but for Created, which the views make unique per
// tenant (a request's own Created may share a microsecond with another's),
// and for a request hidden by a replacement whose PinRemoved has not
// landed yet.
func Of(s pin.State) Pin {
	v := Pin{
		RequestID:     s.Request.RequestID,
		Tenant:        s.Request.Tenant,
		Created:       s.Request.Created,
		Status:        s.Status(),
		ClusterStatus: s.ClusterStatus(),
		Removed:       s.Removed,
		CID:           s.Request.CID,
		Name:          s.Request.Name,
		Origins:       s.Request.Origins,
		Meta:          s.Request.Meta,
		Attempt:       s.Attempt,
		Failures:      s.Failures,
		Bytes:         s.Bytes,
		Blocks:        s.Blocks,
		Source:        s.Source,
		Completion:    s.Completion(),
		NotBefore:     s.NotBefore,
		UpdatedAt:     s.UpdatedAt,
		Phase:         s.Phase,
		Revision:      s.Revision,
		Fetcher:       s.Fetcher,
		LeaseUntil:    s.LeaseUntil,
		Replaces:      s.Request.Replaces,
		ReplacedBy:    s.ReplacedBy,
	}
	if s.Phase == pin.PhaseQueued {
		v.DueAt = s.DueAt()
	}
	if s.Phase == pin.PhasePinned {
		v.CarCID, v.CarBytes, v.CarKey = s.Car.CarCID, s.Car.Bytes, s.Car.Key
	}
	switch {
	case s.Phase == pin.PhaseDeadLettered && s.DeadLetter != nil:
		v.FailureReason, v.FailureMessage = s.DeadLetter.Reason, s.DeadLetter.Message
	case s.LastFailure != nil:
		v.FailureReason, v.FailureMessage = s.LastFailure.Reason, s.LastFailure.Message
		v.FailedAt = s.LastFailure.At
	}
	return v
}

// Root is what the views know of a root CID (in canonical form): how many
// of its pins are live (requested, not removed or replaced, not
// dead-lettered), whether the carpark holds a CAR of it (validated since
// its last deletion), when it was released (its live pins became 0, or a
// pin no longer live held it since), and whether a deletion is in
// progress. The garbage collector finds its candidates here.
type Root struct {
	Root          string
	Live          int64
	HasCar        bool
	ReleasedAt    time.Time
	Deleting      bool
	DeletingUntil time.Time
}

// ReleasedBefore reports whether the root's CAR is held by no live pin and
// was released before t.
func (r Root) ReleasedBefore(t time.Time) bool {
	return r.HasCar && r.Live == 0 && !r.ReleasedAt.IsZero() && r.ReleasedAt.Before(t)
}
