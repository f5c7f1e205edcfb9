package bitswap_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pickup-ipfs/pickup/internal/servetest"
	"github.com/pickup-ipfs/pickup/serve"
	"github.com/pickup-ipfs/pickup/serve/bitswap"
)

func newServer(t *testing.T, blocks bitswap.Blocks) *bitswap.Server {
	t.Helper()
	key, _, err := bitswap.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, key, blocks)
}

var newKey = bitswap.NewKey

// startServer starts a server on loopback for tb.
func startServer(tb testing.TB, key crypto.PrivKey, blocks bitswap.Blocks) *bitswap.Server {
	tb.Helper()
	s, err := bitswap.New(bitswap.Config{PrivateKey: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}}, bitswap.Deps{Blocks: blocks})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func cids(bs []servetest.Block) []cid.Cid {
	out := make([]cid.Cid, len(bs))
	for i, b := range bs {
		out[i] = b.CID
	}
	return out
}

// TestServesPinnedBlocks: boxo's bitswap client, on a host of its own,
// fetches every block of a pinned DAG from the server, byte for byte; the
// server reads each block it sends once (the read that sized it is the
// one sent).
func TestServesPinnedBlocks(t *testing.T) {
	park := servetest.New(t)
	dag := park.Pin(t, 3<<20+777, 1)
	reads := &counted{Blocks: park.Blocks}
	s := newServer(t, reads)
	c := servetest.NewClient(t)
	if _, err := c.Connect(servetest.Within(t, 10*time.Second), s.P2pAddrs()); err != nil {
		t.Fatal(err)
	}
	got, err := c.Fetch(servetest.Within(t, 60*time.Second), cids(dag.Blocks))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range dag.Blocks {
		if !bytes.Equal(got[b.CID], b.Data) {
			t.Fatalf("block %s: %d bytes, want its %d", b.CID, len(got[b.CID]), len(b.Data))
		}
	}
	n, sent := s.Sent()
	var want uint64
	for _, b := range dag.Blocks {
		want += uint64(len(b.Data))
	}
	if n < uint64(len(dag.Blocks)) || sent < want {
		t.Fatalf("server counts %d blocks, %d bytes sent; want at least %d, %d", n, sent, len(dag.Blocks), want)
	}
	if got := reads.gets.Load(); got != int64(n) {
		t.Errorf("%d reads of the carpark for %d blocks sent: want one each", got, n)
	}
}

// counted counts the reads of blocks.
type counted struct {
	bitswap.Blocks
	gets atomic.Int64
}

func (c *counted) Get(ctx context.Context, k cid.Cid) (blocks.Block, error) {
	c.gets.Add(1)
	return c.Blocks.Get(ctx, k)
}

// TestAnswers: want-have of a pinned block is HAVE, want-block its block;
// a block no pin holds, or whose pin was removed, is DONT_HAVE to both;
// a damaged stored block is never sent (DONT_HAVE), and reported, while
// the CAR's sound blocks still are.
func TestAnswers(t *testing.T) {
	park := servetest.New(t)
	dag := park.Pin(t, 2<<20, 2)
	gone := park.Pin(t, 600<<10, 3)
	other := servetest.New(t).Pin(t, 300<<10, 4) // stored elsewhere: never pinned here
	s := newServer(t, park.Blocks)
	c := servetest.NewClient(t)
	server, err := c.Connect(servetest.Within(t, 10*time.Second), s.P2pAddrs())
	if err != nil {
		t.Fatal(err)
	}
	ask := func(wantBlock bool, ks ...cid.Cid) map[cid.Cid]servetest.Answer {
		t.Helper()
		got, err := c.Ask(servetest.Within(t, 20*time.Second), server, wantBlock, ks...)
		if err != nil {
			t.Fatalf("ask %v: %v (answers %v)", ks, err, got)
		}
		return got
	}
	pinned := dag.Blocks[1]
	if a := ask(false, pinned.CID)[pinned.CID]; !a.Have {
		t.Errorf("want-have of a pinned block: %+v, want HAVE", a)
	}
	if a := ask(true, pinned.CID)[pinned.CID]; !bytes.Equal(a.Block, pinned.Data) {
		t.Errorf("want-block of a pinned block: %+v, want its bytes", a)
	}
	park.Release(gone)
	for _, b := range []servetest.Block{other.Blocks[0], other.Blocks[1], gone.Blocks[0], gone.Blocks[2]} {
		for _, wantBlock := range []bool{false, true} {
			if a := ask(wantBlock, b.CID)[b.CID]; !a.DontHave {
				t.Errorf("block %s not pinned here (want-block %v): %+v, want DONT_HAVE", b.CID, wantBlock, a)
			}
		}
	}

	bad := dag.Blocks[3]
	park.Corrupt(t, dag, bad.Offset+10)
	if a := ask(true, bad.CID)[bad.CID]; !a.DontHave || a.Block != nil {
		t.Errorf("want-block of a damaged block: %+v, want DONT_HAVE and no block", a)
	}
	damage := park.Damage.All()
	if len(damage) == 0 || !damage[0].Block.Equals(bad.CID) || !errors.Is(damage[0].Err, serve.ErrDamaged) {
		t.Errorf("damage reports %+v, want %s's", damage, bad.CID)
	}
	sound := dag.Blocks[4]
	if a := ask(true, sound.CID)[sound.CID]; !bytes.Equal(a.Block, sound.Data) {
		t.Errorf("a sound block of the damaged CAR: %+v, want its bytes", a)
	}
}

