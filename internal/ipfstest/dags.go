package ipfstest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"
)

// FileOptions shape a UnixFS file DAG.
type FileOptions struct {
	// Size is the file's length in bytes.
	Size int64
	// Seed picks the file's bytes; the same seed gives the same DAG.
	Seed uint64
	// ChunkSize is the leaf size; 0 means kubo's 256 KiB.
	ChunkSize int64
	// CIDv1 makes the DAG as `ipfs add --cid-version=1` does: CIDv1 with
	// raw leaves. The default is `ipfs add`'s: CIDv0, dag-pb leaves.
	CIDv1 bool
	// Repeat makes every chunk the same bytes (as in a sparse file): one
	// leaf block, linked from everywhere, which a CAR holds once.
	Repeat bool
}

// File imports a file of seeded random bytes into bs with boxo's importer
// (balanced layout, 174 links a node, as kubo does) and returns its root.
// The bytes are generated as they are chunked, so a 1 GiB file costs a
// 1 GiB blockstore (a FileBlockstore: disk, not heap), not 1 GiB of RAM.
func File(ctx context.Context, bs blockstore.Blockstore, opts FileOptions) (cid.Cid, error) {
	chunk := opts.ChunkSize
	if chunk == 0 {
		chunk = chunker.DefaultBlockSize
	}
	params := helpers.DagBuilderParams{
		Maxlinks: helpers.DefaultLinksPerBlock,
		Dagserv:  dagService(bs),
	}
	if opts.CIDv1 {
		params.RawLeaves = true
		params.CidBuilder = cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}
	}
	var data io.Reader = Random(opts.Seed)
	if opts.Repeat {
		block := make([]byte, chunk)
		if _, err := io.ReadFull(data, block); err != nil {
			return cid.Undef, err
		}
		data = &repeat{block: block}
	}
	db, err := params.New(chunker.NewSizeSplitter(io.LimitReader(data, opts.Size), chunk))
	if err != nil {
		return cid.Undef, fmt.Errorf("import file: %w", err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		return cid.Undef, fmt.Errorf("import file: %w", err)
	}
	return nd.Cid(), ctx.Err()
}

// Random returns an endless stream of bytes determined by seed.
func Random(seed uint64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return rand.NewChaCha8(key)
}

// repeat reads the same block over and over.
type repeat struct {
	block []byte
	off   int
}

func (r *repeat) Read(p []byte) (int, error) {
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	return n, nil
}

func dagService(bs blockstore.Blockstore) ipld.DAGService {
	return merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
}

// Put encodes node with codec (dag-cbor or dag-json), hashes it with
// mhType, stores the block in bs and returns its CID.
func Put(ctx context.Context, bs blockstore.Blockstore, codec multicodec.Code, mhType uint64, node datamodel.Node) (cid.Cid, error) {
	var buf bytes.Buffer
	var err error
	switch codec {
	case multicodec.DagCbor:
		err = dagcbor.Encode(node, &buf)
	case multicodec.DagJson:
		err = dagjson.Encode(node, &buf)
	default:
		return cid.Undef, fmt.Errorf("put: codec %s is not dag-cbor or dag-json", codec)
	}
	if err != nil {
		return cid.Undef, fmt.Errorf("encode %s: %w", codec, err)
	}
	return PutRaw(ctx, bs, uint64(codec), mhType, buf.Bytes())
}

// PutRaw stores data as a block of the given codec and hash and returns
// its CID. An identity hash makes an inline CID and stores nothing.
func PutRaw(ctx context.Context, bs blockstore.Blockstore, codec, mhType uint64, data []byte) (cid.Cid, error) {
	c, err := cid.Prefix{Version: 1, Codec: codec, MhType: mhType, MhLength: -1}.Sum(data)
	if err != nil {
		return cid.Undef, fmt.Errorf("hash block: %w", err)
	}
	if mhType == multihash.IDENTITY {
		return c, nil
	}
	blk, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		return cid.Undef, err
	}
	return c, bs.Put(ctx, blk)
}

