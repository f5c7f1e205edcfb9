package viewrow

import (
	"cmp"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// ListPlan is a views.ListQuery checked and put in the terms of the rows, the same
// for every store: which index drives the query, and what remains to filter.
type ListPlan struct {
	Tenant string
	// Statuses are the statuses asked for, sorted, never empty.
	Statuses []string
	// AllStatuses is true when the query named none (or all).
	AllStatuses bool
	// CIDKeys are the canonical CIDs asked for, sorted and distinct.
	CIDKeys []string
	// Name is the name filter as stored: in NameFold for iexact and
	// ipartial. NameContains is true for partial and ipartial.
	Name         string
	NameFold     bool
	NameContains bool
	// NameKey is the fold of the name, the key of the folded-name index
	// that exact and iexact matches walk.
	NameKey string
	// Meta are the meta filters, sorted by key.
	Meta []MetaRow
	// Before and After bound Created in micros; zero when not given.
	Before, After int64
	Limit         int
	Driver        Driver
}

// Driver is the index a listing walks: the most selective filter given.
type Driver int

const (
	// DriveStatus walks (tenant, status, seq), one status at a time.
	DriveStatus Driver = iota
	// DriveCID walks (tenant, cid_key, seq).
	DriveCID
	// DriveName walks (tenant, name or name_fold, seq): exact and iexact.
	DriveName
	// DriveMeta walks the meta index from the first meta filter.
	DriveMeta
)

// PlanList checks q and plans it.
func PlanList(q views.ListQuery) (ListPlan, error) {
	p := ListPlan{Tenant: sqlText(q.Tenant), Limit: q.Limit}
	switch {
	case q.Tenant == "":
		return p, fmt.Errorf("%w: no tenant", views.ErrInvalid)
	case q.Limit < 1 || q.Limit > views.MaxListLimit:
		return p, fmt.Errorf("%w: limit %d, want 1 to %d", views.ErrInvalid, q.Limit, views.MaxListLimit)
	case len(q.CIDs) > views.MaxListCIDs:
		return p, fmt.Errorf("%w: %d cids, at most %d", views.ErrInvalid, len(q.CIDs), views.MaxListCIDs)
	}
	statuses := map[string]bool{}
	for _, s := range q.Statuses {
		if _, err := pin.ParseStatus(string(s)); err != nil {
			return p, fmt.Errorf("%w: %v", views.ErrInvalid, err)
		}
		statuses[string(s)] = true
	}
	if len(statuses) == 0 || len(statuses) == len(pin.Statuses()) {
		p.AllStatuses = true
		for _, s := range pin.Statuses() {
			statuses[string(s)] = true
		}
	}
	p.Statuses = slices.Sorted(maps.Keys(statuses))
	keys := map[string]bool{}
	for _, c := range q.CIDs {
		keys[sqlText(c)] = true
	}
	p.CIDKeys = slices.Sorted(maps.Keys(keys))
	if q.Name != "" {
		m := q.Match
		if m == "" {
			m = views.MatchExact
		}
		if _, err := views.ParseMatch(string(m)); err != nil {
			return p, fmt.Errorf("%w: %v", views.ErrInvalid, err)
		}
		p.NameFold = m == views.MatchIExact || m == views.MatchIPartial
		p.NameContains = m == views.MatchPartial || m == views.MatchIPartial
		p.Name = sqlText(q.Name)
		p.NameKey = fold(q.Name)
		if p.NameFold {
			p.Name = p.NameKey
		}
	}
	for _, k := range slices.Sorted(maps.Keys(q.Meta)) {
		p.Meta = append(p.Meta, MetaRow{Tenant: p.Tenant, Key: sqlText(k), Value: sqlText(q.Meta[k])})
	}
	if !q.Before.IsZero() {
		p.Before = micros(q.Before)
		if q.Before.Sub(fromMicros(p.Before)) > 0 {
			// created < Before, in whole micros, is created < ceil(Before).
			p.Before++
		}
	}
	if !q.After.IsZero() {
		p.After = micros(q.After)
	}
	switch {
	case len(p.CIDKeys) > 0:
		p.Driver = DriveCID
	case p.Name != "" && !p.NameContains:
		p.Driver = DriveName
	case len(p.Meta) > 0:
		p.Driver = DriveMeta
	default:
		p.Driver = DriveStatus
	}
	return p, nil
}

// Counted reports whether the plan's matches can be counted from the block
// counters: no filter but status and the created bounds.
func (p ListPlan) Counted() bool {
	return p.Driver == DriveStatus && p.Name == ""
}

// CountedByMeta reports whether the plan's matches can be counted from the
// meta block counters: one meta key, and no filter but status and the
// created bounds.
func (p ListPlan) CountedByMeta() bool {
	return p.Driver == DriveMeta && len(p.Meta) == 1 && p.Name == ""
}

// NoSeq is an open upper bound of Seq.
const NoSeq = math.MaxInt64

// CountBetween counts the visible pins with lo < Seq < hi from the block
// counters: sumBlocks(b) adds the counters of the blocks below b, and
// countRows(from, to) counts the rows with from <= Seq < to; both for the
// plan's tenant and statuses. hi may be NoSeq.
func CountBetween(lo, hi int64, sumBlocks func(below int64) (int64, error), countRows func(from, to int64) (int64, error)) (int64, error) {
	// below counts the pins with Seq < x.
	below := func(x int64) (int64, error) {
		if x == NoSeq {
			return sumBlocks(NoSeq)
		}
		if x <= 1 {
			return 0, nil
		}
		b := x / BlockSize
		n, err := sumBlocks(b)
		if err != nil {
			return 0, err
		}
		m, err := countRows(b*BlockSize, x)
		return n + m, err
	}
	if hi <= lo+1 {
		return 0, nil
	}
	n, err := below(hi)
	if err != nil {
		return 0, err
	}
	m, err := below(lo + 1)
	return n - m, err
}

// NewestSeqs merges lists of Seqs, each newest first, into the limit
// newest.
func NewestSeqs(limit int, lists ...[]int64) []int64 {
	var all []int64
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortFunc(all, func(a, b int64) int { return cmp.Compare(b, a) })
	return all[:min(limit, len(all))]
}

// IDs returns the request ids of rows, in order: what the work queries
// answer, in their consumers' terms.
func IDs(rows []PinRow) []uuid.UUID {
	out := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		out[i] = r.State.Request.RequestID
	}
	return out
}

