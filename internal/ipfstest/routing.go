package ipfstest

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/routing/http/server"
	"github.com/ipfs/boxo/routing/http/types"
	"github.com/ipfs/boxo/routing/http/types/iter"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// Routing is a Delegated Routing V1 HTTP endpoint on loopback: boxo's
// server handler in front of a table of providers that a test fills. The
// public endpoints (delegated-ipfs.dev, cid.contact) cannot be reached from
// tests; the table stands in for their index.
type Routing struct {
	srv       *httptest.Server
	mu        sync.Mutex
	providers map[cid.Cid][]peer.AddrInfo
	asked     int
}

// StartRouting starts an endpoint with no providers.
func StartRouting() *Routing {
	r := &Routing{providers: make(map[cid.Cid][]peer.AddrInfo)}
	r.srv = httptest.NewServer(server.Handler(r))
	return r
}

// NewRouting starts an endpoint for a test and closes it when the test
// ends.
func NewRouting(t testing.TB) *Routing {
	r := StartRouting()
	t.Cleanup(r.srv.Close)
	return r
}

// URL is the endpoint's base URL.
func (r *Routing) URL() string { return r.srv.URL }

// Close stops it.
func (r *Routing) Close() { r.srv.Close() }

// Provide records that p provides c over bitswap.
func (r *Routing) Provide(c cid.Cid, p peer.AddrInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.providers[c] = append(r.providers[c], p)
}

// Asked counts the provider lookups it has answered.
func (r *Routing) Asked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.asked
}

// FindProviders implements server.DelegatedRouter. The lookup is by
// multihash, as the real indexes do.
func (r *Routing) FindProviders(_ context.Context, key cid.Cid, limit int) (iter.ResultIter[types.Record], error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	var recs []types.Record
	for c, infos := range r.providers {
		if string(c.Hash()) != string(key.Hash()) {
			continue
		}
		for _, info := range infos {
			id := info.ID
			var addrs []types.Multiaddr
			for _, a := range info.Addrs {
				addrs = append(addrs, types.Multiaddr{Multiaddr: a})
			}
			recs = append(recs, &types.PeerRecord{Schema: types.SchemaPeer, ID: &id, Addrs: addrs, Protocols: []string{"transport-bitswap"}})
		}
	}
	if limit > 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	return iter.ToResultIter(iter.FromSlice(recs)), nil
}

// ProvideBitswap implements server.DelegatedRouter: not supported.
func (r *Routing) ProvideBitswap(context.Context, *server.BitswapWriteProvideRequest) (time.Duration, error) {
	return 0, routing.ErrNotSupported
}

// FindPeers implements server.DelegatedRouter: not supported.
func (r *Routing) FindPeers(context.Context, peer.ID, int) (iter.ResultIter[*types.PeerRecord], error) {
	return nil, routing.ErrNotSupported
}

// GetIPNS implements server.DelegatedRouter: not supported.
func (r *Routing) GetIPNS(context.Context, ipns.Name) (*ipns.Record, error) {
	return nil, routing.ErrNotSupported
}

// PutIPNS implements server.DelegatedRouter: not supported.
func (r *Routing) PutIPNS(context.Context, ipns.Name, *ipns.Record) error {
	return routing.ErrNotSupported
}

// GetClosestPeers implements server.DelegatedRouter: not supported.
func (r *Routing) GetClosestPeers(context.Context, cid.Cid) (iter.ResultIter[*types.PeerRecord], error) {
	return nil, routing.ErrNotSupported
}
