package dag

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-varint"

	"github.com/pickup-ipfs/pickup/pin"
)

const (
	// maxCIDBytes bounds a CID in a CAR section: version and codec varints,
	// the hash code and length, and the longest digest verifcid accepts
	// (identity, 128 bytes).
	maxCIDBytes = 256
	// maxHeaderBytes bounds a CARv1 header. Ours has one root; a gateway
	// has no reason to send a long list.
	maxHeaderBytes = 64 << 10
	// readBufferBytes is the reader's buffer: big enough to peek at a whole
	// CID, small next to a block, which is read straight into its own slice.
	readBufferBytes = 64 << 10
)

// CARReader reads the blocks of a CARv1 stream from a source, checking the
// framing only: sizes, CIDs, and that the stream does not end inside a
// section. Whether the blocks are the right ones is the Fetcher's business.
// It reads the header on the first call to Next.
type CARReader struct {
	br       *bufio.Reader
	maxBlock int
	header   bool
	roots    []cid.Cid
	// free holds buffers of blocks the Fetcher has written (Recycle).
	free chan []byte
}

// freeBuffers bounds the buffers kept for reuse: about what the Fetcher's
// queues hold.
const freeBuffers = 24

// NewCARReader returns a reader of the CARv1 stream r that refuses blocks
// over maxBlockBytes before reading them.
func NewCARReader(r io.Reader, maxBlockBytes int) *CARReader {
	return &CARReader{br: bufio.NewReaderSize(r, readBufferBytes), maxBlock: maxBlockBytes, free: make(chan []byte, freeBuffers)}
}

// Roots returns the roots the header named, once Next has read it. The
// trustless gateway spec leaves them unspecified, so the Fetcher does not
// rely on them: the first block must be the root it asked for.
func (r *CARReader) Roots() []cid.Cid { return r.roots }

// Next returns the next block, or io.EOF at the end of the stream. Errors
// are *Failures where the stream itself is at fault: missing_block when it
// ends inside a section, block_too_big, sources_failed for bad framing.
func (r *CARReader) Next() (Block, error) {
	if !r.header {
		if err := r.readHeader(); err != nil {
			return Block{}, err
		}
		r.header = true
	}
	if err := r.checkCutShort(); err != nil {
		return Block{}, err
	}
	length, err := varint.ReadUvarint(r.br)
	switch {
	case err == io.EOF:
		return Block{}, io.EOF
	case err != nil:
		return Block{}, r.readError("section length", err)
	case length == 0:
		return Block{}, malformed("empty section")
	case length > uint64(r.maxBlock)+maxCIDBytes:
		return Block{}, Fail(pin.ReasonBlockTooBig, "CAR section of %d bytes is over the %d byte block limit", length, r.maxBlock)
	}
	peek, err := r.br.Peek(int(min(length, maxCIDBytes)))
	if err != nil {
		return Block{}, r.readError("section CID", err)
	}
	n, c, err := cid.CidFromBytes(peek)
	if err != nil {
		return Block{}, malformed("section CID: %v", err)
	}
	if _, err := r.br.Discard(n); err != nil {
		return Block{}, r.readError("section CID", err)
	}
	size := length - uint64(n)
	if size > uint64(r.maxBlock) {
		return Block{}, Fail(pin.ReasonBlockTooBig, "block %s is %d bytes, over the %d byte limit", c, size, r.maxBlock)
	}
	data := r.buffer(int(size))
	if _, err := io.ReadFull(r.br, data); err != nil {
		return Block{}, r.readError("block "+c.String(), err)
	}
	return Block{CID: c, Data: data}, nil
}

// cutShortMark starts what boxo's gateway appends to a CAR it could not
// finish ("\n\n[Gateway Error: CAR stream truncated, response is
// incomplete]"), a missing block or its own timeout: a CAR has no other way
// to say so in band. No section starts so (0x0a is no CID's first byte).
var cutShortMark = []byte("\n\n")

// checkCutShort reports the stream's end if the server marked it cut short.
func (r *CARReader) checkCutShort() error {
	peek, err := r.br.Peek(len(cutShortMark))
	if err != nil || !bytes.Equal(peek, cutShortMark) {
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(r.br, 256))
	return FailDetail(pin.ReasonMissingBlock, string(bytes.TrimSpace(msg)), "the source marked the CAR cut short")
}

// buffer returns a slice of size bytes, reused if one is free.
func (r *CARReader) buffer(size int) []byte {
	select {
	case b := <-r.free:
		if cap(b) >= size {
			return b[:size]
		}
	default:
	}
	return make([]byte, size)
}

