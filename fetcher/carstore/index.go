package carstore

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
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

// CheckIndex reports whether b is a CARv2 index this package stores (a
// MultihashIndexSorted that reads whole); ErrInvalid if not. It says
// nothing of which CAR b indexes.
func CheckIndex(b []byte) error {
	_, err := parseIndex(b)
	return err
}

// Indexed is what BuildIndex read of a CAR.
type Indexed struct {
	// Index is the CAR's CARv2 index, as go-car/v2 builds it
	// (MultihashIndexSorted, written by index.WriteTo; identity blocks
	// left out, as go-car's LoadIndex leaves them).
	Index []byte
	// CarCID is the CID of the bytes read; Bytes their count; Blocks the
	// sections read.
	CarCID        cid.Cid
	Bytes, Blocks int64
	// Root is the root the CAR's header names.
	Root cid.Cid
}

// ErrCorrupt: a CAR read back is not what the carpark should hold (a
// block that does not hash to its CID, a header that is not a CARv1 of one
// root, bytes that end mid-section or do not hash to the CAR CID).
var ErrCorrupt = errors.New("stored CAR is corrupt")

// maxSectionBytes bounds a section BuildIndex reads: a block of the
// fetch's largest (dag.DefaultMaxBlockBytes, 2 MiB) and its CID fit.
const maxSectionBytes = 4 << 20

// BuildIndex reads a CARv1 once, from r to its end, checking every block
// against its CID as it goes, and returns its index (the index a fetch
// records while it writes the CAR, for CARs pinned before indexes). Any
// block or header that fails is ErrCorrupt: such a CAR must not be
// indexed. Memory grows with the blocks (about 100 bytes each), not with
// their bytes.
func BuildIndex(r io.Reader) (Indexed, error) {
	h := sha256.New()
	cr := &countingReader{r: bufio.NewReaderSize(io.TeeReader(r, h), 1<<20)}
	br, err := car.NewBlockReader(cr, car.MaxAllowedSectionSize(maxSectionBytes))
	if err != nil {
		return Indexed{}, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if br.Version != 1 || len(br.Roots) != 1 {
		return Indexed{}, fmt.Errorf("%w: a CARv%d with %d roots, not a CARv1 of one", ErrCorrupt, br.Version, len(br.Roots))
	}
	out := Indexed{Root: br.Roots[0]}
	var records []index.Record
	for {
		offset := cr.n
		blk, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Indexed{}, fmt.Errorf("%w: section %d at byte %d: %v", ErrCorrupt, out.Blocks, offset, err)
		}
		out.Blocks++
		if c := blk.Cid(); c.Prefix().MhType != mh.IDENTITY {
			records = append(records, index.Record{Cid: c, Offset: uint64(offset)})
		}
	}
	idx := index.NewMultihashSorted()
	if err := idx.Load(records); err != nil {
		return Indexed{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var buf bytes.Buffer
	if _, err := index.WriteTo(idx, &buf); err != nil {
		return Indexed{}, err
	}
	out.Index, out.Bytes, out.CarCID = buf.Bytes(), cr.n, CarCID(h.Sum(nil))
	return out, nil
}

// countingReader counts what the block reader consumes: the offset of the
// next section. It is a ByteReader, so that go-car reads varints from it
// without buffering ahead.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}
