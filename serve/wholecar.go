package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

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
			md := gateway.ContentPathMetadata{PathSegmentRoots: []cid.Cid{root}, LastSegment: p}
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

// verifiedBatch is about how many bytes of checked sections a verifiedCAR
// hands on at once.
const verifiedBatch = 256 << 10

// verifiedCAR passes a stored CAR on, byte for byte, checking its header
// names root alone and every block against its CID before any byte of
// the block is handed on. A damaged block ends the stream with an error
// (boxo then marks the response truncated) and is reported.
type verifiedCAR struct {
	ctx      context.Context
	src      *bufio.Reader
	closer   io.Closer
	root     cid.Cid
	loc      locate.Location
	reporter Reporter
	header   bool
	offset   int64
	pending  []byte
	out      []byte
	err      error
}

func newVerifiedCAR(ctx context.Context, rc io.ReadCloser, root cid.Cid, loc locate.Location, r Reporter) *verifiedCAR {
	return &verifiedCAR{ctx: ctx, src: bufio.NewReaderSize(rc, 1<<20), closer: rc, root: root, loc: loc, reporter: r}
}

func (v *verifiedCAR) Read(p []byte) (int, error) {
	for len(v.pending) == 0 {
		if v.err != nil {
			return 0, v.err
		}
		v.pending, v.err = v.fill(v.out[:0])
		v.out = v.pending
	}
	n := copy(p, v.pending)
	v.pending = v.pending[n:]
	return n, nil
}

func (v *verifiedCAR) Close() error { return v.closer.Close() }

// fill appends checked bytes to out: the header first, then whole
// sections, about verifiedBatch bytes at a time.
func (v *verifiedCAR) fill(out []byte) ([]byte, error) {
	if !v.header {
		v.header = true
		return v.readHeader(out)
	}
	for len(out) < verifiedBatch {
		start := len(out)
		n, err := varint.ReadUvarint(v.src)
		if err == io.EOF {
			return out, io.EOF
		}
		if err != nil || n == 0 || n > maxSectionBytes {
			return out, v.damaged(fmt.Errorf("section length %d: %v", n, err))
		}
		out = binary.AppendUvarint(out, n)
		body := len(out)
		out = slices.Grow(out, int(n))[:body+int(n)]
		if _, err := io.ReadFull(v.src, out[body:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return out[:start], v.damaged(errors.New("the object ends inside a section"))
			}
			return out[:start], fmt.Errorf("read CAR %s at %d: %w", v.loc.Key, v.offset, err)
		}
		clen, c, err := cid.CidFromBytes(out[body:])
		if err == nil {
			err = verify(c, out[body+clen:])
		}
		if err != nil {
			return out[:start], v.damaged(err)
		}
		v.offset += int64(len(out) - start)
	}
	return out, nil
}

// readHeader reads the CAR's header, which must be {roots: [root],
// version: 1}.
func (v *verifiedCAR) readHeader(out []byte) ([]byte, error) {
	n, err := varint.ReadUvarint(v.src)
	if err != nil || n == 0 || n > 1<<10 {
		return out, v.damaged(fmt.Errorf("header length %d: %v", n, err))
	}
	out = binary.AppendUvarint(out, n)
	body := len(out)
	out = slices.Grow(out, int(n))[:body+int(n)]
	if _, err := io.ReadFull(v.src, out[body:]); err != nil {
		return out[:0], v.damaged(fmt.Errorf("header: %v", err))
	}
	if err := checkHeader(out[body:], v.root); err != nil {
		return out[:0], v.damaged(err)
	}
	v.offset = int64(len(out))
	return out, nil
}

func (v *verifiedCAR) damaged(err error) error {
	loc := v.loc
	loc.Offset, loc.Length = v.offset, 0
	err = fmt.Errorf("%w: CAR %s at %d: %v", ErrDamaged, loc.Key, v.offset, err)
	v.reporter.Damaged(v.ctx, Damage{Location: loc, Block: v.root, Err: err})
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