// Mixed builds a DAG that uses every rule of the depth-first walk `ipfs dag
// export` makes, and returns its root (dag-cbor). It has dag-cbor maps
// whose keys sort differently from how they were written, links nested in
// lists and maps, dag-json and dag-pb (CIDv0 and CIDv1) nodes, raw leaves,
// a block linked from several places and twice from one, identity CIDs
// (raw, and dag-cbor with links of its own), and sha2-512, blake2b-256 and
// blake3 hashes.
func Mixed(ctx context.Context, bs blockstore.Blockstore, seed uint64) (cid.Cid, error) {
	b := &builder{ctx: ctx, bs: bs, rnd: Random(seed)}
	leafA := b.raw(multihash.SHA2_256, 3000)
	leafB := b.raw(multihash.BLAKE3, 5000)
	leafC := b.raw(multihash.SHA2_512, 700)
	shared := b.raw(multihash.SHA2_256, 1200)
	inline := b.raw(multihash.IDENTITY, 20)

	pb0 := b.pb(merkledag.V0CidPrefix(), leafA, shared)
	pb1 := b.pb(merkledag.V1CidPrefix(), pb0, inline, leafB, shared)

	js := b.node(multicodec.DagJson, multihash.SHA2_256, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "name", qp.String("dag-json"))
		qp.MapEntry(ma, "children", qp.List(-1, func(la datamodel.ListAssembler) {
			qp.ListEntry(la, qp.Link(cidlink.Link{Cid: leafC}))
			qp.ListEntry(la, qp.Link(cidlink.Link{Cid: pb1}))
		}))
	})
	// An identity dag-cbor block with links: there is no block to fetch,
	// but its links must still be walked.
	inlineNode := b.node(multicodec.DagCbor, multihash.IDENTITY, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "l", qp.Link(cidlink.Link{Cid: js}))
		qp.MapEntry(ma, "s", qp.Link(cidlink.Link{Cid: shared}))
	})
	blake := b.node(multicodec.DagCbor, multihash.BLAKE2B_MIN+31, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "twice", qp.List(-1, func(la datamodel.ListAssembler) {
			qp.ListEntry(la, qp.Link(cidlink.Link{Cid: leafA}))
			qp.ListEntry(la, qp.Link(cidlink.Link{Cid: leafA}))
		}))
		qp.MapEntry(ma, "deep", qp.Map(-1, func(ma datamodel.MapAssembler) {
			qp.MapEntry(ma, "x", qp.Link(cidlink.Link{Cid: inlineNode}))
		}))
	})
	// Keys written in an order that dag-cbor's canonical (length-first)
	// sort changes: the walk must follow the encoded order.
	root := b.node(multicodec.DagCbor, multihash.SHA2_256, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "zzzz", qp.Link(cidlink.Link{Cid: blake}))
		qp.MapEntry(ma, "b", qp.List(-1, func(la datamodel.ListAssembler) {
			qp.ListEntry(la, qp.Int(7))
			qp.ListEntry(la, qp.Link(cidlink.Link{Cid: shared}))
			qp.ListEntry(la, qp.Map(-1, func(ma datamodel.MapAssembler) {
				qp.MapEntry(ma, "in", qp.Link(cidlink.Link{Cid: pb1}))
			}))
		}))
		qp.MapEntry(ma, "aa", qp.Link(cidlink.Link{Cid: inline}))
		qp.MapEntry(ma, "a", qp.Link(cidlink.Link{Cid: js}))
	})
	return root, b.err
}

// builder makes blocks, keeping the first error.
type builder struct {
	ctx context.Context
	bs  blockstore.Blockstore
	rnd io.Reader
	err error
}

func (b *builder) raw(mhType uint64, size int) cid.Cid {
	data := make([]byte, size)
	if _, err := io.ReadFull(b.rnd, data); err != nil && b.err == nil {
		b.err = err
	}
	c, err := PutRaw(b.ctx, b.bs, uint64(multicodec.Raw), mhType, data)
	if err != nil && b.err == nil {
		b.err = err
	}
	return c
}

func (b *builder) pb(prefix cid.Prefix, links ...cid.Cid) cid.Cid {
	nd := merkledag.NodeWithData([]byte{0x08, 0x01})
	if err := nd.SetCidBuilder(prefix); err != nil && b.err == nil {
		b.err = err
	}
	for i, l := range links {
		if err := nd.AddRawLink(fmt.Sprintf("link-%d", i), &ipld.Link{Cid: l}); err != nil && b.err == nil {
			b.err = err
		}
	}
	if err := b.bs.Put(b.ctx, nd); err != nil && b.err == nil {
		b.err = err
	}
	return nd.Cid()
}

func (b *builder) node(codec multicodec.Code, mhType uint64, fn func(datamodel.MapAssembler)) cid.Cid {
	n, err := qp.BuildMap(basicnode.Prototype.Any, -1, fn)
	if err != nil {
		if b.err == nil {
			b.err = err
		}
		return cid.Undef
	}
	c, err := Put(b.ctx, b.bs, codec, mhType, n)
	if err != nil && b.err == nil {
		b.err = err
	}
	return c
}