// TestIdentity: the server is the peer of the key it is given, at its
// announce addresses when set; without a key it refuses to start.
func TestIdentity(t *testing.T) {
	key, text, err := bitswap.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	back, err := bitswap.DecodeKey(" " + text + "\n")
	if err != nil || !back.Equals(key) {
		t.Fatalf("DecodeKey(EncodeKey(k)) = %v, %v", back, err)
	}
	if _, err := bitswap.DecodeKey("bm90IGEga2V5"); !errors.Is(err, bitswap.ErrBadKey) {
		t.Errorf("DecodeKey of base64 that is no key: %v, want ErrBadKey", err)
	}
	park := servetest.New(t)
	s, err := bitswap.New(bitswap.Config{PrivateKey: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		AnnounceAddrs: []string{"/dns4/serve.example.com/tcp/4002", "/dns4/serve.example.com/udp/4002/quic-v1/p2p/12D3KooWR3DeCKahEqXtP8KvuG3XBeLZTU55yktXSmy8g4Phh6BV"}},
		bitswap.Deps{Blocks: park.Blocks})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want, _ := peer.IDFromPrivateKey(key)
	if s.ID() != want {
		t.Errorf("peer %s, want %s (the key's)", s.ID(), want)
	}
	addrs := s.Addrs()
	if len(addrs) != 2 || addrs[0].String() != "/dns4/serve.example.com/tcp/4002" || addrs[1].String() != "/dns4/serve.example.com/udp/4002/quic-v1" {
		t.Errorf("announced %v", addrs)
	}
	if _, err := bitswap.New(bitswap.Config{}, bitswap.Deps{Blocks: park.Blocks}); !errors.Is(err, bitswap.ErrInvalid) {
		t.Errorf("no key: %v, want ErrInvalid", err)
	}
}

// TestGatewayAddr: a gateway's base URL as the multiaddr routers and
// indexers name HTTP providers by.
func TestGatewayAddr(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"https://serve.example.com", "/dns/serve.example.com/tcp/443/https"},
		{"https://serve.example.com:8443/", "/dns/serve.example.com/tcp/8443/https"},
		{"http://127.0.0.1:8080", "/ip4/127.0.0.1/tcp/8080/http"},
		{"http://[::1]:8080", "/ip6/::1/tcp/8080/http"},
	} {
		got, err := bitswap.GatewayAddr(tc.url)
		if err != nil || got.String() != tc.want {
			t.Errorf("GatewayAddr(%q) = %v, %v; want %s", tc.url, got, err, tc.want)
		}
	}
	for _, bad := range []string{"ftp://x", "https://", "https://x/ipfs", "serve.example.com"} {
		if _, err := bitswap.GatewayAddr(bad); !errors.Is(err, bitswap.ErrInvalid) {
			t.Errorf("GatewayAddr(%q): %v, want ErrInvalid", bad, err)
		}
	}
}
