package ipfstest

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/linking"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	selectorparse "github.com/ipld/go-ipld-prime/traversal/selector/parse"

	// The codecs kubo's link system decodes with, registered by import
	// as kubo registers them.
	_ "github.com/ipld/go-codec-dagpb"
	_ "github.com/ipld/go-ipld-prime/codec/dagcbor"
	_ "github.com/ipld/go-ipld-prime/codec/dagjson"
	_ "github.com/ipld/go-ipld-prime/codec/raw"
)

// Export writes the CAR of the DAG at root the way `ipfs dag export` does
// (kubo v0.43): go-car's TraverseV1 with the explore-all-recursively
// selector, each block once, over a blockstore that answers identity CIDs
// itself (kubo wraps its blockstore in boxo's IdStore), so identity blocks
// are written like any other. It is the reference a fetcher's output is
// compared with, byte for byte.
func Export(ctx context.Context, bs blockstore.Blockstore, root cid.Cid, w io.Writer) (int64, error) {
	n, err := car.TraverseV1(ctx, LinkSystem(ctx, bs), root, selectorparse.CommonSelector_ExploreAllRecursively, w, car.AllowDuplicatePuts(false))
	if err != nil {
		return int64(n), fmt.Errorf("export %s: %w", root, err)
	}
	return int64(n), nil
}

// LinkSystem returns a go-ipld-prime link system that reads bs as kubo's
// dag commands do: identity CIDs resolve to their inline data.
func LinkSystem(ctx context.Context, bs blockstore.Blockstore) *linking.LinkSystem {
	ids := blockstore.NewIdStore(bs)
	lsys := cidlink.DefaultLinkSystem()
	lsys.StorageReadOpener = func(lc linking.LinkContext, l datamodel.Link) (io.Reader, error) {
		cl, ok := l.(cidlink.Link)
		if !ok {
			return nil, fmt.Errorf("link of type %T", l)
		}
		lctx := lc.Ctx
		if lctx == nil {
			lctx = ctx
		}
		blk, err := ids.Get(lctx, cl.Cid)
		if err != nil {
			return nil, err
		}
		return bytes.NewReader(blk.RawData()), nil
	}
	return &lsys
}

// BlockBytes adds up the bytes of the blocks of a CARv1, without its
// header and framing: what a dag-pb root's declared size (its own bytes
// and its links' Tsize) is compared with.
func BlockBytes(carBytes []byte) (int64, error) {
	br, err := car.NewBlockReader(bytes.NewReader(carBytes))
	if err != nil {
		return 0, fmt.Errorf("read CAR: %w", err)
	}
	var n int64
	for {
		blk, err := br.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read CAR: %w", err)
		}
		n += int64(len(blk.RawData()))
	}
}
