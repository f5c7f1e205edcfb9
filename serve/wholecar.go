package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/ipfs/boxo/gateway"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-varint"

	"github.com/pickup-ipfs/pickup/serve/locate"
)

// backend is boxo's blocks backend over the carpark's blockstore, but for
// the whole DAG of a pinned root, which is the stored CAR.
type backend struct {
	*gateway.BlocksBackend
	blocks *Blockstore
}

// GetCAR streams the stored CAR when the request is for all of a pinned
// root's DAG, depth first, without duplicates, under the root it was
// pinned as (the CAR's header names that root, so another form of the CID
// is composed by boxo, with its own header). A root no pin holds is not
// found (boxo would answer a CAR with no blocks).
func (b *backend) GetCAR(ctx context.Context, p path.ImmutablePath, params gateway.CarParams) (gateway.ContentPathMetadata, io.ReadCloser, error) {
	root := p.RootCid()
	if len(p.Segments()) == 2 && wholeDAG(params) {
		loc, ok, err := b.blocks.carOf(ctx, root)
		if err != nil {
			return gateway.ContentPathMetadata{}, nil, err
		}
		if ok {
			rc, err := b.blocks.carpark.ReadRange(ctx, loc.Key, 0, -1)
			if err != nil {
				return gateway.ContentPathMetadata{}, nil, fmt.Errorf("read CAR %s: %w", loc.Key, err)
			}
			md := gateway.ContentPathMetadata{LastSegment: p}
			return md, newVerifiedCAR(ctx, rc, root, loc, b.blocks.opts.Reporter), nil
		}
	}
	has, err := b.blocks.Has(ctx, root)
	if err != nil {
		return gateway.ContentPathMetadata{}, nil, err
	}
	if !has {
		return gateway.ContentPathMetadata{}, nil, format.ErrNotFound{Cid: root}
	}
	return b.BlocksBackend.GetCAR(ctx, p, params)
}

// wholeDAG reports whether params ask for a whole DAG, depth first, each
// block once: what a stored CAR is.
func wholeDAG(params gateway.CarParams) bool {
	return params.Range == nil &&
		(params.Scope == "" || params.Scope == gateway.DagScopeAll) &&
		(params.Order == gateway.DagOrderUnspecified || params.Order == gateway.DagOrderDFS) &&
		(params.Duplicates == gateway.DuplicateBlocksUnspecified || params.Duplicates == gateway.DuplicateBlocksExcluded)
}

// carOf returns where the CAR of root's DAG is, pinned as root (the same
// CID, version and codec, as its header names it), if a pin holds it.
func (b *Blockstore) carOf(ctx context.Context, root cid.Cid) (locate.Location, bool, error) {
	locs, err := b.held(ctx, root)
	if err != nil {
		return locate.Location{}, false, err
	}
	for _, loc := range locs {
		if loc.Root.Equals(root) {
			return loc, true, nil
		}
	}
	return locate.Location{}, false, nil
}

// verifiedBatch is about how many bytes of sections a verifiedCAR checks
// and hands on at once; verifiedAhead, how many batches it reads ahead of
// the client while they are checked.
const (
	verifiedBatch = 1 << 20
	verifiedAhead = 4
)

// verifiedCAR passes a stored CAR on, byte for byte, checking that its
// header names root alone and every block against its CID before any
// byte of the block is handed on. A damaged block ends the stream, after
// the sound sections before it, with an error (boxo then marks the
// response cut short), and is reported.
//
// It is a pipeline, so that reading the object, hashing and sending
// overlap: one goroutine frames the stream into batches of whole
// sections, a hasher per CPU checks them, and Read hands them on in
// order, each once it is checked.
type verifiedCAR struct {
	ctx      context.Context
	cancel   context.CancelFunc
	closer   io.Closer
	root     cid.Cid
	loc      locate.Location
	reporter Reporter

	ordered chan *carBatch
	free    chan []byte
	done    sync.WaitGroup

	cur     *carBatch
	pending []byte
	err     error
}

// carBatch is whole sections of the CAR (or its header), from offset.
type carBatch struct {
	buf    []byte
	offset int64
	// starts are where the sections begin in buf; none for the header.
	starts []int
	// cut is why the stream ends after buf: a framing or read error.
	cut error
	// checked gets the index of the first damaged section and why (or
	// len(starts) and nil) once the batch is checked.
	checked chan checkResult
}

type checkResult struct {
	first int
	block cid.Cid
	err   error
}

