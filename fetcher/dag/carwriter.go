package dag

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"
)

// writeBufferBytes batches the small section headers with block data, so
// that the sink sees few large writes.
const writeBufferBytes = 256 << 10

// carWriter writes a CARv1 and hashes exactly the bytes it writes.
type carWriter struct {
	// out is bw, or hashed itself for a sink that buffers (BufferingSink).
	out    io.Writer
	bw     *bufio.Writer
	hashed *hashingWriter
	// idx, if not nil, records each block's section as it is written.
	idx *blockIndex
}

// newCARWriter writes the header of a CARv1 rooted at root to w; with
// index, it records the CAR's block index as it goes (see blockIndex).
func newCARWriter(w io.Writer, root cid.Cid, index bool) (*carWriter, error) {
	header, err := carHeader(root)
	if err != nil {
		return nil, err
	}
	hw := &hashingWriter{w: w}
	if _, ok := w.(HashingSink); !ok {
		hw.h = sha256.New()
	}
	cw := &carWriter{out: hw, hashed: hw}
	if index {
		cw.idx = &blockIndex{}
	}
	if _, ok := w.(BufferingSink); !ok {
		cw.bw = bufio.NewWriterSize(hw, writeBufferBytes)
		cw.out = cw.bw
	}
	if _, err := cw.out.Write(header); err != nil {
		return nil, err
	}
	return cw, nil
}

// resumeCARWriter goes on writing, into the sink of an earlier try, the
// CAR its checkpoint describes: the header and the blocks kept are not
// written again (the sink holds them, and their hash: a ResumableSink is a
// HashingSink), the index holds them already, and the first bytes of the
// next block's section, which the kept bytes hold too, are dropped.
func resumeCARWriter(sink ResumableSink, ck checkpoint, index bool) *carWriter {
	hw := &hashingWriter{w: &skipper{w: sink, skip: ck.bytes - ck.end}, n: ck.end}
	cw := &carWriter{out: hw, hashed: hw}
	if index {
		cw.idx = &blockIndex{}
		for _, b := range ck.blocks {
			cw.idx.add(b.c.KeyString(), b.offset)
		}
	}
	if _, ok := sink.(BufferingSink); !ok {
		cw.bw = bufio.NewWriterSize(hw, writeBufferBytes)
		cw.out = cw.bw
	}
	return cw
}

// carHeader encodes {roots: [root], version: 1} as go-car does: dag-cbor,
// keys in canonical order, behind its varint length.
func carHeader(root cid.Cid) ([]byte, error) {
	nb := basicnode.Prototype.Map.NewBuilder()
	ma, err := nb.BeginMap(2)
	if err != nil {
		return nil, err
	}
	if err := ma.AssembleKey().AssignString("roots"); err != nil {
		return nil, err
	}
	la, err := ma.AssembleValue().BeginList(1)
	if err != nil {
		return nil, err
	}
	if err := la.AssembleValue().AssignLink(cidlink.Link{Cid: root}); err != nil {
		return nil, err
	}
	if err := la.Finish(); err != nil {
		return nil, err
	}
	if err := ma.AssembleKey().AssignString("version"); err != nil {
		return nil, err
	}
	if err := ma.AssembleValue().AssignInt(1); err != nil {
		return nil, err
	}
	if err := ma.Finish(); err != nil {
		return nil, err
	}
	var body bytes.Buffer
	if err := dagcbor.Encode(nb.Build(), &body); err != nil {
		return nil, fmt.Errorf("encode CAR header: %w", err)
	}
	return append(varint.ToUvarint(uint64(body.Len())), body.Bytes()...), nil
}

// sectionBytes is how many bytes a block's section takes in a CARv1.
func sectionBytes(c cid.Cid, data []byte) int64 {
	n := uint64(c.ByteLen() + len(data))
	return int64(varint.UvarintSize(n)) + int64(n)
}

func (cw *carWriter) writeBlock(c cid.Cid, data []byte) error {
	var lenBuf [varint.MaxLenUvarint63 + maxCIDBytes]byte
	n := varint.PutUvarint(lenBuf[:], uint64(c.ByteLen()+len(data)))
	// The length and the CID are one write where they fit (any CID the
	// reader takes does): for a BufferingSink, a section is two calls.
	key, head := c.KeyString(), lenBuf[:n]
	if cw.idx != nil {
		// The section starts here: go-car's offsets are the sections'.
		cw.idx.add(key, cw.written())
	}
	if n+len(key) <= len(lenBuf) {
		head, key = lenBuf[:n+copy(lenBuf[n:], key)], ""
	}
	if _, err := cw.out.Write(head); err != nil {
		return err
	}
	if key != "" {
		if _, err := io.WriteString(cw.out, key); err != nil {
			return err
		}
	}
	_, err := cw.out.Write(data)
	return err
}

// written is how many bytes of CAR have been written, buffered or not.
func (cw *carWriter) written() int64 {
	if cw.bw == nil {
		return cw.hashed.n
	}
	return cw.hashed.n + int64(cw.bw.Buffered())
}

// finish flushes what is buffered and returns the CAR's CID and length.
// The index, if recorded, is then index().
func (cw *carWriter) finish() (cid.Cid, int64, error) {
	if cw.bw != nil {
		if err := cw.bw.Flush(); err != nil {
			return cid.Undef, cw.hashed.n, err
		}
	}
	if cw.hashed.h == nil {
		return cid.Undef, cw.hashed.n, nil
	}
	mh, err := multihash.Encode(cw.hashed.h.Sum(nil), multihash.SHA2_256)
	if err != nil {
		return cid.Undef, cw.hashed.n, err
	}
	return cid.NewCidV1(uint64(multicodec.Car), mh), cw.hashed.n, nil
}

// index returns the marshalled CARv2 index of the blocks written, or nil
// if none was recorded. It is called once, after finish.
func (cw *carWriter) index() ([]byte, error) {
	if cw.idx == nil {
		return nil, nil
	}
	return cw.idx.marshal()
}

// hashingWriter hashes (unless the sink does) and counts what reaches the
// sink, after buffering, so that the CAR CID covers exactly the bytes
// stored.
type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	if hw.h != nil {
		hw.h.Write(p[:n])
	}
	hw.n += int64(n)
	return n, err
}
