package dag

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"slices"
	"sort"

	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"
)

// blockIndex records, as a CAR is written, each block's multihash and the
// offset of its section from the start of the CAR, and marshals them as
// the CARv2 index go-car/v2 builds for the same CAR (index.
// MultihashIndexSorted, written by index.WriteTo; go-car's LoadIndex
// leaves identity blocks out, their bytes being in their CIDs, and so does
// this).
//
// The records are kept as that index keeps them: per multihash code and
// digest length, one byte slice of fixed-width records, the digest then
// the offset (8 bytes, little-endian). That is 40 bytes a SHA-256 block
// with no pointer for the garbage collector to follow (a []index.Record
// would be 24 bytes a block, plus the CID string it holds alive, about
// 48: 72 in all); sorted in place at the end, they are the index's bytes
// already. The test holds the output equal to go-car's, byte for byte.
type blockIndex struct {
	buckets []indexBucket // few: one per hash function and digest length
	err     error
}

type indexBucket struct {
	code   uint64
	digest int // bytes
	// chunks hold the records, each chunk full but the last: a slice grown
	// by append would copy them again and again (5 times their size in
	// all, at Go's growth of large slices: BenchmarkBlockIndex, 32,768
	// blocks, a 1.3 MB index, took 146 ns a block and allocated 9.0 MB
	// that way, 87 to 120 ns and 3.0 MB in chunks, on a loaded machine).
	chunks [][]byte
	bytes  int
}

// chunkRecords is how many records a chunk holds: 64 KiB of SHA-256 ones.
const chunkRecords = 1638

func (b *indexBucket) put(digest string, offset uint64) {
	width := b.digest + 8
	if len(b.chunks) == 0 || len(b.chunks[len(b.chunks)-1])+width > cap(b.chunks[len(b.chunks)-1]) {
		b.chunks = append(b.chunks, make([]byte, 0, chunkRecords*width))
	}
	c := &b.chunks[len(b.chunks)-1]
	*c = append(*c, digest...)
	*c = binary.LittleEndian.AppendUint64(*c, offset)
	b.bytes += width
}

// add records the section of the block whose CID is key (cid.KeyString)
// at offset.
func (bi *blockIndex) add(key string, offset int64) {
	code, digest, ok := cidDigest(key)
	if !ok {
		if bi.err == nil {
			bi.err = errors.New("index: a CID whose multihash cannot be read")
		}
		return
	}
	if code == multihash.IDENTITY {
		return
	}
	bi.bucket(code, len(digest)).put(digest, uint64(offset))
}

func (bi *blockIndex) bucket(code uint64, digest int) *indexBucket {
	for i := range bi.buckets {
		if b := &bi.buckets[i]; b.code == code && b.digest == digest {
			return b
		}
	}
	bi.buckets = append(bi.buckets, indexBucket{code: code, digest: digest})
	return &bi.buckets[len(bi.buckets)-1]
}

// cidDigest returns the multihash code and digest of a CID in its binary
// form, without allocating: a CIDv0 is a bare sha2-256 multihash, a CIDv1
// its version and codec varints, then the multihash.
func cidDigest(key string) (code uint64, digest string, ok bool) {
	s := key
	if !(len(s) == 34 && s[0] == multihash.SHA2_256 && s[1] == 32) {
		for range 2 { // version, codec
			if _, s, ok = uvarint(s); !ok {
				return 0, "", false
			}
		}
	}
	if code, s, ok = uvarint(s); !ok {
		return 0, "", false
	}
	n, s, ok := uvarint(s)
	if !ok || n != uint64(len(s)) {
		return 0, "", false
	}
	return code, s, true
}

func uvarint(s string) (uint64, string, bool) {
	var x uint64
	for i := 0; i < len(s) && i < varint.MaxLenUvarint63; i++ {
		b := s[i]
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return x, s[i+1:], true
		}
	}
	return 0, "", false
}

// records sorts one bucket's fixed-width records by digest, then offset
// (go-car sorts by digest alone; the offset makes equal digests, the same
// bytes under two codecs, come out in one order).
type records struct {
	b     []byte
	width int
	tmp   []byte
}

func (r records) Len() int { return len(r.b) / r.width }
func (r records) Less(i, j int) bool {
	a, b := r.b[i*r.width:(i+1)*r.width], r.b[j*r.width:(j+1)*r.width]
	d := len(a) - 8
	if c := bytes.Compare(a[:d], b[:d]); c != 0 {
		return c < 0
	}
	return binary.LittleEndian.Uint64(a[d:]) < binary.LittleEndian.Uint64(b[d:])
}
func (r records) Swap(i, j int) {
	a, b := r.b[i*r.width:(i+1)*r.width], r.b[j*r.width:(j+1)*r.width]
	copy(r.tmp, a)
	copy(a, b)
	copy(b, r.tmp)
}

