// Package carupload keeps the CARs tenants send instead of asking pickup to
// fetch (`POST /pins` with Content-Type application/vnd.ipld.car): the
// uploads area.
//
// An upload is untrusted input, read once, as it arrives: Receive streams
// it to storage and checks only what can be checked without the DAG, at
// once, so that a bad body is refused before it is all read: the CARv1
// framing (a section cut short is a truncated body), that the header names
// the requested root, and the byte and block limits. As it goes it writes
// the upload's section index (each block's CID, offset and length, about
// 50 bytes a block, to storage beside the upload, never held in memory).
// Whether the blocks hash to their CIDs, whether the DAG is complete from
// the root and whether anything unrequested came along is the fetch
// pipeline's business (fetcher/dag/upload reads an upload as a source of
// fetcher/dag, which checks all of it and writes the canonical CAR).
//
// Two areas keep uploads, with the same behaviour (one set of tests runs
// over both): Dir, a local directory, for a gateway and fetchers sharing a
// disk (`pickup run`); S3, a bucket and prefix, for a gateway and fetchers
// on separate machines (Lambda, Fargate).
//
// The package is WASM-clean but for Dir (files) and S3 (the network),
// which build everywhere.
package carupload

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-varint"
)

// MediaType is the Content-Type of a CAR upload.
const MediaType = "application/vnd.ipld.car"

// Defaults of Limits: fetcher/dag's, with web3-storage/pickup's names.
const (
	// DefaultMaxCARBytes is MAX_CAR_BYTES: 31 GiB.
	DefaultMaxCARBytes int64 = 31 << 30
	// DefaultMaxBlockBytes is the block size every IPFS implementation
	// agrees to move: 2 MiB.
	DefaultMaxBlockBytes = 2 << 20
)

const (
	// maxHeaderBytes bounds a CARv1 header: `ipfs dag export` writes one
	// root, some 60 bytes.
	maxHeaderBytes = 64 << 10
	// maxCIDBytes bounds a section's CID (the longest digest verifcid
	// accepts is 128 bytes).
	maxCIDBytes = 256
)

// Limits bound an upload. Zero fields take their defaults.
type Limits struct {
	// MaxCARBytes bounds the upload's bytes, header and framing included.
	MaxCARBytes int64
	// MaxBlockBytes bounds each block.
	MaxBlockBytes int
}

// WithDefaults returns l with its zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxCARBytes == 0 {
		l.MaxCARBytes = DefaultMaxCARBytes
	}
	if l.MaxBlockBytes == 0 {
		l.MaxBlockBytes = DefaultMaxBlockBytes
	}
	return l
}

// Errors Receive refuses an upload with; the gateway maps them to HTTP.
var (
	// ErrTooBig: the upload passes MaxCARBytes (413).
	ErrTooBig = errors.New("upload too big")
	// ErrBadCAR: the body is not a CARv1 of the requested root: bad
	// framing, a truncated body, a header that does not name the root,
	// a block over the block limit (400).
	ErrBadCAR = errors.New("not a CARv1 of the requested root")
)

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadCAR}, args...)...)
}

// Received describes an upload kept whole.
type Received struct {
	// Key names it in the uploads area.
	Key string
	// Bytes is its length; Blocks its sections.
	Bytes, Blocks int64
}

// Section is where one block lies in an upload: its data, without the
// section's length and CID.
type Section struct {
	Offset int64
	Length int64
}

