package viewrow

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// The rows of the views, as every view store keeps them. What a row's
// columns hold is decided here, once, so that the embedded and PostgreSQL
// stores cannot drift apart: a store only loads rows, and saves what Project
// changed, in one transaction with the checkpoint.
//
// Times are whole microseconds since the Unix epoch (PostgreSQL keeps no
// finer), and text columns never hold NUL (PostgreSQL refuses it; see
// sqlText).

// PinRow is one pin request as the views keep it: the fold of its stream,
// plus what the views add.
type PinRow struct {
	State pin.State
	// Seq numbers the tenant's requests in log order, from 1. Created grows
	// with it, so listings page and count by Seq.
	Seq int64
	// Created is the request's creation time made unique and strictly
	// increasing per tenant: max(requested Created, tenant's last + 1µs), in
	// log order.
	Created time.Time
	// Hidden is true once the pin is removed, or replaced by a later
	// request (even before its PinRemoved lands).
	Hidden bool
	// cidKey caches the canonical form of the request's CID, which never
	// changes: parsing a CID is a good part of a row's cost.
	cidKey string
}

// PinColumns are a pin row's columns. Tenant, Seq, Created, CID, CIDKey,
// Name and NameFold never change once the row exists; the others change
// with the pin.
type PinColumns struct {
	RequestID uuid.UUID
	Tenant    string
	Seq       int64
	Created   int64
	// CID is the CID as requested; CIDKey its canonical form, the index key.
	CID      string
	CIDKey   string
	Name     string
	NameFold string
	// CIDHash and NameHash are short keys of CIDKey and NameFold, for
	// stores whose indexes are cheaper on integers than on long text (see
	// KeyHash); queries compare the text too.
	CIDHash  int64
	NameHash int64

	// ListStatus is the API status of a visible pin, "" (NULL) for a hidden
	// one: listings and their counts read only rows that have one.
	ListStatus string
	Hidden     bool
	Phase      string
	// DueAt is when a visible queued pin became claimable (claims, queue
	// timeout); LeaseUntil the lease of a visible claimed pin (watchdog);
	// FailedAt the failure of a visible pin awaiting the retry decider.
	// Each is 0 (NULL) when it does not apply.
	DueAt      int64
	LeaseUntil int64
	FailedAt   int64
	// CarBytes is the validated CAR's size, kept apart from the state for
	// the bytes-stored figure.
	CarBytes int64
	// State is the pin's folded state, in the binary form of encodeState.
	State []byte
}

// MetaRow indexes one meta key of a pin for listings' meta filters.
type MetaRow struct {
	Tenant string
	Key    string
	Value  string
	Seq    int64
}

// TenantRow is what the views know of a tenant: where its numbering of
// requests stands.
type TenantRow struct {
	Tenant      string
	LastSeq     int64
	LastCreated int64
}

// TokenRow is a bearer token as the views keep it: its hash, never the
// token.
type TokenRow struct {
	TokenID uuid.UUID
	Tenant  string
	Hash    [32]byte
	Label   string
	Created int64
	Revoked bool
}

// micros is a time in the views' unit.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the time a micros column holds, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// KeyHash is a 64-bit hash (FNV-1a) of an index key. The embedded store
// indexes CIDs and names by it: an index of 8-byte keys instead of
// 60-character CIDs is a third the size, so a rebuild, whose inserts land
// all over the index, writes a third of the pages. Two keys may share a
// hash; every query compares the key itself too.
func KeyHash(s string) int64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return int64(h.Sum64())
}

// sqlText is how text is stored and compared in the views: NUL becomes
// U+FFFD, since PostgreSQL text cannot hold NUL. Query values go through it
// too, so matching is unchanged for every other character.
func sqlText(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// fold is the case-insensitive form of a name, for iexact and ipartial.
func fold(s string) string { return strings.ToLower(sqlText(s)) }

// key returns the row's CID key.
func (r PinRow) key() string {
	if r.cidKey == "" {
		return sqlText(cidKey(r.State.Request.CID))
	}
	return r.cidKey
}

// visible reports whether the pin shows in listings and work views.
func (r PinRow) visible() bool { return !r.Hidden && !r.State.Removed }

// Columns returns the row's columns, the state encoded.
func (r PinRow) Columns() PinColumns {
	c := r.columns()
	c.State = encodeState(r.State)
	return c
}

// columns is Columns without the state, which is all that counting needs.
func (r PinRow) columns() PinColumns {
	s := r.State
	c := PinColumns{
		RequestID: s.Request.RequestID,
		Tenant:    sqlText(s.Request.Tenant),
		Seq:       r.Seq,
		Created:   micros(r.Created),
		CID:       sqlText(s.Request.CID),
		CIDKey:    r.key(),
		Name:      sqlText(s.Request.Name),
		NameFold:  fold(s.Request.Name),
		Hidden:    !r.visible(),
		Phase:     string(s.Phase),
	}
	c.CIDHash, c.NameHash = KeyHash(c.CIDKey), KeyHash(c.NameFold)
	if !r.visible() {
		return c
	}
	c.ListStatus = string(s.Status())
	switch {
	case s.Phase == pin.PhaseQueued:
		c.DueAt = micros(s.DueAt())
	case s.Claimed():
		c.LeaseUntil = micros(s.LeaseUntil)
	case s.Phase == pin.PhaseFailed && s.LastFailure != nil:
		c.FailedAt = micros(s.LastFailure.At)
	case s.Phase == pin.PhasePinned:
		c.CarBytes = s.Car.Bytes
	}
	return c
}

// metaRows are the meta index rows of a new pin.
func (r PinRow) metaRows() []MetaRow {
	out := make([]MetaRow, 0, len(r.State.Request.Meta))
	for k, v := range r.State.Request.Meta {
		out = append(out, MetaRow{Tenant: sqlText(r.State.Request.Tenant), Key: sqlText(k), Value: sqlText(v), Seq: r.Seq})
	}
	return out
}

// DecodePinRow rebuilds a row from what a store read: the state column,
// seq, created and hidden.
func DecodePinRow(state []byte, seq, created int64, hidden bool) (PinRow, error) {
	st, err := decodeState(state)
	if err != nil {
		return PinRow{}, fmt.Errorf("decode pin row: %w", err)
	}
	return PinRow{State: st, Seq: seq, Created: fromMicros(created), Hidden: hidden}, nil
}

// View returns what the APIs show of the pin: its state, with the views'
// own Created and visibility.
func (r PinRow) View() views.Pin {
	v := views.Of(r.State)
	v.Created = r.Created
	if !r.visible() {
		v.Removed, v.ClusterStatus = true, "unpinned"
	}
	return v
}
