package bitswap_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/bitswap"
	"github.com/pickup-ipfs/pickup/fetcher/dag/trustless"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
)

// sink keeps a try's CAR in memory.
type sink struct {
	bytes.Buffer
	aborted bool
}

func (s *sink) Abort(context.Context) error { s.aborted = true; return nil }

type sinks struct {
	mu     sync.Mutex
	opened []*sink
}

func (s *sinks) open(context.Context) (dag.Sink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sk := &sink{}
	s.opened = append(s.opened, sk)
	return sk, nil
}

func newSource(t testing.TB) *bitswap.Source {
	t.Helper()
	s, err := bitswap.New(bitswap.Config{AllowPrivate: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close source: %v", err)
		}
	})
	return s
}

func export(t testing.TB, bs blockstore.Blockstore, root cid.Cid) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := ipfstest.Export(context.Background(), bs, root, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fetch(t testing.TB, limits dag.Limits, req dag.Request, sources ...dag.Source) (dag.Result, *sink, *sinks, error) {
	t.Helper()
	f, err := dag.New(sources, limits, nil)
	if err != nil {
		t.Fatal(err)
	}
	var s sinks
	res, sk, err := f.Fetch(context.Background(), req, s.open, nil)
	if err != nil {
		return res, nil, &s, err
	}
	return res, sk.(*sink), &s, nil
}

func reasonOf(t testing.TB, err error) pin.Reason {
	t.Helper()
	fl, ok := errors.AsType[*dag.Failure](err)
	if !ok {
		t.Fatalf("error %v is not a *dag.Failure", err)
	}
	return fl.Reason
}

// TestMatchesDagExport proves that a DAG fetched over bitswap from an
// origin (a boxo bitswap server on loopback) is written byte for byte as
// `ipfs dag export` writes it, whatever the order blocks arrive in.
func TestMatchesDagExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newSource(t)
	tests := []struct {
		name string
		make func(blockstore.Blockstore) (cid.Cid, error)
	}{
		{"unixfs cidv0", func(bs blockstore.Blockstore) (cid.Cid, error) {
			return ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 300 << 10, Seed: 1, ChunkSize: 1 << 10})
		}},
		{"unixfs cidv1 raw leaves", func(bs blockstore.Blockstore) (cid.Cid, error) {
			return ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 3 << 20, Seed: 2, CIDv1: true})
		}},
		{"mixed codecs, hashes, duplicates and identity links", func(bs blockstore.Blockstore) (cid.Cid, error) {
			return ipfstest.Mixed(ctx, bs, 3)
		}},
		{"unixfs of one repeated chunk", func(bs blockstore.Blockstore) (cid.Cid, error) {
			return ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 400 << 10, Seed: 4, ChunkSize: 1 << 10, CIDv1: true, Repeat: true})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bs := ipfstest.NewMemBlockstore()
			root, err := tt.make(bs)
			if err != nil {
				t.Fatal(err)
			}
			peer := ipfstest.NewBitswapPeer(t, bs)
			res, sk, _, err := fetch(t, dag.Limits{ChunkTimeout: 15 * time.Second}, dag.Request{Root: root, Origins: peer.Addrs()}, src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sk.Bytes(), export(t, bs, root)) {
				t.Fatalf("CAR differs from dag export (%d bytes, want %d)", sk.Len(), len(export(t, bs, root)))
			}
			if res.Source != "bitswap" {
				t.Errorf("source %q", res.Source)
			}
		})
	}
}

