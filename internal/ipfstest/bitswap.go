package ipfstest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ipfs/boxo/bitswap"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// BitswapPeer is an IPFS peer on loopback: a libp2p host (TCP) running
// boxo's bitswap with the server settings kubo v0.43 uses, serving a
// blockstore. It has no routing: fetchers dial it by its addresses.
type BitswapPeer struct {
	host   host.Host
	bs     *bitswap.Bitswap
	cancel context.CancelFunc
}

// StartBitswapPeer starts a peer serving store.
func StartBitswapPeer(store blockstore.Blockstore) (*BitswapPeer, error) {
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
	)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bs := bitswap.New(ctx, bsnet.NewFromIpfsHost(h), nil, store,
		// kubo's defaults (core/node/bitswap.go), so that a fetch from this
		// peer meets the server a fetch from kubo would.
		bitswap.EngineBlockstoreWorkerCount(128),
		bitswap.TaskWorkerCount(8),
		bitswap.EngineTaskWorkerCount(8),
		bitswap.MaxOutstandingBytesPerPeer(1<<20),
		bitswap.WithWantHaveReplaceSize(1024),
	)
	return &BitswapPeer{host: h, bs: bs, cancel: cancel}, nil
}

// NewBitswapPeer starts a peer for a test and closes it when the test
// ends.
func NewBitswapPeer(t testing.TB, store blockstore.Blockstore) *BitswapPeer {
	t.Helper()
	p, err := StartBitswapPeer(store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close bitswap peer: %v", err)
		}
	})
	return p
}

// ID is the peer's identity.
func (p *BitswapPeer) ID() peer.ID { return p.host.ID() }

// Addrs are the peer's listen addresses with its /p2p/ identity, as a
// pin request's origins name it.
func (p *BitswapPeer) Addrs() []multiaddr.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: p.host.ID(), Addrs: p.host.Addrs()})
	if err != nil {
		// Only for an empty peer ID, which a started host never has.
		panic(err)
	}
	return addrs
}

// Host is the peer's libp2p host.
func (p *BitswapPeer) Host() host.Host { return p.host }

// Close stops bitswap and the host.
func (p *BitswapPeer) Close() error {
	p.cancel()
	return errors.Join(p.bs.Close(), p.host.Close())
}
