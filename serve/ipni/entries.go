package ipni

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipni/go-libipni/ingest/schema"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/serve/locate"
)

// encode returns a node's dag-json bytes and their CID, as
// schema.Linkproto links them: what an indexer hashes.
func encode(n ipld.Node) ([]byte, cid.Cid, error) {
	var buf bytes.Buffer
	if err := dagjson.Encode(n, &buf); err != nil {
		return nil, cid.Undef, err
	}
	h, err := multihash.Sum(buf.Bytes(), multihash.SHA2_256, -1)
	if err != nil {
		return nil, cid.Undef, err
	}
	return buf.Bytes(), cid.NewCidV1(uint64(multicodec.DagJson), h), nil
}

// chunkOf returns entry chunk i of mhs (size multihashes each, the last
// the rest), linking to next (cid.Undef for the last).
func chunkOf(mhs []multihash.Multihash, size, i int, next cid.Cid) ([]byte, cid.Cid, error) {
	ch := schema.EntryChunk{Entries: mhs[i*size : min((i+1)*size, len(mhs))]}
	if next.Defined() {
		ch.Next = cidlink.Link{Cid: next}
	}
	n, err := ch.ToNode()
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("entry chunk %d: %w", i, err)
	}
	b, c, err := encode(n)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("entry chunk %d: %w", i, err)
	}
	return b, c, nil
}

// chunkCIDs returns the CIDs of mhs's entry chunks in chain order. Each
// chunk links to the next, so they are built from the last.
func chunkCIDs(mhs []multihash.Multihash, size int) ([]cid.Cid, error) {
	n := (len(mhs) + size - 1) / size
	out := make([]cid.Cid, n)
	next := cid.Undef
	for i := n - 1; i >= 0; i-- {
		_, c, err := chunkOf(mhs, size, i, next)
		if err != nil {
			return nil, err
		}
		out[i], next = c, c
	}
	return out, nil
}

// indexObject is a CAR's index object as a CarValidated names it.
type indexObject struct {
	key      string
	bytes    int64
	sha256   string
	carBytes int64
}

// multihashes reads the index object and returns its multihashes in the
// CAR's order, decoded and checked against the size and SHA-256 it was
// validated with by locate.ValidatedEntries (the block lookup's own
// reading of untrusted index objects). A bad object wraps
// locate.ErrBadIndex.
func multihashes(ctx context.Context, objects Objects, o indexObject) ([]multihash.Multihash, error) {
	rc, err := objects.ReadRange(ctx, o.key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	entries, err := locate.ValidatedEntries(rc, o.carBytes, o.bytes, o.sha256)
	if err != nil {
		return nil, err
	}
	out := make([]multihash.Multihash, len(entries))
	for i, e := range entries {
		out[i] = e.Multihash
	}
	return out, nil
}
