// Package locate is the block-location lookup of the serving side: for any
// block of any pinned DAG, which CARs of the carpark hold it and where, so
// that a reader fetches the block with one indexed query and one range read
// of the CAR.
//
// The lookup is built from the CARv2 index objects (MultihashIndexSorted)
// that sit beside every CAR in the carpark, never from the CARs themselves
// nor from the event log's blocks (the log carries no blocks): a Loader
// follows the log for CarValidated and adds each named index; Rebuild makes
// the same lookup from the index objects alone. Both go through a Store,
// whose backends (serve/locate/sqlite, serve/locate/postgres) pass the one
// conformance suite in serve/locate/locatetest.
//
// An index object is untrusted input (the bucket may be corrupted, or
// written by an older or broken writer): Entries refuses anything that is
// not a well-formed MultihashIndexSorted whose offsets fit the CAR, and a
// reader of a Location still checks the block it reads against the CID it
// asked for.
package locate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Location is where one CAR of the carpark holds a block.
type Location struct {
	// CarCID names the CAR; Root is the root of the DAG it holds; Key is
	// its carpark key.
	CarCID cid.Cid
	Root   cid.Cid
	Key    string
	// Offset and Length are the block's whole section in the CARv1 (the
	// varint length, the CID, the data): one range read of
	// [Offset, Offset+Length) returns it. Length runs to the next section
	// the index names (or the CAR's end): when the index leaves a section
	// out (go-car leaves identity CIDs out by default), the range holds it
	// too, and the reader takes the section's own varint for its length.
	Offset, Length int64
}

// CAR is a CAR of the carpark, as the lookup records it.
type CAR struct {
	CarCID, Root cid.Cid
	// Key is its carpark key; Bytes its size.
	Key   string
	Bytes int64
}

// Entry is one block of a CAR's index: its multihash and its section.
type Entry struct {
	Multihash      multihash.Multihash
	Offset, Length int64
}

// Store is the lookup's storage. Implementations are safe for concurrent
// use. Every backend passes locatetest.Run.
type Store interface {
	// Locate returns every CAR holding a block of multihash mh, with the
	// block's section in each, in no set order. None is an empty answer
	// and no error.
	Locate(ctx context.Context, mh multihash.Multihash) ([]Location, error)

	// Add records car and its index's entries, all of them or none, in
	// one transaction. A CAR already recorded is left as it is and Add
	// returns nil: adding a CAR twice is adding it once, and an Add
	// interrupted by a crash left nothing, so doing it again completes it.
	// Entries naming one multihash twice (a block stored twice in the
	// CAR) keep the first section. ErrInvalid: a CAR without its CIDs,
	// key or size, or an entry whose section does not fit the CAR;
	// nothing is written.
	Add(ctx context.Context, car CAR, entries []Entry) error

	// Remove forgets the CAR and its blocks. Removing a CAR not recorded
	// is no error.
	Remove(ctx context.Context, carCID cid.Cid) error

	// Has reports whether the CAR is recorded (its Add completed).
	Has(ctx context.Context, carCID cid.Cid) (bool, error)

	// Checkpoint is the log position the loader has taken in, 0 before
	// any; SetCheckpoint records a new one. A checkpoint never moves
	// back: SetCheckpoint with a position before the recorded one keeps
	// the recorded one.
	Checkpoint(ctx context.Context) (eventlog.Position, error)
	SetCheckpoint(ctx context.Context, pos eventlog.Position) error

	// Close releases the store.
	Close() error
}

var (
	// ErrBadIndex: an index object is not a well-formed CARv2
	// MultihashIndexSorted of its CAR.
	ErrBadIndex = errors.New("bad block index")
	// ErrInvalid: arguments a store refuses.
	ErrInvalid = errors.New("invalid block-location arguments")
)

// Check is the validation every Store's Add does before writing: it
// refuses, wrapping ErrInvalid, a CAR without its CIDs, key or size, and
// an entry that is not a multihash or whose section is not inside the
// CAR; it returns the entries with each multihash once (its first section
// in the CAR kept), in the CAR's order.
func Check(car CAR, entries []Entry) ([]Entry, error) {
	switch {
	case !car.CarCID.Defined() || !car.Root.Defined():
		return nil, fmt.Errorf("add CAR: %w: no CAR CID or no root", ErrInvalid)
	case car.Key == "" || car.Bytes <= 0:
		return nil, fmt.Errorf("add CAR %s: %w: no key or no size", car.CarCID, ErrInvalid)
	}
	out := slices.Clone(entries)
	slices.SortStableFunc(out, func(a, b Entry) int { return cmp.Compare(a.Offset, b.Offset) })
	seen := make(map[string]bool, len(out))
	kept := out[:0]
	for _, e := range out {
		if _, err := multihash.Decode(e.Multihash); err != nil {
			return nil, fmt.Errorf("add CAR %s: %w: entry at %d: %v", car.CarCID, ErrInvalid, e.Offset, err)
		}
		if e.Offset <= 0 || e.Length <= 0 || e.Offset > car.Bytes-e.Length {
			return nil, fmt.Errorf("add CAR %s: %w: section [%d, +%d) outside a CAR of %d bytes", car.CarCID, ErrInvalid, e.Offset, e.Length, car.Bytes)
		}
		if seen[string(e.Multihash)] {
			continue
		}
		seen[string(e.Multihash)] = true
		kept = append(kept, e)
	}
	return kept, nil
}