// TestOriginsThatFail proves how a bitswap fetch fails for an operator to
// read: bitswap drops blocks whose bytes do not match, so a corrupted
// block looks like a missing one, and both end as a stall once the chunk
// timeout passes; a root no origin sends is root_not_found; no one to ask
// fails at once.
func TestOriginsThatFail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 100 << 10, Seed: 9, ChunkSize: 1 << 10, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	leaf := nthBlock(t, bs, root, 40)
	src := newSource(t)
	fast := dag.Limits{ChunkTimeout: 2 * time.Second}
	gone := ipfstest.NewBitswapPeer(t, bs)
	goneAddrs := gone.Addrs()
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		origins func(t *testing.T) []multiaddr.Multiaddr
		want    pin.Reason
	}{
		{"origin lacks a block", func(t *testing.T) []multiaddr.Multiaddr {
			return ipfstest.NewBitswapPeer(t, ipfstest.Holes(bs, leaf)).Addrs()
		}, pin.ReasonStalled},
		{"origin sends a corrupted block", func(t *testing.T) []multiaddr.Multiaddr {
			return ipfstest.NewBitswapPeer(t, ipfstest.Corrupt(bs, leaf)).Addrs()
		}, pin.ReasonStalled},
		{"origin lacks the root", func(t *testing.T) []multiaddr.Multiaddr {
			return ipfstest.NewBitswapPeer(t, ipfstest.Holes(bs, root)).Addrs()
		}, pin.ReasonRootNotFound},
		{"no origins", func(*testing.T) []multiaddr.Multiaddr { return nil }, pin.ReasonSourcesFailed},
		{"origin unreachable", func(*testing.T) []multiaddr.Multiaddr { return goneAddrs }, pin.ReasonSourcesFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A source of its own: the other subtests' origins must not be
			// connected, and so asked, here.
			src := src
			if tt.want != pin.ReasonSourcesFailed {
				src = newSource(t)
			}
			_, _, s, err := fetch(t, fast, dag.Request{Root: root, Origins: tt.origins(t)}, src)
			if got := reasonOf(t, err); got != tt.want {
				t.Fatalf("reason %s, want %s (%v)", got, tt.want, err)
			}
			for _, sk := range s.opened {
				if !sk.aborted {
					t.Error("sink not aborted")
				}
			}
		})
	}
}

// TestSecondOriginFillsTheHole proves that the session asks every origin:
// a block one lacks comes from another.
func TestSecondOriginFillsTheHole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 100 << 10, Seed: 10, ChunkSize: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	partial := ipfstest.NewBitswapPeer(t, ipfstest.Holes(bs, nthBlock(t, bs, root, 30), nthBlock(t, bs, root, 31)))
	whole := ipfstest.NewBitswapPeer(t, bs)
	origins := append(partial.Addrs(), whole.Addrs()...)
	_, sk, _, err := fetch(t, dag.Limits{}, dag.Request{Root: root, Origins: origins}, newSource(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sk.Bytes(), export(t, bs, root)) {
		t.Fatal("CAR differs from dag export")
	}
}

// TestFallsBackToGateway proves the source order an operator configures:
// when bitswap cannot finish, the next source serves the DAG.
func TestFallsBackToGateway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 50 << 10, Seed: 11, ChunkSize: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	partial := ipfstest.NewBitswapPeer(t, ipfstest.Holes(bs, nthBlock(t, bs, root, 20)))
	gw, err := trustless.New(trustless.Config{URL: ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{}).URL()})
	if err != nil {
		t.Fatal(err)
	}
	res, sk, s, err := fetch(t, dag.Limits{ChunkTimeout: 2 * time.Second}, dag.Request{Root: root, Origins: partial.Addrs()}, newSource(t), gw)
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != gw.Name() || !bytes.Equal(sk.Bytes(), export(t, bs, root)) {
		t.Fatalf("served by %q, CAR equal to dag export: %v", res.Source, bytes.Equal(sk.Bytes(), export(t, bs, root)))
	}
	if len(s.opened) != 2 || !s.opened[0].aborted {
		t.Error("the bitswap try's sink was not aborted")
	}
}

