package viewrow

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/tenant"
)

// Applying a batch of events to the views is the same in every store:
//
//	b := Prepare(events)           // decode; which rows the events touch
//	loaded := <the store reads b.Pins, b.Tenants, b.Tokens in its transaction>
//	ch, err := b.Project(loaded)   // pure: the rows after the events
//	<the store writes ch and ch.Checkpoint in the same transaction>
//
// Project is a pure function of the loaded rows and the events, so a
// rebuild from position zero computes exactly what live processing did,
// whatever the batch boundaries.

// Batch is a batch of events ready to be projected: every event decoded
// once, and the keys of the rows it touches listed. Preparing is pure and
// needs no store, so the runner prepares the next batch while a store
// applies the last.
type Batch struct {
	events []eventlog.Event
	dec    []decoded

	// The keys of the rows the batch touches, each once, sorted: the store
	// loads them before Project.
	Pins    []uuid.UUID
	Tenants []string
	Tokens  []uuid.UUID
	// Checkpoint is the position of the batch's last event.
	Checkpoint eventlog.Position

	// rootKeys are the roots RootKeys asked the store to load.
	rootKeys map[string]bool
}

// decoded is one event of a batch, read.
type decoded struct {
	// id is the pin's request id, or the token's id.
	id    uuid.UUID
	pin   bool
	token bool
	rec   pin.Recorded
	tok   any
	// root is true for an event of a root's stream, rootKey its root.
	root    bool
	rootKey string
	rootRec pin.RootRecorded
	err     error
}

// Loaded holds the rows a store found for a batch's keys; a key with no
// row is absent.
type Loaded struct {
	Pins    map[uuid.UUID]PinRow
	Tenants map[string]TenantRow
	Tokens  map[uuid.UUID]TokenRow
	// Roots are the rows of Batch.RootKeys, loaded after the pins.
	Roots map[string]RootRow
}

// NewLoaded returns an empty Loaded, ready to fill.
func NewLoaded() Loaded {
	return Loaded{Pins: map[uuid.UUID]PinRow{}, Tenants: map[string]TenantRow{}, Tokens: map[uuid.UUID]TokenRow{}, Roots: map[string]RootRow{}}
}

// Prepare reads the events: decodes each one, and lists the rows they
// touch.
func Prepare(events []eventlog.Event) *Batch {
	b := &Batch{events: events, dec: make([]decoded, len(events))}
	for i, e := range events {
		d := &b.dec[i]
		if id, ok := pin.RequestIDOf(e.Stream); ok {
			d.id, d.pin = id, true
			d.rec, d.err = pinlog.Decode(e)
		} else if id, ok := tenant.TokenIDOf(e.Stream); ok {
			d.id, d.token = id, true
			d.tok, d.err = tenant.Decode(e)
		} else if root, ok := pin.RootOf(e.Stream); ok {
			d.root, d.rootKey = true, root
			d.rootRec, d.err = pinlog.DecodeRoot(e)
		}
	}
	b.index()
	return b
}

// index lists the keys of the rows the batch touches.
func (b *Batch) index() {
	pins, tenants, tokens := map[uuid.UUID]bool{}, map[string]bool{}, map[uuid.UUID]bool{}
	b.Checkpoint = 0
	for i, e := range b.events {
		b.Checkpoint = max(b.Checkpoint, e.Position)
		d := b.dec[i]
		switch {
		case d.pin:
			pins[d.id] = true
			if r, ok := d.rec.Payload.(pin.Requested); ok {
				tenants[sqlText(r.Tenant)] = true
				if r.Replaces != uuid.Nil {
					pins[r.Replaces] = true
				}
			}
		case d.token:
			tokens[d.id] = true
		}
	}
	b.Pins = slices.SortedFunc(maps.Keys(pins), compareUUID)
	b.Tenants = slices.Sorted(maps.Keys(tenants))
	b.Tokens = slices.SortedFunc(maps.Keys(tokens), compareUUID)
}

// Len is the number of events in the batch.
func (b *Batch) Len() int { return len(b.events) }

// Since returns the batch without its events at or before position cp:
// what remains to apply when another runner got there first.
func (b *Batch) Since(cp eventlog.Position) *Batch {
	i := 0
	for i < len(b.events) && b.events[i].Position <= cp {
		i++
	}
	if i == 0 {
		return b
	}
	rest := &Batch{events: b.events[i:], dec: b.dec[i:]}
	rest.index()
	return rest
}

