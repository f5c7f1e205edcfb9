package locate

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"
)

// Limits on an index object, beyond which it is refused as malformed. A
// real index has one bucket per hash function (sha2-256 nearly always) and
// one width per digest size in it.
const (
	maxCodes  = 16
	maxWidths = 16
	// maxDigest is the longest digest taken: 64 bytes is sha2-512's and
	// blake2b-512's; the longest CID go-cid takes is far below any size
	// that matters here.
	maxDigest = 128
)

// Entries decodes a CARv2 index object of codec MultihashIndexSorted
// (go-car/v2's index.WriteTo of an index.MultihashIndexSorted) describing
// a CARv1 of carBytes bytes, and returns its entries in the CAR's order,
// each with its section's length: the sections of a CARv1 follow each
// other after its header, so a section runs to the next one's offset, the
// last to the CAR's end.
//
// It reads the object as untrusted input, never allocating for a size the
// input claims, and refuses, with an error wrapping ErrBadIndex: another
// codec; a truncated object or bytes after its end; counts, widths or
// lengths out of bounds; digests out of order within their width (go-car
// sorts them); more entries than carBytes could hold; two entries at one
// offset; an offset at 0 (the CAR's header is there) or at or past
// carBytes; a section too short for its own length varint and CID.
func Entries(index io.Reader, carBytes int64) ([]Entry, error) {
	if carBytes <= 0 {
		return nil, fmt.Errorf("%w: a CAR of %d bytes", ErrBadIndex, carBytes)
	}
	r := bufio.NewReaderSize(index, 64<<10)
	d := decoder{r: r}
	codec, err := varint.ReadUvarint(r)
	if err != nil {
		return nil, d.fail("codec", err)
	}
	if multicodec.Code(codec) != multicodec.CarMultihashIndexSorted {
		return nil, fmt.Errorf("%w: codec %s, want %s", ErrBadIndex, multicodec.Code(codec), multicodec.CarMultihashIndexSorted)
	}
	codes, err := d.count("hash function count", maxCodes)
	if err != nil {
		return nil, err
	}
	var out []Entry
	var minBytes int64 // the least a CAR holding out's sections takes
	seenCodes := make(map[uint64]bool)
	for range codes {
		code, err := d.u64("hash function")
		if err != nil {
			return nil, err
		}
		if seenCodes[code] {
			return nil, fmt.Errorf("%w: hash function %#x listed twice", ErrBadIndex, code)
		}
		seenCodes[code] = true
		widths, err := d.count("width count", maxWidths)
		if err != nil {
			return nil, err
		}
		seenWidths := make(map[uint32]bool)
		for range widths {
			width, err := d.u32("width")
			if err != nil {
				return nil, err
			}
			if width <= 8 || width > 8+maxDigest {
				return nil, fmt.Errorf("%w: record width %d out of (8, %d]", ErrBadIndex, width, 8+maxDigest)
			}
			if seenWidths[width] {
				return nil, fmt.Errorf("%w: width %d of hash function %#x listed twice", ErrBadIndex, width, code)
			}
			seenWidths[width] = true
			size, err := d.u64("records size")
			if err != nil {
				return nil, err
			}
			if size%uint64(width) != 0 {
				return nil, fmt.Errorf("%w: records of %d bytes are not whole records of width %d", ErrBadIndex, size, width)
			}
			n := size / uint64(width)
			digestLen := int(width) - 8
			// A section holds at least its varint, a CID (at least the
			// multihash: its code, its length and the digest) and no data.
			section := int64(1 + varint.UvarintSize(code) + varint.UvarintSize(uint64(digestLen)) + digestLen)
			if n > uint64(carBytes/section) || minBytes+int64(n)*section > carBytes {
				return nil, fmt.Errorf("%w: %d more records of width %d do not fit a CAR of %d bytes", ErrBadIndex, n, width, carBytes)
			}
			minBytes += int64(n) * section
			rec := make([]byte, width)
			var prev []byte
			for i := uint64(0); i < n; i++ {
				if _, err := io.ReadFull(r, rec); err != nil {
					return nil, d.fail("records", err)
				}
				digest := rec[:digestLen]
				if prev != nil && bytes.Compare(prev, digest) > 0 {
					return nil, fmt.Errorf("%w: digests of width %d out of order at record %d", ErrBadIndex, width, i)
				}
				mh, err := multihash.Encode(digest, code)
				if err != nil {
					return nil, fmt.Errorf("%w: record %d: %v", ErrBadIndex, i, err)
				}
				prev = mh[len(mh)-digestLen:]
				off := binary.LittleEndian.Uint64(rec[digestLen:])
				if off == 0 || off >= uint64(carBytes) {
					return nil, fmt.Errorf("%w: offset %d outside the sections of a CAR of %d bytes", ErrBadIndex, off, carBytes)
				}
				out = append(out, Entry{Multihash: mh, Offset: int64(off)})
			}
		}
	}
	if _, err := r.ReadByte(); err == nil {
		return nil, fmt.Errorf("%w: bytes after the index's end", ErrBadIndex)
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read index: %w", err)
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Offset, b.Offset) })
	for i := range out {
		end := carBytes
		if i+1 < len(out) {
			end = out[i+1].Offset
		}
		out[i].Length = end - out[i].Offset
		if out[i].Length == 0 {
			return nil, fmt.Errorf("%w: two blocks at offset %d", ErrBadIndex, out[i].Offset)
		}
		if out[i].Length < int64(1+len(out[i].Multihash)) {
			return nil, fmt.Errorf("%w: the section at offset %d is %d bytes, too short for the CID of %x", ErrBadIndex, out[i].Offset, out[i].Length, []byte(out[i].Multihash))
		}
	}
	return out, nil
}

// decoder reads an index's little-endian fields.
type decoder struct {
	r   *bufio.Reader
	buf [8]byte
}

// fail wraps a read error: the end of the input is a truncated index.
func (d *decoder) fail(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated at its %s", ErrBadIndex, what)
	}
	if errors.Is(err, varint.ErrOverflow) || errors.Is(err, varint.ErrNotMinimal) {
		return fmt.Errorf("%w: %s: %v", ErrBadIndex, what, err)
	}
	return fmt.Errorf("read index %s: %w", what, err)
}

func (d *decoder) u32(what string) (uint32, error) {
	if _, err := io.ReadFull(d.r, d.buf[:4]); err != nil {
		return 0, d.fail(what, err)
	}
	return binary.LittleEndian.Uint32(d.buf[:4]), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if _, err := io.ReadFull(d.r, d.buf[:8]); err != nil {
		return 0, d.fail(what, err)
	}
	return binary.LittleEndian.Uint64(d.buf[:8]), nil
}

// count reads an int32 count, refusing one below 0 or above limit.
func (d *decoder) count(what string, limit int) (int, error) {
	v, err := d.u32(what)
	if err != nil {
		return 0, err
	}
	n := int32(v)
	if n < 0 || int(n) > limit {
		return 0, fmt.Errorf("%w: %s %d out of [0, %d]", ErrBadIndex, what, n, limit)
	}
	return int(n), nil
}