func newVerifiedCAR(ctx context.Context, rc io.ReadCloser, root cid.Cid, loc locate.Location, r Reporter) *verifiedCAR {
	ctx, cancel := context.WithCancel(ctx)
	v := &verifiedCAR{ctx: ctx, cancel: cancel, closer: rc, root: root, loc: loc, reporter: r,
		ordered: make(chan *carBatch, verifiedAhead), free: make(chan []byte, verifiedAhead+2)}
	work := make(chan *carBatch, verifiedAhead)
	v.done.Go(func() { v.split(rc, work) })
	for range max(1, runtime.GOMAXPROCS(0)) {
		v.done.Go(func() {
			for b := range work {
				b.checked <- checkSections(b)
			}
		})
	}
	return v
}

func (v *verifiedCAR) Read(p []byte) (int, error) {
	for len(v.pending) == 0 {
		if v.err != nil {
			return 0, v.err
		}
		v.pending, v.err = v.next()
	}
	n := copy(p, v.pending)
	v.pending = v.pending[n:]
	return n, nil
}

// WriteTo writes the checked bytes to w as each batch is checked, sparing
// io.Copy's buffer (boxo copies a CAR to the response with it).
func (v *verifiedCAR) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(v.pending) == 0 && v.err == nil {
			v.pending, v.err = v.next()
		}
		if len(v.pending) > 0 {
			n, err := w.Write(v.pending)
			total += int64(n)
			v.pending = v.pending[n:]
			if err != nil {
				return total, err
			}
			continue
		}
		if v.err == io.EOF {
			return total, nil
		}
		return total, v.err
	}
}

// next returns the checked bytes of the next batch, and the error that
// ends the stream after them.
func (v *verifiedCAR) next() ([]byte, error) {
	if v.cur != nil {
		v.recycle(v.cur.buf)
		v.cur = nil
	}
	var b *carBatch
	var ok bool
	select {
	case b, ok = <-v.ordered:
	case <-v.ctx.Done():
		return nil, v.ctx.Err()
	}
	if !ok {
		return nil, io.EOF
	}
	v.cur = b
	var res checkResult
	select {
	case res = <-b.checked:
	case <-v.ctx.Done():
		return nil, v.ctx.Err()
	}
	if res.err != nil {
		at := b.offset + int64(b.starts[res.first])
		return b.buf[:b.starts[res.first]], v.damagedBlock(at, res.block, res.err)
	}
	if b.cut != nil {
		return b.buf, b.cut
	}
	return b.buf, nil
}

// Close stops the pipeline and closes the object.
func (v *verifiedCAR) Close() error {
	v.cancel()
	err := v.closer.Close()
	v.done.Wait()
	return err
}

func (v *verifiedCAR) buffer() []byte {
	select {
	case b := <-v.free:
		return b[:0]
	default:
		return make([]byte, 0, verifiedBatch+maxSectionBytes)
	}
}

func (v *verifiedCAR) recycle(b []byte) {
	select {
	case v.free <- b:
	default:
	}
}

// split reads the CAR into batches and frames them: the header (checked
// here: it is no block), then whole sections, about verifiedBatch bytes a
// batch, read straight into the batch's buffer (the bytes of a section
// cut by the end of a read go on to the next batch), handed to the hashers
// and, in order, to Read.
func (v *verifiedCAR) split(src io.Reader, work chan<- *carBatch) {
	defer close(work)
	defer close(v.ordered)
	send := func(b *carBatch) bool {
		select {
		case v.ordered <- b:
		case <-v.ctx.Done():
			return false
		}
		select {
		case work <- b:
			return true
		case <-v.ctx.Done():
			return false
		}
	}
	var (
		carry  []byte
		offset int64
		header = true
		eof    bool
	)
	// read reads once into the room left in b's buffer, and returns how
	// many bytes it got; the source's end sets eof, a failure b.cut.
	read := func(b *carBatch) int {
		n, err := src.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		if err == io.EOF {
			eof = true
		} else if err != nil {
			b.cut = fmt.Errorf("read CAR %s at %d: %w", v.loc.Key, offset+int64(len(b.buf)), err)
		}
		return n
	}
	for {
		b := &carBatch{buf: append(v.buffer(), carry...), offset: offset, checked: make(chan checkResult, 1)}
		pos := 0
		for {
			// Read until the batch is full, or the source ends, or fails.
			for len(b.buf) < verifiedBatch && !eof && b.cut == nil {
				read(b)
			}
			if header {
				end, err := v.frameHeader(b.buf)
				if err != nil {
					b.buf, b.cut = b.buf[:0], err
					send(b)
					return
				}
				header, pos = false, end
			}
			more, err := frameSections(b, &pos)
			if err != nil {
				b.cut = v.damaged(offset+int64(pos), err)
				break
			}
			// A section longer than what is read so far is read on, into
			// the same batch (its buffer has room for the largest).
			if !more || eof || b.cut != nil || len(b.starts) > 0 || len(b.buf) == cap(b.buf) {
				break
			}
			if len(b.buf) >= verifiedBatch {
				b.buf = slices.Grow(b.buf, maxSectionBytes)
			}
			for len(b.buf) < cap(b.buf) && !eof && b.cut == nil && read(b) == 0 {
			}
		}
		carry = append(carry[:0], b.buf[pos:]...)
		b.buf = b.buf[:pos]
		switch {
		case b.cut != nil:
		case eof && len(carry) > 0:
			b.cut = v.damaged(offset+int64(pos), errors.New("the object ends inside a section"))
		case eof:
			b.cut = io.EOF
		}
		offset += int64(len(b.buf))
		if !send(b) || b.cut != nil {
			return
		}
	}
}

