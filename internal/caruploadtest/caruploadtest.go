// Package caruploadtest makes CAR uploads for tests: a DAG's canonical
// CAR (`ipfs dag export`'s bytes), and the same blocks rewritten in another
// order, cut short, with a block changed or left out, or under another root.
package caruploadtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-varint"

	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

// Block is one section of a CAR.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// DAG is a UnixFS file's DAG and its canonical CAR.
type DAG struct {
	Root      cid.Cid
	Canonical []byte
	// Blocks are the canonical CAR's, in its order.
	Blocks []Block
}

// NewDAG imports size bytes of seeded random data (64 KiB leaves, CIDv1
// with raw leaves) and exports its canonical CAR.
func NewDAG(tb testing.TB, size int64, seed uint64) DAG {
	tb.Helper()
	ctx := context.Background()
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: size, Seed: seed, ChunkSize: 64 << 10, CIDv1: true})
	if err != nil {
		tb.Fatal(err)
	}
	return Exported(tb, bs, root)
}

// Exported is the DAG at root in bs, exported as `ipfs dag export` does.
func Exported(tb testing.TB, bs blockstore.Blockstore, root cid.Cid) DAG {
	tb.Helper()
	var buf bytes.Buffer
	if _, err := ipfstest.Export(context.Background(), bs, root, &buf); err != nil {
		tb.Fatal(err)
	}
	br, err := car.NewBlockReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		tb.Fatal(err)
	}
	d := DAG{Root: root, Canonical: buf.Bytes()}
	for {
		blk, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		d.Blocks = append(d.Blocks, Block{CID: blk.Cid(), Data: blk.RawData()})
	}
	return d
}

// CAR writes a CARv1 naming roots with blocks in the order given.
func CAR(tb testing.TB, roots []cid.Cid, blocks []Block) []byte {
	tb.Helper()
	var buf bytes.Buffer
	header, err := qp.BuildMap(basicnode.Prototype.Any, 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "roots", qp.List(int64(len(roots)), func(la datamodel.ListAssembler) {
			for _, r := range roots {
				qp.ListEntry(la, qp.Link(cidlink.Link{Cid: r}))
			}
		}))
		qp.MapEntry(ma, "version", qp.Int(1))
	})
	if err != nil {
		tb.Fatal(err)
	}
	var hb bytes.Buffer
	if err := dagcbor.Encode(header, &hb); err != nil {
		tb.Fatal(err)
	}
	buf.Write(varint.ToUvarint(uint64(hb.Len())))
	buf.Write(hb.Bytes())
	for _, b := range blocks {
		cb := b.CID.Bytes()
		buf.Write(varint.ToUvarint(uint64(len(cb) + len(b.Data))))
		buf.Write(cb)
		buf.Write(b.Data)
	}
	return buf.Bytes()
}

// Reversed is the DAG's CAR with its blocks in reverse order (the root
// last).
func (d DAG) Reversed(tb testing.TB) []byte {
	blocks := make([]Block, len(d.Blocks))
	for i, b := range d.Blocks {
		blocks[len(blocks)-1-i] = b
	}
	return CAR(tb, []cid.Cid{d.Root}, blocks)
}

// Without is the DAG's CAR without block i.
func (d DAG) Without(tb testing.TB, i int) []byte {
	blocks := append(append([]Block{}, d.Blocks[:i]...), d.Blocks[i+1:]...)
	return CAR(tb, []cid.Cid{d.Root}, blocks)
}

// Corrupted is the DAG's CAR with a byte of block i's data flipped.
func (d DAG) Corrupted(tb testing.TB, i int) []byte {
	blocks := append([]Block{}, d.Blocks...)
	data := append([]byte{}, blocks[i].Data...)
	data[len(data)/2] ^= 0xff
	blocks[i] = Block{CID: blocks[i].CID, Data: data}
	return CAR(tb, []cid.Cid{d.Root}, blocks)
}

// FileSHA256 is the SHA-256 of the file at path, read as a stream (the
// CARs the tests compare run to hundreds of MiB).
func FileSHA256(tb testing.TB, path string) []byte {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	return h.Sum(nil)
}