// Recycle implements Recycler. It is safe to call from any goroutine.
func (r *CARReader) Recycle(data []byte) {
	select {
	case r.free <- data:
	default:
	}
}

func (r *CARReader) readHeader() error {
	length, err := varint.ReadUvarint(r.br)
	switch {
	case err == io.EOF:
		return Fail(pin.ReasonRootNotFound, "empty response: no CAR header")
	case err != nil:
		return r.readError("CAR header length", err)
	case length == 0 || length > maxHeaderBytes:
		return malformed("CAR header of %d bytes", length)
	}
	raw := make([]byte, length)
	if _, err := io.ReadFull(r.br, raw); err != nil {
		return r.readError("CAR header", err)
	}
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(raw)); err != nil {
		return FailDetail(pin.ReasonSourcesFailed, err.Error(), "malformed CAR: the header is not DAG-CBOR")
	}
	header := nb.Build()
	version, err := lookupInt(header, "version")
	if err != nil {
		return malformed("CAR header: %v", err)
	}
	if version != 1 {
		return malformed("CAR version %d, asked for version 1", version)
	}
	roots, err := header.LookupByString("roots")
	if err != nil || roots.Kind() != datamodel.Kind_List {
		return malformed("CAR header has no roots list")
	}
	for it := roots.ListIterator(); !it.Done(); {
		_, v, err := it.Next()
		if err != nil {
			return FailDetail(pin.ReasonSourcesFailed, err.Error(), "malformed CAR: the header's roots do not decode")
		}
		var links []cid.Cid
		if v.Kind() != datamodel.Kind_Link || collectLinks(v, &links) != nil {
			return malformed("CAR header root is not a link")
		}
		r.roots = append(r.roots, links...)
	}
	return nil
}

func lookupInt(n datamodel.Node, key string) (int64, error) {
	if n.Kind() != datamodel.Kind_Map {
		return 0, fmt.Errorf("%s is not a map", n.Kind())
	}
	v, err := n.LookupByString(key)
	if err != nil {
		return 0, fmt.Errorf("no %q", key)
	}
	return v.AsInt()
}

// readError classifies a failed read: a stream that ends early lacks the
// blocks that were still to come (a gateway that meets a missing block ends
// its response that way); anything else is the connection's failure.
func (r *CARReader) readError(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return Fail(pin.ReasonMissingBlock, "CAR stream ended inside the %s", what)
	}
	if errors.Is(err, varint.ErrNotMinimal) || errors.Is(err, varint.ErrOverflow) {
		return malformed("%s: %v", what, err)
	}
	if _, ok := errors.AsType[*Failure](err); ok {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return FailRequest("read the "+what, err)
}

func malformed(format string, args ...any) error {
	return Fail(pin.ReasonSourcesFailed, "malformed CAR: "+format, args...)
}

// CARStream is a Blocks over a CAR that is opened on the first Next, so
// that waiting for the response counts toward the Fetcher's stall watchdog
// and ends with the fetch's context. It counts the bytes it reads as
// progress. The HTTP sources build on it.
type CARStream struct {
	open     func(progress func()) (io.ReadCloser, error)
	maxBlock int
	body     io.ReadCloser
	// car is set by Next and read by Recycle, from another goroutine.
	car      atomic.Pointer[CARReader]
	progress atomic.Int64
}

// NewCARStream returns a stream that calls open on the first Next. open
// calls progress whenever it hears from the server before the CAR starts
// (a response it will retry, say), so that waiting it out is not a stall.
func NewCARStream(open func(progress func()) (io.ReadCloser, error), maxBlockBytes int) *CARStream {
	return &CARStream{open: open, maxBlock: maxBlockBytes}
}

// Next implements Blocks.
func (s *CARStream) Next() (Block, error) {
	car := s.car.Load()
	if car == nil {
		body, err := s.open(func() { s.progress.Add(1) })
		if err != nil {
			return Block{}, err
		}
		s.body = body
		car = NewCARReader(countingReader{r: body, n: &s.progress}, s.maxBlock)
		s.car.Store(car)
	}
	return car.Next()
}

// Close implements Blocks.
func (s *CARStream) Close() error {
	if s.body == nil {
		return nil
	}
	return s.body.Close()
}

// Recycle implements Recycler.
func (s *CARStream) Recycle(data []byte) {
	if car := s.car.Load(); car != nil {
		car.Recycle(data)
	}
}

// Progress implements Progressor: bytes read, plus responses heard.
func (s *CARStream) Progress() int64 { return s.progress.Load() }

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