func compareUUID(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) }

// Skip is an event the views could not take in. The views leave it out,
// the same way on every replay, and the runner logs it.
type Skip struct {
	Event eventlog.Event
	Err   error
}

// ErrSkipped is wrapped by a Skip's error.
var ErrSkipped = errors.New("event left out of the views")

// Changes are what a batch does to the views: every row it changed, once,
// in key order, with what the counters must add.
type Changes struct {
	Pins    []PinChange
	Tenants []TenantRow
	Tokens  []TokenChange
	// Roots are the changed rows of the roots view.
	Roots []RootChange
	// Blocks and Totals are added to the counters; a counter that reaches
	// zero is deleted, so that equal views have equal rows.
	Blocks     []BlockDelta
	MetaBlocks []MetaBlockDelta
	Totals     []TotalDelta
	Skipped    []Skip
	Checkpoint eventlog.Position
}

// PinChange is a pin row after the batch. Old is nil for a new row, whose
// Meta rows the store inserts; otherwise only the columns that can change
// are written.
type PinChange struct {
	Old  *PinColumns
	New  PinColumns
	Meta []MetaRow
}

// TokenChange is a token row after the batch; New is true for a row the
// store inserts.
type TokenChange struct {
	Row TokenRow
	New bool
}

// BlockSize is how many of a tenant's requests (by Seq) one block counter
// covers. Counting a listing's matches adds up the block counters below its
// bounds and counts at most one block's rows, so a count costs about
// pins/BlockSize + BlockSize, not the tenant's whole pinset.
const BlockSize = 1024

// BlockKey names one block counter: the tenant's visible pins with a status
// whose Seq / BlockSize is Block.
type BlockKey struct {
	Tenant string
	Block  int64
	Status string
}

// MetaBlockKey names one meta block counter: the tenant's visible pins
// with a status and a meta key of a value, whose Seq / BlockSize is Block.
// With them, a listing filtered by one meta key counts like one filtered by
// status alone.
type MetaBlockKey struct {
	Tenant, Key, Value, Status string
	Block                      int64
}

// MetaBlockDelta is what to add to a meta block counter.
type MetaBlockDelta struct {
	MetaBlockKey
	Delta int64
}

// BlockDelta is what to add to a block counter.
type BlockDelta struct {
	BlockKey
	Delta int64
}

// TotalDelta is what to add to a total.
type TotalDelta struct {
	Name  string
	Delta int64
}

// Totals kept across every tenant, for the metrics. The phase totals count
// visible pins by phase; the "_total" ones only grow.
const (
	TotalBytesPinned       = "bytes_pinned"
	TotalPinnedEver        = "pinned_total"
	TotalDeadLetteredEver  = "dead_lettered_total"
	totalPhasePrefix       = "phase_"
	totalPhaseQueued       = totalPhasePrefix + string(pin.PhaseQueued)
	totalPhaseFetching     = totalPhasePrefix + string(pin.PhaseFetching)
	totalPhaseUploaded     = totalPhasePrefix + string(pin.PhaseUploaded)
	totalPhaseFailed       = totalPhasePrefix + string(pin.PhaseFailed)
	totalPhasePinned       = totalPhasePrefix + string(pin.PhasePinned)
	totalPhaseDeadLettered = totalPhasePrefix + string(pin.PhaseDeadLettered)
)

// projector holds a batch's rows while it applies the events.
type projector struct {
	loaded  Loaded
	pins    map[uuid.UUID]PinRow
	tenants map[string]TenantRow
	tokens  map[uuid.UUID]TokenRow
	newPin  map[uuid.UUID]bool
	newTok  map[uuid.UUID]bool
	totals  map[string]int64
	skipped []Skip

	roots    map[string]RootRow
	rootKeys map[string]bool
	// err is a fault of the store's loading, not of the events.
	err error
}