// Views returns the views of rows.
func Views(rows []PinRow) []views.Pin {
	out := make([]views.Pin, len(rows))
	for i, r := range rows {
		out[i] = r.View()
	}
	return out
}

// Figures are the views' totals, what the metrics report.
type Figures struct {
	// Checkpoint is the log position the figures reflect.
	Checkpoint eventlog.Position
	// Backlog counts visible pins a fetcher may claim now: queued, and
	// retries whose time has come.
	Backlog int64
	// Scheduled counts visible queued pins whose retry is not due yet.
	Scheduled int64
	// InFlight counts visible pins claimed by an attempt.
	InFlight int64
	// AwaitingDecision counts visible pins whose attempt failed and that
	// wait for the retry decider.
	AwaitingDecision int64
	Pinned           int64
	DeadLettered     int64
	// BytesPinned adds up the CARs of visible pinned pins.
	BytesPinned int64
	// OldestDue is when the longest-waiting claimable pin became due; zero
	// when the backlog is empty.
	OldestDue time.Time
	// PinnedEver and DeadLetteredEver count CarValidated and DeadLettered
	// events since position zero; they only grow.
	PinnedEver       int64
	DeadLetteredEver int64
}

// FiguresFrom computes the figures from the totals, the number of queued
// pins due after now, and the oldest due time.
func FiguresFrom(totals map[string]int64, notYetDue int64, oldestDue time.Time, checkpoint eventlog.Position) Figures {
	return Figures{
		Checkpoint:       checkpoint,
		Backlog:          totals[totalPhaseQueued] - notYetDue,
		Scheduled:        notYetDue,
		InFlight:         totals[totalPhaseFetching] + totals[totalPhaseUploaded],
		AwaitingDecision: totals[totalPhaseFailed],
		Pinned:           totals[totalPhasePinned],
		DeadLettered:     totals[totalPhaseDeadLettered],
		BytesPinned:      totals[TotalBytesPinned],
		OldestDue:        oldestDue,
		PinnedEver:       totals[TotalPinnedEver],
		DeadLetteredEver: totals[TotalDeadLetteredEver],
	}
}

// MicrosOf is a time in the views' unit, for stores building queries.
func MicrosOf(t time.Time) int64 { return micros(t) }

// TimeOf is the time a micros column holds.
func TimeOf(us int64) time.Time { return fromMicros(us) }

// TextOf is a query value as the views store text.
func TextOf(s string) string { return sqlText(s) }

// DumpRow is one row of a view in a store-independent form: two stores
// hold the same views exactly when their dumps are equal. Tables come in
// the order of DumpTables(), rows in the byte order of Key.
type DumpRow struct {
	Table string
	Key   string
	Value json.RawMessage
}

// DumpTables returns the dumped tables, in dump order.
func DumpTables() []string {
	return []string{"pins", "pin_meta", "tenants", "tenant_blocks", "meta_blocks", "totals", "tokens", "roots"}
}

// Dump rows of each table. Keys join the key columns with NUL (which no
// text column holds) and write integers in 20 digits, so that byte order of
// keys is the order of the key columns.