// frameHeader returns where the CAR's header, at the start of buf, ends:
// it must be {roots: [root], version: 1}.
func (v *verifiedCAR) frameHeader(buf []byte) (int, error) {
	n, vlen, err := varint.FromUvarint(buf)
	if err != nil || n == 0 || n > 1<<10 || vlen+int(n) > len(buf) {
		return 0, v.damaged(0, fmt.Errorf("header of %d bytes in %d: %v", n, len(buf), err))
	}
	if err := checkHeader(buf[vlen:vlen+int(n)], v.root); err != nil {
		return 0, v.damaged(0, err)
	}
	return vlen + int(n), nil
}

// frameSections records in b the whole sections from *pos on, moving *pos
// past them; more reports that the bytes after *pos begin a section not
// yet whole (or nothing). An error is a section that cannot be one.
func frameSections(b *carBatch, pos *int) (more bool, err error) {
	for *pos < len(b.buf) {
		n, vlen, err := varint.FromUvarint(b.buf[*pos:])
		if errors.Is(err, varint.ErrUnderflow) {
			return true, nil
		}
		if err != nil || n == 0 || n > maxSectionBytes {
			return false, fmt.Errorf("section length %d: %v", n, err)
		}
		end := *pos + vlen + int(n)
		if end > len(b.buf) {
			return true, nil
		}
		b.starts = append(b.starts, *pos)
		*pos = end
	}
	return true, nil
}

// checkSections checks every section of b against its own CID.
func checkSections(b *carBatch) checkResult {
	for i, start := range b.starts {
		end := len(b.buf)
		if i+1 < len(b.starts) {
			end = b.starts[i+1]
		}
		if c, _, err := locate.Section(b.buf[start:end]); err != nil {
			return checkResult{first: i, block: c, err: err}
		}
	}
	return checkResult{first: len(b.starts)}
}

// damaged reports damage found at offset of the CAR, and returns the
// error that ends the stream.
func (v *verifiedCAR) damaged(offset int64, err error) error {
	return v.damagedBlock(offset, cid.Undef, err)
}

// damagedBlock is damaged for a section whose CID is known (block; the
// root's when it is not).
func (v *verifiedCAR) damagedBlock(offset int64, block cid.Cid, err error) error {
	if !block.Defined() {
		block = v.root
	}
	loc := v.loc
	loc.Offset, loc.Length = offset, 0
	err = fmt.Errorf("%w: CAR %s at %d: %v", ErrDamaged, loc.Key, offset, err)
	v.reporter.Damaged(v.ctx, Damage{Location: loc, Block: block, Err: err})
	return err
}

// checkHeader checks a CARv1 header's body (dag-cbor) names root alone.
func checkHeader(body []byte, root cid.Cid) error {
	nb := basicnode.Prototype.Map.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(body)); err != nil {
		return fmt.Errorf("header: %v", err)
	}
	n := nb.Build()
	version, err := n.LookupByString("version")
	if err != nil {
		return fmt.Errorf("header has no version")
	}
	if v, err := version.AsInt(); err != nil || v != 1 {
		return fmt.Errorf("header is not a CARv1's")
	}
	roots, err := n.LookupByString("roots")
	if err != nil || roots.Kind() != datamodel.Kind_List || roots.Length() != 1 {
		return fmt.Errorf("header does not name one root")
	}
	first, err := roots.LookupByIndex(0)
	if err != nil {
		return fmt.Errorf("header root: %v", err)
	}
	link, err := first.AsLink()
	if err != nil || link.String() != root.String() {
		return fmt.Errorf("header names another root")
	}
	return nil
}