// TestConcurrentFetches proves that one source serves several fetches at
// once (the worker runs a batch of pins per process).
func TestConcurrentFetches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newSource(t)
	var wg sync.WaitGroup
	for i := range 4 {
		bs := ipfstest.NewMemBlockstore()
		root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 512 << 10, Seed: uint64(100 + i), ChunkSize: 4 << 10, CIDv1: true})
		if err != nil {
			t.Fatal(err)
		}
		peer := ipfstest.NewBitswapPeer(t, bs)
		want := export(t, bs, root)
		wg.Go(func() {
			_, sk, _, err := fetch(t, dag.Limits{}, dag.Request{Root: root, Origins: peer.Addrs()}, src)
			if err != nil {
				t.Error(err)
				return
			}
			if !bytes.Equal(sk.Bytes(), want) {
				t.Errorf("fetch %d: CAR differs from dag export", i)
			}
		})
	}
	wg.Wait()
}

// TestAddrsAreDialable proves that the addresses the gateway would report
// as delegates reach the source's host.
func TestAddrsAreDialable(t *testing.T) {
	t.Parallel()
	src := newSource(t)
	addrs := src.Addrs()
	if len(addrs) == 0 {
		t.Fatal("no addresses")
	}
	peer := ipfstest.NewBitswapPeer(t, ipfstest.NewMemBlockstore())
	info, err := peerInfo(addrs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := peer.Host().Connect(ctx, info); err != nil {
		t.Fatalf("dial %v: %v", addrs, err)
	}
}

// nthBlock returns the CID of the nth block (from 1) in dag export order.
func nthBlock(t testing.TB, bs blockstore.Blockstore, root cid.Cid, n int) cid.Cid {
	t.Helper()
	r := dag.NewCARReader(bytes.NewReader(export(t, bs, root)), dag.DefaultMaxBlockBytes)
	for i := 1; ; i++ {
		blk, err := r.Next()
		if err == io.EOF || err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		if i == n {
			return blk.CID
		}
	}
}

func peerInfo(addrs []multiaddr.Multiaddr) (libp2ppeer.AddrInfo, error) {
	infos, err := libp2ppeer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return libp2ppeer.AddrInfo{}, err
	}
	return infos[0], nil
}

// TestDelegatedRoutingFindsProviders proves that, with delegated routing
// configured, a DAG is fetched from a provider the request did not name.
func TestDelegatedRoutingFindsProviders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 200 << 10, Seed: 12, ChunkSize: 4 << 10, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	provider := ipfstest.NewBitswapPeer(t, bs)
	rt := ipfstest.NewRouting(t)
	rt.Provide(root, libp2ppeer.AddrInfo{ID: provider.ID(), Addrs: provider.Host().Addrs()})
	finder, err := bitswap.DelegatedRouting(rt.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := bitswap.New(bitswap.Config{AllowPrivate: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Routing: finder}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	_, sk, _, err := fetch(t, dag.Limits{ChunkTimeout: 20 * time.Second}, dag.Request{Root: root}, src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sk.Bytes(), export(t, bs, root)) {
		t.Fatal("CAR differs from dag export")
	}
	if rt.Asked() == 0 {
		t.Error("the routing endpoint was never asked")
	}
}

// A request cannot make pickup dial into its own network: by default the
// source's host refuses private and loopback addresses, whatever names
// lead to them, and the origin never hears from it.
func TestPrivateOriginsRefusedByDefault(t *testing.T) {
	ctx := context.Background()
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 10 << 10, Seed: 11, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	origin := ipfstest.NewBitswapPeer(t, bs)
	src, err := bitswap.New(bitswap.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	addrs := origin.Addrs()
	// The same loopback origin named through DNS.
	for _, a := range origin.Addrs() {
		if s := a.String(); strings.HasPrefix(s, "/ip4/127.0.0.1/") {
			addrs = append(addrs, multiaddr.StringCast("/dns4/localhost/"+strings.TrimPrefix(s, "/ip4/127.0.0.1/")))
		}
	}
	_, _, _, err = fetch(t, dag.Limits{ChunkTimeout: 2 * time.Second}, dag.Request{Root: root, Origins: addrs}, src)
	if err == nil {
		t.Fatal("fetched from a loopback origin with private addresses refused")
	}
	if got := len(origin.Host().Network().Peers()); got != 0 {
		t.Errorf("the private origin is connected to %d peers, want none", got)
	}
}