func (c PinColumns) Dump() DumpRow {
	type dump struct {
		RequestID  uuid.UUID       `json:"request_id"`
		Tenant     string          `json:"tenant"`
		Seq        int64           `json:"seq"`
		Created    int64           `json:"created"`
		CID        string          `json:"cid"`
		CIDKey     string          `json:"cid_key"`
		Name       string          `json:"name"`
		NameFold   string          `json:"name_fold"`
		ListStatus string          `json:"list_status,omitempty"`
		Hidden     bool            `json:"hidden"`
		Phase      string          `json:"phase"`
		DueAt      int64           `json:"due_at,omitempty"`
		LeaseUntil int64           `json:"lease_until,omitempty"`
		FailedAt   int64           `json:"failed_at,omitempty"`
		CarBytes   int64           `json:"car_bytes"`
		State      json.RawMessage `json:"state"`
	}
	d := dump{c.RequestID, c.Tenant, c.Seq, c.Created, c.CID, c.CIDKey, c.Name, c.NameFold, c.ListStatus, c.Hidden, c.Phase,
		c.DueAt, c.LeaseUntil, c.FailedAt, c.CarBytes, nil}
	// The state shows as JSON, for people reading differences; a state that
	// does not decode shows as its bytes.
	if st, err := decodeState(c.State); err == nil {
		d.State, _ = json.Marshal(st)
	} else {
		d.State, _ = json.Marshal(fmt.Sprintf("%x", c.State))
	}
	v, _ := json.Marshal(d)
	return DumpRow{Table: "pins", Key: c.RequestID.String(), Value: v}
}

func (m MetaRow) Dump() DumpRow {
	return DumpRow{Table: "pin_meta", Key: fmt.Sprintf("%s\x00%s\x00%s\x00%020d", m.Tenant, m.Key, m.Value, m.Seq), Value: json.RawMessage(`{}`)}
}

func (t TenantRow) Dump() DumpRow {
	v, _ := json.Marshal(map[string]int64{"last_seq": t.LastSeq, "last_created": t.LastCreated})
	return DumpRow{Table: "tenants", Key: t.Tenant, Value: v}
}

// DumpBlock is the dump row of a block counter.
func DumpBlock(k BlockKey, n int64) DumpRow {
	return DumpRow{Table: "tenant_blocks", Key: fmt.Sprintf("%s\x00%s\x00%020d", k.Tenant, k.Status, k.Block), Value: json.RawMessage(fmt.Sprint(n))}
}

// DumpMetaBlock is the dump row of a meta block counter.
func DumpMetaBlock(k MetaBlockKey, n int64) DumpRow {
	return DumpRow{Table: "meta_blocks", Key: fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%020d", k.Tenant, k.Key, k.Value, k.Status, k.Block), Value: json.RawMessage(fmt.Sprint(n))}
}

// DumpTotal is the dump row of a total.
func DumpTotal(name string, n int64) DumpRow {
	return DumpRow{Table: "totals", Key: name, Value: json.RawMessage(fmt.Sprint(n))}
}

func (t TokenRow) Dump() DumpRow {
	v, _ := json.Marshal(struct {
		Tenant  string `json:"tenant"`
		Hash    string `json:"hash"`
		Label   string `json:"label"`
		Created int64  `json:"created"`
		Revoked bool   `json:"revoked"`
	}{t.Tenant, fmt.Sprintf("%x", t.Hash), t.Label, t.Created, t.Revoked})
	return DumpRow{Table: "tokens", Key: t.TokenID.String(), Value: v}
}

// Rows is a dump's rows, in order.
type Rows = iter.Seq2[DumpRow, error]

// MergeOverdue merges the pins whose lease ran out with the queued pins
// whose queue timeout passed, soonest deadline first.
func MergeOverdue(leases, queued []PinRow, queueTimeout time.Duration, limit int) []uuid.UUID {
	type due struct {
		at time.Time
		v  views.Pin
	}
	var all []due
	for _, r := range leases {
		all = append(all, due{r.State.LeaseUntil, r.View()})
	}
	for _, r := range queued {
		v := r.View()
		all = append(all, due{v.DueAt.Add(queueTimeout), v})
	}
	slices.SortStableFunc(all, func(a, b due) int { return a.at.Compare(b.at) })
	out := make([]uuid.UUID, 0, min(limit, len(all)))
	for _, d := range all[:min(limit, len(all))] {
		out = append(out, d.v.RequestID)
	}
	return out
}

// TrigramSearchable reports whether a folded name, or a folded substring
// of one, is long enough for a trigram index: three characters. The stores
// index the trigrams of folded names, so that partial and ipartial
// filters of that length cost about their matches, not the pinset.
func TrigramSearchable(fold string) bool { return utf8.RuneCountInString(fold) >= 3 }
