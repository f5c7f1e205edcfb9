// Package routing answers Delegated Routing V1 HTTP (GET
// /routing/v1/providers/{cid}, /routing/v1/peers/{peer-id}) for what the
// serving role serves, through boxo's routing/http server: a client such
// as kubo with pickup as its router finds pickup's peer for any block of
// a pinned DAG without knowing pickup exists.
//
// For a CID whose block a pinned, not removed, pin holds (serve.Blockstore's
// Has: the lookup and the views, no read of the block), the answer is one
// record: the serving role's peer (schema "peer"), its announced libp2p
// addresses and its HTTP trustless gateway's address, with the protocols
// transport-bitswap and transport-ipfs-gateway-http. For anything else no
// record (an empty list, 200, as IPIP-0513 and boxo answer): nothing
// tells whether another tenant ever pinned it. The peer's own ID answers its addresses; IPNS and provide are
// not supported (boxo's answer for a router that lacks them).
package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/routing/http/server"
	"github.com/ipfs/boxo/routing/http/types"
	"github.com/ipfs/boxo/routing/http/types/iter"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/serve/bitswap"
)

// ErrInvalid: a configuration that cannot answer; nothing was built.
var ErrInvalid = errors.New("invalid delegated routing configuration")

// The protocols a record names.
const (
	ProtocolBitswap     = "transport-bitswap"
	ProtocolGatewayHTTP = "transport-ipfs-gateway-http"
)

// DefaultTimeout bounds one lookup.
const DefaultTimeout = 10 * time.Second

// Config is what the answers say and how long they may take.
type Config struct {
	// Provider is the serving role's peer: its ID, its addresses and its
	// gateway's (bitswap.Provider; Key is only read for the ID).
	Provider bitswap.Provider
	// Timeout bounds one lookup. Default DefaultTimeout.
	Timeout time.Duration
}

// Validate refuses a provider with no identity or no address at all.
func (c Config) Validate() error {
	if c.Provider.Key == nil {
		return fmt.Errorf("%w: the provider has no key", ErrInvalid)
	}
	if len(c.Provider.AllAddrs()) == 0 {
		return fmt.Errorf("%w: the provider has no address", ErrInvalid)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%w: negative Timeout %v", ErrInvalid, c.Timeout)
	}
	return nil
}

// Holder answers whether a pinned pin holds a block: serve.Blockstore.
type Holder interface {
	Has(ctx context.Context, c cid.Cid) (bool, error)
}

// Deps are what the answers are read from.
type Deps struct {
	Blocks Holder
	// Logger, optional: nil discards.
	Logger *slog.Logger
	// Metrics, optional: where boxo's server registers its request
	// metrics (delegated_routing_server_*); none when nil.
	Metrics prometheus.Registerer
}

// New returns the handler of /routing/v1/: mount it at that prefix.
func New(cfg Config, d Deps) (http.Handler, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Blocks == nil {
		return nil, fmt.Errorf("%w: no Blocks to answer from", ErrInvalid)
	}
	id, err := cfg.Provider.ID()
	if err != nil {
		return nil, fmt.Errorf("%w: provider key: %v", ErrInvalid, err)
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := d.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var addrs []types.Multiaddr
	for _, a := range cfg.Provider.AllAddrs() {
		addrs = append(addrs, types.Multiaddr{Multiaddr: a})
	}
	r := &router{id: id, addrs: addrs, blocks: d.Blocks, log: logger.With("component", "routing")}
	return server.Handler(r, server.WithPrometheusRegistry(reg), server.WithRoutingTimeout(cfg.Timeout)), nil
}

// router is boxo's DelegatedRouter over the blockstore.
type router struct {
	id     peer.ID
	addrs  []types.Multiaddr
	blocks Holder
	log    *slog.Logger
}

func (r *router) record(protocols ...string) *types.PeerRecord {
	id := r.id
	return &types.PeerRecord{Schema: types.SchemaPeer, ID: &id, Addrs: r.addrs, Protocols: protocols}
}

// FindProviders answers the serving peer for a block a pin holds, and no
// record otherwise.
func (r *router) FindProviders(ctx context.Context, c cid.Cid, _ int) (iter.ResultIter[types.Record], error) {
	has, err := r.blocks.Has(ctx, c)
	if err != nil {
		r.log.ErrorContext(ctx, "find providers", "cid", c, "err", err)
		return nil, fmt.Errorf("find providers of %s: %w", c, err)
	}
	if !has {
		return nil, routing.ErrNotFound
	}
	rec := r.record(ProtocolBitswap, ProtocolGatewayHTTP)
	return iter.ToResultIter(iter.FromSlice([]types.Record{rec})), nil
}

// FindPeers answers the serving peer's own addresses.
func (r *router) FindPeers(_ context.Context, p peer.ID, _ int) (iter.ResultIter[*types.PeerRecord], error) {
	if p != r.id {
		return nil, routing.ErrNotFound
	}
	return iter.ToResultIter(iter.FromSlice([]*types.PeerRecord{r.record(ProtocolBitswap, ProtocolGatewayHTTP)})), nil
}

func (r *router) ProvideBitswap(context.Context, *server.BitswapWriteProvideRequest) (time.Duration, error) {
	return 0, routing.ErrNotSupported
}

func (r *router) GetIPNS(context.Context, ipns.Name) (*ipns.Record, error) {
	return nil, routing.ErrNotSupported
}

func (r *router) PutIPNS(context.Context, ipns.Name, *ipns.Record) error {
	return routing.ErrNotSupported
}

func (r *router) GetClosestPeers(context.Context, cid.Cid) (iter.ResultIter[*types.PeerRecord], error) {
	return nil, routing.ErrNotSupported
}
