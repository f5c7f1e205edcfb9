package carstore

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-car/v2/index"
	"github.com/multiformats/go-multicodec"
	mh "github.com/multiformats/go-multihash"
)

// IndexKey is the carpark key of the block index of the CAR at carKey: the
// CAR's key and ".idx". The index sits beside the CAR it describes, at
// whatever key the CAR has (RootKey for the S3 store, CarKey for the
// directory store and for CARs S3 stored before it wrote CARs once), so
// that an index names its CAR without a lookup (see the package doc, "The
// block index").
func IndexKey(carKey string) string { return carKey + ".idx" }

// RootMapKey is the carpark key of the empty object that maps a root to a
// CAR of its DAG: <rootCid>/<carCid>, the DUDEWHERE layout of Storacha's
// freeway gateway. Listing <rootCid>/ finds a root's CARs: one today, more
// once a DAG is sharded.
func RootMapKey(root, carCID cid.Cid) string { return root.String() + "/" + carCID.String() }

// parseIndex reads b as a CARv2 index whose entries can be listed, and
// returns them, sorted by multihash then offset.
func parseIndex(b []byte) ([]indexEntry, error) {
	idx, err := index.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: not a CARv2 index: %v", ErrInvalid, err)
	}
	it, ok := idx.(index.IterableIndex)
	if !ok || idx.Codec() != multicodec.CarMultihashIndexSorted {
		return nil, fmt.Errorf("%w: a CARv2 index of codec %s, not %s", ErrInvalid, idx.Codec(), multicodec.CarMultihashIndexSorted)
	}
	var out []indexEntry
	err = it.ForEach(func(h mh.Multihash, offset uint64) error {
		out = append(out, indexEntry{string(h), offset})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: CARv2 index: %v", ErrInvalid, err)
	}
	slices.SortFunc(out, func(a, b indexEntry) int {
		return cmp.Or(strings.Compare(a.mh, b.mh), cmp.Compare(a.offset, b.offset))
	})
	return out, nil
}

type indexEntry struct {
	mh     string
	offset uint64
}

// sameIndex reports whether have is an index with exactly want's entries
// (want parsed by parseIndex): the same CAR's index, written otherwise.
func sameIndex(have []byte, want []indexEntry) bool {
	entries, err := parseIndex(have)
	return err == nil && slices.Equal(entries, want)
}

// indexArgs checks PutIndex's arguments and returns the index's key, the
// mapping's key and the index's entries.
func indexArgs(st Stored, idx []byte) (idxKey, mapKey string, entries []indexEntry, err error) {
	if _, err := parseCarparkKey(st.Key); err != nil {
		return "", "", nil, err
	}
	if err := checkCarCID(st.CarCID); err != nil {
		return "", "", nil, err
	}
	if !st.Root.Defined() {
		return "", "", nil, fmt.Errorf("%w: no root CID", ErrInvalid)
	}
	if entries, err = parseIndex(idx); err != nil {
		return "", "", nil, err
	}
	return IndexKey(st.Key), RootMapKey(st.Root, st.CarCID), entries, nil
}

// checkReadKey accepts the keys ReadRange reads: a CAR, an index or a
// root's mapping.
func checkReadKey(key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if _, err := parseCarparkKey(strings.TrimSuffix(key, ".idx")); err == nil {
		return nil
	}
	dir, file, ok := strings.Cut(key, "/")
	if ok {
		r, err1 := cid.Decode(dir)
		c, err2 := cid.Decode(file)
		if err1 == nil && err2 == nil && r.String() == dir && c.String() == file && c.Type() == CodecCAR {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is not a carpark key (a CAR, its index or a root's mapping)", ErrInvalid, key)
}

func checkRange(offset, length int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: negative offset %d", ErrInvalid, offset)
	}
	return nil
}