// marshal returns the index's bytes, as index.WriteTo writes a
// MultihashIndexSorted: its codec (varint); the number of hash codes
// (int32); for each code, ascending, the code (uint64), the number of
// digest widths (int32) and for each width, ascending, the record width
// (uint32), the records' length in bytes (int64) and the sorted records.
// Integers are little-endian. The records are sorted in place and given
// up: marshal is called once.
func (bi *blockIndex) marshal() ([]byte, error) {
	if bi.err != nil {
		return nil, bi.err
	}
	slices.SortFunc(bi.buckets, func(a, b indexBucket) int {
		if a.code != b.code {
			if a.code < b.code {
				return -1
			}
			return 1
		}
		return a.digest - b.digest
	})
	size := varint.UvarintSize(uint64(multicodec.CarMultihashIndexSorted)) + 4
	codes := 0
	for i, b := range bi.buckets {
		if i == 0 || b.code != bi.buckets[i-1].code {
			size += 8 + 4
			codes++
		}
		size += 4 + 8 + b.bytes
	}
	out := binary.AppendUvarint(make([]byte, 0, size), uint64(multicodec.CarMultihashIndexSorted))
	out = binary.LittleEndian.AppendUint32(out, uint32(codes))
	for i := 0; i < len(bi.buckets); {
		code := bi.buckets[i].code
		j := i
		for j < len(bi.buckets) && bi.buckets[j].code == code {
			j++
		}
		out = binary.LittleEndian.AppendUint64(out, code)
		out = binary.LittleEndian.AppendUint32(out, uint32(j-i))
		for _, b := range bi.buckets[i:j] {
			width := b.digest + 8
			out = binary.LittleEndian.AppendUint32(out, uint32(width))
			out = binary.LittleEndian.AppendUint64(out, uint64(b.bytes))
			at := len(out)
			out = out[:at+b.bytes]
			sortInto(out[at:], b.chunks, width)
		}
		i = j
	}
	bi.buckets = nil
	return out, nil
}

// sortInto writes src's records of width bytes into dst, sorted. Digests
// are hashes, so their leading bytes spread them evenly: the records are
// scattered by their leading 8 to 16 bits (about four records a range),
// in one pass, and each range of equal leading bytes, a few records, is sorted
// where it lands. A sort.Sort of all the records cost a 1 KiB-block fetch
// 10 to 13 % (BenchmarkIndexOverhead; the sort was the whole of it in the
// profile); this is linear. A range made long on
// purpose (digests chosen to share their leading bytes) is sorted by
// sort.Sort, so it costs n log n, not n².
func sortInto(dst []byte, chunks [][]byte, width int) {
	n := len(dst) / width
	digest := width - 8
	tmp := make([]byte, width)
	if n < 64 || digest < 2 {
		at := 0
		for _, c := range chunks {
			at += copy(dst[at:], c)
		}
		sort.Sort(records{b: dst, width: width, tmp: tmp})
		return
	}
	// About four records a range: the counts stay in cache.
	prefixBits := min(max(bits.Len(uint(n))-2, 8), 16)
	buckets := 1 << prefixBits
	shift := 16 - prefixBits
	prefix := func(r []byte) int { return (int(r[0])<<8 | int(r[1])) >> shift }
	start := make([]int, buckets+1)
	for _, c := range chunks {
		for i := 0; i < len(c); i += width {
			start[prefix(c[i:])+1]++
		}
	}
	for k := 1; k <= buckets; k++ {
		start[k] += start[k-1]
	}
	next := slices.Clone(start[:buckets])
	for _, c := range chunks {
		for i := 0; i < len(c); i += width {
			k := prefix(c[i:])
			copy(dst[next[k]*width:], c[i:i+width])
			next[k]++
		}
	}
	for k := range buckets {
		lo, hi := start[k], start[k+1]
		if hi-lo < 2 {
			continue
		}
		r := records{b: dst[lo*width : hi*width], width: width, tmp: tmp}
		if hi-lo > 16 {
			sort.Sort(r)
			continue
		}
		for i := 1; i < r.Len(); i++ {
			for j := i; j > 0 && r.Less(j, j-1); j-- {
				r.Swap(j, j-1)
			}
		}
	}
}