// Project applies the batch's events to the loaded rows and returns what
// changed. It is pure: the same rows and events give the same changes.
func (b *Batch) Project(loaded Loaded) (*Changes, error) {
	p := &projector{
		loaded:  loaded,
		pins:    map[uuid.UUID]PinRow{},
		tenants: map[string]TenantRow{},
		tokens:  map[uuid.UUID]TokenRow{},
		newPin:  map[uuid.UUID]bool{},
		newTok:  map[uuid.UUID]bool{},
		totals:  map[string]int64{},

		roots:    map[string]RootRow{},
		rootKeys: b.rootKeys,
	}
	if p.loaded.Roots == nil {
		p.loaded.Roots = map[string]RootRow{}
	}
	for i, e := range b.events {
		d := b.dec[i]
		err := d.err
		switch {
		case err != nil:
		case d.pin:
			if r, ok := d.rec.Payload.(pin.Requested); ok {
				err = p.request(d.rec, d.id, r)
			} else {
				err = p.pinEvent(d.rec, d.id)
			}
		case d.token:
			err = p.tokenEvent(d.id, d.tok)
		case d.root:
			p.rootEvent(sqlText(d.rootKey), d.rootRec)
		}
		if err != nil {
			p.skipped = append(p.skipped, Skip{Event: e, Err: fmt.Errorf("%w: %s at %s/%d (position %d): %w", ErrSkipped, e.Type, e.Stream, e.Revision, e.Position, err)})
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return p.changes(b.Checkpoint)
}

func (p *projector) pin(id uuid.UUID) (PinRow, bool) {
	if r, ok := p.pins[id]; ok {
		return r, true
	}
	r, ok := p.loaded.Pins[id]
	if ok && r.cidKey == "" {
		r.cidKey = r.key()
	}
	return r, ok
}

func (p *projector) tenant(name string) (TenantRow, bool) {
	if r, ok := p.tenants[name]; ok {
		return r, true
	}
	r, ok := p.loaded.Tenants[name]
	return r, ok
}

func (p *projector) token(id uuid.UUID) (TokenRow, bool) {
	if r, ok := p.tokens[id]; ok {
		return r, true
	}
	r, ok := p.loaded.Tokens[id]
	return r, ok
}

// request takes in a PinRequested: a new row, numbered and stamped in the
// tenant's order, and the request it replaces hidden at once.
func (p *projector) request(e pin.Recorded, id uuid.UUID, r pin.Requested) error {
	if _, ok := p.pin(id); ok {
		return fmt.Errorf("request %s is already in the views; the first request stands", id)
	}
	if r.RequestID != id {
		return fmt.Errorf("request id %s recorded in the stream of %s", r.RequestID, id)
	}
	s := pin.State{}.Apply(e)
	name := sqlText(r.Tenant)
	t, ok := p.tenant(name)
	if !ok {
		t = TenantRow{Tenant: name}
	}
	created := micros(r.Created)
	if t.LastSeq > 0 && created <= t.LastCreated {
		created = t.LastCreated + 1
	}
	t.LastSeq++
	t.LastCreated = created
	p.tenants[name] = t
	row := PinRow{State: s, Seq: t.LastSeq, Created: fromMicros(created), cidKey: sqlText(cidKey(r.CID))}
	p.pins[id] = row
	p.newPin[id] = true
	if row.holdsRoot() {
		p.rootLive(row.key(), +1, micros(e.At))
	}

	if r.Replaces != uuid.Nil {
		// A tenant replaces only its own pins; a request naming another's
		// is taken in, and the other pin left alone.
		if old, ok := p.pin(r.Replaces); ok && old.State.Request.Tenant == r.Tenant && !old.Hidden {
			was := old.holdsRoot()
			old.Hidden = true
			p.pins[r.Replaces] = old
			if was {
				p.rootLive(old.key(), -1, micros(e.At))
			}
		}
	}
	return nil
}

// pinEvent folds any other event of a pin's stream into its row.
func (p *projector) pinEvent(e pin.Recorded, id uuid.UUID) error {
	r, ok := p.pin(id)
	if !ok {
		return fmt.Errorf("no request %s in the views", id)
	}
	was := r.holdsRoot()
	s := r.State.Apply(e)
	r.State = s
	if s.Removed {
		r.Hidden = true
	}
	p.pins[id] = r
	if now := r.holdsRoot(); now != was {
		delta := int64(+1)
		if was {
			delta = -1
		}
		p.rootLive(r.key(), delta, micros(e.At))
	}
	switch e.Payload.(type) {
	case pin.CarValidated:
		p.rootCar(r.key(), micros(e.At))
		p.totals[TotalPinnedEver]++
	case pin.DeadLettered:
		p.totals[TotalDeadLetteredEver]++
	}
	return nil
}

func (p *projector) tokenEvent(id uuid.UUID, ev any) error {
	switch ev := ev.(type) {
	case tenant.TokenIssued:
		if _, ok := p.token(id); ok {
			return fmt.Errorf("token %s is already issued", id)
		}
		if ev.TokenID != id {
			return fmt.Errorf("token id %s recorded in the stream of %s", ev.TokenID, id)
		}
		h, err := tenant.ParseHash(ev.Hash)
		if err != nil {
			return err
		}
		p.tokens[id] = TokenRow{TokenID: id, Tenant: sqlText(ev.Tenant), Hash: h, Label: sqlText(ev.Label), Created: micros(ev.Created)}
		p.newTok[id] = true
	case tenant.TokenRevoked:
		t, ok := p.token(id)
		if !ok {
			return fmt.Errorf("no token %s to revoke", id)
		}
		t.Revoked = true
		p.tokens[id] = t
	}
	return nil
}

// changes lists the changed rows in key order, with the counter deltas
// between each row's old and new columns.
func (p *projector) changes(checkpoint eventlog.Position) (*Changes, error) {
	ch := &Changes{Checkpoint: checkpoint, Skipped: p.skipped}
	blocks := map[BlockKey]int64{}
	metaBlocks := map[MetaBlockKey]int64{}
	totals := p.totals
	count := func(c PinColumns, meta map[string]string, sign int64) {
		if c.ListStatus != "" {
			blocks[BlockKey{Tenant: c.Tenant, Block: c.Seq / BlockSize, Status: c.ListStatus}] += sign
			for k, v := range meta {
				metaBlocks[MetaBlockKey{Tenant: c.Tenant, Key: sqlText(k), Value: sqlText(v), Status: c.ListStatus, Block: c.Seq / BlockSize}] += sign
			}
		}
		if !c.Hidden {
			totals[totalPhasePrefix+c.Phase] += sign
			totals[TotalBytesPinned] += sign * c.CarBytes
		}
	}
	for _, id := range slices.SortedFunc(maps.Keys(p.pins), compareUUID) {
		r := p.pins[id]
		c := r.Columns()
		change := PinChange{New: c}
		if p.newPin[id] {
			change.Meta = r.metaRows()
			slices.SortFunc(change.Meta, func(a, b MetaRow) int { return cmp.Compare(a.Key, b.Key) })
		} else {
			was := p.loaded.Pins[id]
			was.cidKey = r.cidKey
			old := was.columns()
			change.Old = &old
			count(old, was.State.Request.Meta, -1)
		}
		count(c, r.State.Request.Meta, +1)
		ch.Pins = append(ch.Pins, change)
	}
	for _, name := range slices.Sorted(maps.Keys(p.tenants)) {
		ch.Tenants = append(ch.Tenants, p.tenants[name])
	}
	for _, id := range slices.SortedFunc(maps.Keys(p.tokens), compareUUID) {
		ch.Tokens = append(ch.Tokens, TokenChange{Row: p.tokens[id], New: p.newTok[id]})
	}
	ch.Roots = p.rootChanges()
	for _, k := range slices.SortedFunc(maps.Keys(blocks), compareBlockKey) {
		if d := blocks[k]; d != 0 {
			ch.Blocks = append(ch.Blocks, BlockDelta{BlockKey: k, Delta: d})
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(metaBlocks), compareMetaBlockKey) {
		if d := metaBlocks[k]; d != 0 {
			ch.MetaBlocks = append(ch.MetaBlocks, MetaBlockDelta{MetaBlockKey: k, Delta: d})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(totals)) {
		if d := totals[k]; d != 0 {
			ch.Totals = append(ch.Totals, TotalDelta{Name: k, Delta: d})
		}
	}
	return ch, nil
}

func compareMetaBlockKey(a, b MetaBlockKey) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value),
		cmp.Compare(a.Status, b.Status), cmp.Compare(a.Block, b.Block))
}

func compareBlockKey(a, b BlockKey) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Block, b.Block), cmp.Compare(a.Status, b.Status))
}
