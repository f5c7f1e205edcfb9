package viewrow

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// The roots view: per canonical root CID, what the garbage collector
// (pin/deciders' GC) finds its candidates in. A root's row counts its live
// pins (visible, not dead-lettered: a requested pin that may still be
// fetched, or is pinned), says whether the carpark holds a CAR of it (a
// CarValidated seen since the last RootDeleted), and when it was released
// (the time of the event that made its live pins 0, or of a later hold by
// a pin no longer live, whose fetcher may still be promoting). Every
// change is made per event, at the event's time, so that a rebuild gives
// the same rows whatever the batch boundaries.

// RootRow is one root as the views keep it. A row with no live pin, no CAR
// and no deletion in progress is deleted, so that equal views have equal
// rows.
type RootRow struct {
	Root string
	Live int64
	// HasCar is true from a CarValidated of the root to its RootDeleted.
	HasCar bool
	// ReleasedAt is when the live pins last became 0 (micros); 0 while
	// some pin is live.
	ReleasedAt int64
	// DeletingUntil is the lease of a deletion in progress (micros), 0
	// when none is.
	DeletingUntil int64
}

// GCAt is the row's key in the collector's index: a deletion in progress
// first (1: whoever decided it may have died, and a hold waits for it);
// then a released root with a CAR, at its release; 0 (NULL) for the rest.
func (r RootRow) GCAt() int64 {
	switch {
	case r.DeletingUntil != 0:
		return 1
	case r.HasCar && r.Live == 0:
		return max(r.ReleasedAt, 2)
	}
	return 0
}

func (r RootRow) empty() bool { return r.Live == 0 && !r.HasCar && r.DeletingUntil == 0 }

// View is what the read model shows of the row.
func (r RootRow) View() views.Root {
	v := views.Root{Root: r.Root, Live: r.Live, HasCar: r.HasCar, Deleting: r.DeletingUntil != 0}
	if r.ReleasedAt != 0 {
		v.ReleasedAt = fromMicros(r.ReleasedAt)
	}
	if r.DeletingUntil != 0 {
		v.DeletingUntil = fromMicros(r.DeletingUntil)
	}
	return v
}

// Dump is the row's dump row.
func (r RootRow) Dump() DumpRow {
	v, _ := json.Marshal(struct {
		Live          int64 `json:"live"`
		HasCar        bool  `json:"has_car"`
		ReleasedAt    int64 `json:"released_at,omitempty"`
		DeletingUntil int64 `json:"deleting_until,omitempty"`
	}{r.Live, r.HasCar, r.ReleasedAt, r.DeletingUntil})
	return DumpRow{Table: "roots", Key: r.Root, Value: v}
}

// RootChange is a root row after a batch: saved (inserted or updated), or
// deleted when Delete is true.
type RootChange struct {
	Row    RootRow
	Delete bool
}

// holdsRoot reports whether the pin keeps its root's CAR from the
// collector: visible (not removed, not replaced) and not failed for good.
// A pin whose last failure is permanent still counts until its dead
// letter: the decider may be a second away.
func (r PinRow) holdsRoot() bool { return r.visible() && r.State.Phase != pin.PhaseDeadLettered }

// rootPayload reports whether a pin event can change its root's row, so
// that the stores load the row only for those.
func rootPayload(p pin.Payload) bool {
	switch p := p.(type) {
	case pin.Requested, pin.CarValidated, pin.DeadLettered, pin.Removed:
		return true
	case pin.RetryScheduled:
		return p.Requeued
	}
	return false
}

// RootKeys returns the roots whose rows the batch may change, given the
// pin rows loaded for it: the store loads them into Loaded.Roots before
// Project (the root of a pin event is known only from its row). A
// replacement names a request loaded, or one requested in the batch, whose
// CID is listed with the batch's requests.
func (b *Batch) RootKeys(l Loaded) []string {
	keys := map[string]bool{}
	for i := range b.events {
		d := b.dec[i]
		switch {
		case d.root:
			keys[sqlText(d.rootKey)] = true
		case d.pin && d.err == nil && rootPayload(d.rec.Payload):
			if r, ok := l.Pins[d.id]; ok {
				keys[r.key()] = true
			}
			if r, ok := d.rec.Payload.(pin.Requested); ok {
				keys[sqlText(cidKey(r.CID))] = true
				if old, ok := l.Pins[r.Replaces]; ok {
					keys[old.key()] = true
				}
			}
		}
	}
	b.rootKeys = keys
	return slices.Sorted(maps.Keys(keys))
}

// root returns the row of a root, loaded or changed by the batch; a root
// the store was not asked to load is a bug, reported by Project.
func (p *projector) root(key string) RootRow {
	if r, ok := p.roots[key]; ok {
		return r
	}
	if !p.rootKeys[key] {
		if p.err == nil {
			p.err = fmt.Errorf("root %q changed by the batch but not loaded (RootKeys)", key)
		}
	}
	if r, ok := p.loaded.Roots[key]; ok {
		return r
	}
	return RootRow{Root: key}
}

// rootLive adds delta to a root's live pins at time at (micros).
func (p *projector) rootLive(key string, delta int64, at int64) {
	r := p.root(key)
	r.Live += delta
	switch {
	case r.Live > 0:
		r.ReleasedAt = 0
	case delta < 0:
		r.ReleasedAt = at
	}
	p.setRoot(key, r)
}

// rootCar records a CAR of the root validated into the carpark at at.
func (p *projector) rootCar(key string, at int64) {
	r := p.root(key)
	r.HasCar = true
	if r.Live == 0 && r.ReleasedAt == 0 {
		r.ReleasedAt = at
	}
	p.setRoot(key, r)
}

// rootEvent folds an event of a root's stream into its row.
func (p *projector) rootEvent(key string, e pin.RootRecorded) {
	r := p.root(key)
	switch ev := e.Payload.(type) {
	case pin.RootHeld:
		// A hold by a pin no longer live: its fetcher may be promoting a
		// CAR still, so the grace period starts again.
		if r.Live == 0 {
			r.ReleasedAt = micros(e.At)
		}
	case pin.RootDeleting:
		r.DeletingUntil = max(micros(ev.LeaseUntil), 1)
	case pin.RootDeleted:
		r.HasCar, r.DeletingUntil = false, 0
	}
	p.setRoot(key, r)
}

// setRoot records a root's row as the batch changed it. An empty row is
// deleted from the store, its release time with it, so it is the zero row
// here too: a batch folds the events as one event a batch would, and the
// views are the same however the runner cut the log.
func (p *projector) setRoot(key string, r RootRow) {
	if r.empty() {
		r = RootRow{Root: key}
	}
	p.roots[key] = r
}

// rootChanges lists the changed root rows in key order.
func (p *projector) rootChanges() []RootChange {
	var out []RootChange
	for _, k := range slices.Sorted(maps.Keys(p.roots)) {
		r := p.roots[k]
		old, had := p.loaded.Roots[k]
		switch {
		case r.empty() && !had:
		case r.empty():
			out = append(out, RootChange{Row: r, Delete: true})
		case had && old == r:
		default:
			out = append(out, RootChange{Row: r})
		}
	}
	return out
}