// Receive copies the CARv1 in r to car, checking it as it goes (see the
// package doc), and writes its section index to index. It returns as soon
// as the body breaks a rule, with an error wrapping ErrTooBig or ErrBadCAR,
// having read no further; an error of car, index or r (a client gone, a
// read deadline passed) is returned as it is.
func Receive(r io.Reader, car, index io.Writer, root cid.Cid, limits Limits) (Received, error) {
	limits = limits.WithDefaults()
	br := bufio.NewReaderSize(r, 64<<10)
	cw := &countWriter{w: car}
	iw := bufio.NewWriterSize(index, 16<<10)
	var res Received
	// A read that ends the body early is a truncated body; any other read
	// error is the connection's (or the deadline's), returned as it is.
	cut := func(what string, err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return bad("the body ends inside the %s, after %d bytes: truncated", what, cw.n)
		}
		if errors.Is(err, varint.ErrNotMinimal) || errors.Is(err, varint.ErrOverflow) {
			return bad("the %s after byte %d is not a valid varint", what, cw.n)
		}
		return err
	}
	hlen, err := varint.ReadUvarint(br)
	switch {
	case err == io.EOF:
		return res, bad("empty body: no CAR header")
	case err != nil:
		return res, cut("CAR header length", err)
	case hlen == 0 || hlen > maxHeaderBytes:
		return res, bad("a CAR header of %d bytes", hlen)
	}
	raw := make([]byte, hlen)
	if _, err := io.ReadFull(br, raw); err != nil {
		return res, cut("CAR header", err)
	}
	if err := checkHeader(raw, root); err != nil {
		return res, err
	}
	if _, err := cw.Write(varint.ToUvarint(hlen)); err != nil {
		return res, err
	}
	if _, err := cw.Write(raw); err != nil {
		return res, err
	}
	buf := make([]byte, 64<<10)
	var rec []byte
	for {
		length, err := varint.ReadUvarint(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, cut("section length", err)
		}
		start := cw.n
		total := start + int64(varint.UvarintSize(length)) + int64(length)
		switch {
		case length == 0:
			return res, bad("an empty section at byte %d", start)
		case length > uint64(limits.MaxBlockBytes)+maxCIDBytes:
			return res, bad("a section of %d bytes at byte %d, over the %d byte block limit", length, start, limits.MaxBlockBytes)
		case total > limits.MaxCARBytes:
			return res, fmt.Errorf("%w: the CAR passes %d bytes (MAX_CAR_BYTES)", ErrTooBig, limits.MaxCARBytes)
		}
		peek, err := br.Peek(int(min(length, maxCIDBytes)))
		if err != nil {
			return res, cut("section CID", err)
		}
		n, c, err := cid.CidFromBytes(peek)
		if err != nil {
			return res, bad("the section at byte %d does not start with a CID: %v", start, err)
		}
		if _, err := cw.Write(varint.ToUvarint(length)); err != nil {
			return res, err
		}
		dataOffset := cw.n + int64(n)
		if _, err := io.CopyBuffer(cw, io.LimitReader(br, int64(length)), buf); err != nil {
			return res, err
		}
		if cw.n != total {
			return res, bad("the body ends inside the block %s, after %d bytes: truncated", c, cw.n)
		}
		rec = appendEntry(rec[:0], c, dataOffset, int64(length)-int64(n))
		if _, err := iw.Write(rec); err != nil {
			return res, err
		}
		res.Blocks++
	}
	if res.Blocks == 0 {
		return res, bad("the CAR has no blocks")
	}
	res.Bytes = cw.n
	return res, iw.Flush()
}

// checkHeader checks a CARv1 header: version 1, the requested root among
// its roots (a CIDv0 root and its CIDv1 are the same root).
func checkHeader(raw []byte, root cid.Cid) error {
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(raw)); err != nil {
		return bad("the CAR header is not DAG-CBOR")
	}
	h := nb.Build()
	if h.Kind() != datamodel.Kind_Map {
		return bad("the CAR header is not a map")
	}
	v, err := h.LookupByString("version")
	if err != nil {
		return bad("the CAR header has no version")
	}
	version, err := v.AsInt()
	if err != nil || version != 1 {
		return bad("CAR version %v: send a CARv1 (what `ipfs dag export` writes)", v)
	}
	roots, err := h.LookupByString("roots")
	if err != nil || roots.Kind() != datamodel.Kind_List {
		return bad("the CAR header has no roots list")
	}
	var named []string
	for it := roots.ListIterator(); !it.Done(); {
		_, r, err := it.Next()
		if err != nil {
			return bad("the CAR header's roots do not decode")
		}
		l, err := r.AsLink()
		if err != nil {
			return bad("a root of the CAR header is not a link")
		}
		cl, ok := l.(cidlink.Link)
		if !ok {
			return bad("a root of the CAR header is not a CID")
		}
		if cl.Cid.Type() == root.Type() && bytes.Equal(cl.Cid.Hash(), root.Hash()) {
			return nil
		}
		named = append(named, cl.Cid.String())
	}
	return bad("the CAR header names the roots %v, not the requested %s", named, root)
}

// appendEntry appends one index entry: the CID's length and bytes, then
// the data's offset and length, fixed 8 bytes each.
func appendEntry(dst []byte, c cid.Cid, offset, length int64) []byte {
	b := c.Bytes()
	dst = append(dst, varint.ToUvarint(uint64(len(b)))...)
	dst = append(dst, b...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	return binary.BigEndian.AppendUint64(dst, uint64(length))
}

// ReadIndex calls fn for each entry of an index Receive wrote, in the
// order of the upload.
func ReadIndex(r io.Reader, fn func(c cid.Cid, s Section) error) error {
	br := bufio.NewReader(r)
	var fixed [16]byte
	for {
		n, err := varint.ReadUvarint(br)
		if err == io.EOF {
			return nil
		}
		if err != nil || n == 0 || n > maxCIDBytes {
			return fmt.Errorf("read upload index: bad entry")
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return fmt.Errorf("read upload index: %w", err)
		}
		if _, err := io.ReadFull(br, fixed[:]); err != nil {
			return fmt.Errorf("read upload index: %w", err)
		}
		c, err := cid.Cast(b)
		if err != nil {
			return fmt.Errorf("read upload index: %w", err)
		}
		s := Section{Offset: int64(binary.BigEndian.Uint64(fixed[:8])), Length: int64(binary.BigEndian.Uint64(fixed[8:]))}
		if err := fn(c, s); err != nil {
			return err
		}
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
