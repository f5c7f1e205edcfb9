package serve_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/internal/servetest"
	"github.com/pickup-ipfs/pickup/serve"
)

// TestGetMany: every block of a pinned DAG, asked for at once, comes back
// checked (joined reads); a damaged one is left out and reported, its
// neighbours in the same read still come; a block no pin holds, and all
// of a removed pin's, are left out.
func TestGetMany(t *testing.T) {
	park := servetest.New(t)
	dag := park.Pin(t, 3<<20, 11)
	other := servetest.New(t).Pin(t, 100<<10, 12)
	ctx := context.Background()
	var ks []cid.Cid
	for _, b := range dag.Blocks {
		ks = append(ks, b.CID)
	}
	got, err := park.Blocks.GetMany(ctx, append(ks, other.Root))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(dag.Blocks) {
		t.Fatalf("%d blocks, want the DAG's %d (and not the unpinned one)", len(got), len(dag.Blocks))
	}
	for _, b := range dag.Blocks {
		if blk := got[b.CID]; blk == nil || !bytes.Equal(blk.RawData(), b.Data) {
			t.Fatalf("block %s: %v", b.CID, blk)
		}
	}

	bad := dag.Blocks[5]
	park.Corrupt(t, dag, bad.Offset+7)
	got, err = park.Blocks.GetMany(ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[bad.CID]; ok || len(got) != len(dag.Blocks)-1 {
		t.Fatalf("with %s damaged: %d blocks (damaged one given: %v), want the %d others", bad.CID, len(got), ok, len(dag.Blocks)-1)
	}
	if d := park.Damage.All(); len(d) == 0 || !d[0].Block.Equals(bad.CID) || !errors.Is(d[0].Err, serve.ErrDamaged) {
		t.Errorf("damage reports %+v, want %s's", d, bad.CID)
	}

	park.Release(dag)
	if got, err := park.Blocks.GetMany(ctx, ks); err != nil || len(got) != 0 {
		t.Fatalf("a removed pin's blocks: %d, %v; want none", len(got), err)
	}
}
