package bitswap_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/bitswap"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
)

// A root whose links declare more than MAX_CAR_BYTES fails the attempt as
// too_big once it has arrived: the origin serves the root and the few
// blocks already wanted with it, not the limit's worth the byte count
// would take, and nothing is written.
func TestRootOverTheLimitFailsBeforeTheRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bs := ipfstest.NewMemBlockstore()
	// 64 chunks of 256 KiB under one root; the byte count alone would
	// fail it only after 32 of them (8 MiB).
	root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 16 << 20, Seed: 21, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	origin := ipfstest.Count(bs, 0)
	peer := ipfstest.NewBitswapPeer(t, origin)
	// A window of 1 MiB wants 8 blocks at a time (the least it wants).
	src, err := bitswap.New(bitswap.Config{AllowPrivate: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, WindowBytes: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	_, _, opened, err := fetch(t, dag.Limits{MaxCARBytes: 8 << 20, ChunkTimeout: 15 * time.Second}, dag.Request{Root: root, Origins: peer.Addrs()}, src)
	if err == nil || reasonOf(t, err) != pin.ReasonTooBig || !strings.Contains(err.Error(), "the root declares a DAG of") {
		t.Fatalf("fetch: %v, want too_big from the root's declared size", err)
	}
	if len(opened.opened) != 0 {
		t.Errorf("%d sinks opened, want none: nothing is written of a DAG refused at its root", len(opened.opened))
	}
	// The root, and at most two windows wanted while it was checked.
	if n := origin.Served(); n < 1 || n > 17 {
		t.Errorf("the origin served %d blocks, want the root and at most 16 more (the byte count would have taken 33)", n)
	}
}
