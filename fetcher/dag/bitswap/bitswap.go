// Package bitswap is a DAG source that fetches blocks over bitswap (boxo's
// client) from the request's origins, peers already connected, and, when
// configured, providers found through delegated routing. It walks the DAG
// itself, depth-first, asking for the blocks it will need next before it
// needs them, so that enough are in flight to fill the pipe; the
// dag.Fetcher verifies what it yields like any other source's blocks.
//
// It owns (or is given) the fetcher's libp2p host; the API gateway reports
// the host's addresses as the pin's delegates, so that clients connect to
// it and serve their blocks.
package bitswap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	bsclient "github.com/ipfs/boxo/bitswap/client"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/pin"
)

// Defaults of Config.
const (
	// DefaultWindowBytes bounds the blocks wanted and not yet yielded:
	// 8 MiB is 32 UnixFS chunks of 256 KiB. On loopback a bigger window
	// fetched no faster (BenchmarkBitswap) and cost its size in memory
	// and more: 32 MiB took the fetcher's peak from about 60 to 105 MiB.
	DefaultWindowBytes = 8 << 20
	// DefaultConnectTimeout bounds dialing an origin.
	DefaultConnectTimeout = 30 * time.Second
)

// DefaultListenAddrs returns where a host the source creates listens.
func DefaultListenAddrs() []string {
	return []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}
}

// Config configures the bitswap source. Zero fields take their defaults.
type Config struct {
	// Host is the libp2p host to run bitswap on; nil creates one on
	// ListenAddrs, closed with the source.
	Host        host.Host
	ListenAddrs []string
	// PrivateKey is the identity of a host the source creates (see
	// SlotKey); nil makes a new one, a different peer id on every start.
	PrivateKey crypto.PrivKey
	// AnnounceAddrs, when set, are the addresses a host the source creates
	// tells its peers (identify) and Addrs returns, instead of the ones it
	// listens at: a public address in front of a private one.
	AnnounceAddrs []string
	// PublicIPv4, when valid and AnnounceAddrs is empty, replaces the IPv4
	// address of every address the host listens at but loopback ones
	// (which, like IPv6 ones, are not announced): the public address of a
	// task behind 1:1 NAT (a Fargate task's public IP), which its
	// interfaces never show.
	PublicIPv4 netip.Addr
	// Routing finds providers beyond the origins and connected peers
	// (delegated routing, see DelegatedRouting); nil asks no one else.
	Routing routing.ContentDiscovery
	// WindowBytes bounds the bytes of blocks wanted ahead of the walk.
	WindowBytes int
	// ConnectTimeout bounds dialing each origin; it is also kept under
	// half the chunk timeout, so that dialing is not taken for a stall.
	ConnectTimeout time.Duration
	// AllowPrivate lets a host the source creates dial private, loopback
	// and link-local addresses. Off, origins (even DNS names) that lead
	// into pickup's own network are refused. Only for tests and closed
	// networks.
	AllowPrivate bool
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Host == nil && len(c.ListenAddrs) == 0 {
		c.ListenAddrs = DefaultListenAddrs()
	}
	if c.WindowBytes == 0 {
		c.WindowBytes = DefaultWindowBytes
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.WindowBytes <= 0:
		return fmt.Errorf("bitswap: window bytes must be positive, got %d", c.WindowBytes)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("bitswap: connect timeout must be positive, got %s", c.ConnectTimeout)
	}
	for _, a := range c.ListenAddrs {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			return fmt.Errorf("bitswap: listen address %q: %w", a, err)
		}
	}
	if _, err := parseAnnounce(c.AnnounceAddrs); err != nil {
		return err
	}
	return nil
}

// Source fetches DAGs over bitswap. It is safe for concurrent use: every
// fetch has its own bitswap session on the one client.
type Source struct {
	cfg     Config
	host    host.Host
	ownHost bool
	net     interface{ Stop() }
	client  *bsclient.Client
	cancel  context.CancelFunc
	log     *slog.Logger
	// fetches numbers fetches, to tag the connections each protects.
	fetches atomic.Uint64
}

var _ dag.Source = (*Source)(nil)

// New starts a bitswap client on cfg.Host, or on a host of its own. A nil
// logger discards.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{cfg: cfg, host: cfg.Host, log: logger.With("component", "bitswap")}
	if s.host == nil {
		opts := []libp2p.Option{libp2p.ListenAddrStrings(cfg.ListenAddrs...)}
		if cfg.PrivateKey != nil {
			opts = append(opts, libp2p.Identity(cfg.PrivateKey))
		}
		if announce, _ := parseAnnounce(cfg.AnnounceAddrs); len(announce) > 0 {
			opts = append(opts, libp2p.AddrsFactory(func([]multiaddr.Multiaddr) []multiaddr.Multiaddr { return announce }))
		} else if cfg.PublicIPv4.Is4() {
			opts = append(opts, libp2p.AddrsFactory(func(addrs []multiaddr.Multiaddr) []multiaddr.Multiaddr { return withPublicIPv4(addrs, cfg.PublicIPv4) }))
		}
		if !cfg.AllowPrivate {
			opts = append(opts, libp2p.ConnectionGater(publicOnly{}))
		}
		h, err := libp2p.New(opts...)
		if err != nil {
			return nil, fmt.Errorf("bitswap: start libp2p host: %w", err)
		}
		s.host, s.ownHost = h, true
	}
	ctx, cancel := context.WithCancel(context.Background())
	network := bsnet.NewFromIpfsHost(s.host)
	// No blockstore: blocks go to the fetch that wants them, not to disk,
	// so the client has nothing to count duplicates against.
	s.client = bsclient.New(ctx, network, cfg.Routing, nil, bsclient.WithoutDuplicatedBlockStats())
	// A client built on its own must start its network, or it never
	// hears an answer.
	network.Start(s.client)
	s.net, s.cancel = network, cancel
	return s, nil
}

// Name implements dag.Source.
func (s *Source) Name() string { return "bitswap" }

// Host is the libp2p host bitswap runs on.
func (s *Source) Host() host.Host { return s.host }

// Addrs are the host's addresses with its /p2p/ identity: what the API
// gateway reports as delegates. A host with no address has none (not a
// bare /p2p/<id>, which nobody can dial).
func (s *Source) Addrs() []multiaddr.Multiaddr {
	if len(s.host.Addrs()) == 0 {
		return nil
	}
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: s.host.ID(), Addrs: s.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// parseAnnounce reads announce addresses; a trailing /p2p/ part is
// dropped (Addrs adds the host's own).
func parseAnnounce(addrs []string) ([]multiaddr.Multiaddr, error) {
	var out []multiaddr.Multiaddr
	for _, a := range addrs {
		m, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("bitswap: announce address %q: %w", a, err)
		}
		transport, _ := peer.SplitAddr(m)
		if transport == nil {
			return nil, fmt.Errorf("bitswap: announce address %q: no transport part", a)
		}
		out = append(out, transport)
	}
	return out, nil
}

// withPublicIPv4 returns addrs with every IPv4 address but loopback ones
// replaced by ip, each result once, loopback addresses dropped: what a peer
// outside the NAT can dial.
func withPublicIPv4(addrs []multiaddr.Multiaddr, ip netip.Addr) []multiaddr.Multiaddr {
	public, err := multiaddr.NewComponent("ip4", ip.String())
	if err != nil {
		return addrs
	}
	var out []multiaddr.Multiaddr
	seen := map[string]bool{}
	for _, a := range addrs {
		if len(a) == 0 || a[0].Code() != multiaddr.P_IP4 {
			continue
		}
		if own, err := netip.ParseAddr(a[0].Value()); err != nil || own.IsLoopback() {
			continue
		}
		m := append(multiaddr.Multiaddr{*public}, a[1:]...)
		if !seen[m.String()] {
			seen[m.String()] = true
			out = append(out, m)
		}
	}
	return out
}

// Close stops the client, and the host if the source created it.
func (s *Source) Close() error {
	err := s.client.Close()
	s.net.Stop()
	s.cancel()
	if s.ownHost {
		err = errors.Join(err, s.host.Close())
	}
	return err
}

// Fetch implements dag.Source. Dialing the origins happens on the stream's
// first Next.
func (s *Source) Fetch(ctx context.Context, req dag.Request, limits dag.Limits) (dag.Blocks, error) {
	ctx, cancel := context.WithCancel(ctx)
	st := &stream{
		src:       s,
		ctx:       ctx,
		cancel:    cancel,
		req:       req,
		limits:    limits,
		walk:      dag.NewWalk(req.Root),
		requested: make(map[cid.Cid]struct{}),
		arrived:   make(map[cid.Cid][]byte),
		in:        make(chan arrival, 64),
		tag:       fmt.Sprintf("pickup-fetch-%d", s.fetches.Add(1)),
	}
	return st, nil
}

// connect dials the request's origins at once and protects the
// connections for the fetch. It fails only when there is no one at all to
// ask.
func (s *Source) connect(ctx context.Context, origins []multiaddr.Multiaddr, tag string, limits dag.Limits) error {
	infos := make(map[peer.ID]*peer.AddrInfo)
	for _, a := range origins {
		info, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			s.log.Debug("origin without a peer id", "addr", a, "err", err)
			continue
		}
		if info.ID == s.host.ID() {
			continue
		}
		if prev, ok := infos[info.ID]; ok {
			prev.Addrs = append(prev.Addrs, info.Addrs...)
			continue
		}
		infos[info.ID] = info
	}
	timeout := min(s.cfg.ConnectTimeout, limits.ChunkTimeout/2)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		connected int
		errs      []error
	)
	for _, info := range infos {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := s.host.Connect(cctx, *info)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("dial %s: %w", info.ID, err))
				return
			}
			s.host.ConnManager().Protect(info.ID, tag)
			connected++
		})
	}
	wg.Wait()
	if connected > 0 || s.cfg.Routing != nil || len(s.host.Network().Peers()) > 0 {
		return nil
	}
	if len(infos) == 0 {
		return dag.Fail(pin.ReasonSourcesFailed, "no origins to ask, no routing, no peers connected")
	}
	// A dial's error can quote what the peer sent: for the log only.
	return dag.FailDetail(pin.ReasonSourcesFailed, errors.Join(errs...).Error(), "could not dial any of the %d origins", len(infos))
}

func (s *Source) unprotect(tag string) {
	for _, p := range s.host.Network().Peers() {
		s.host.ConnManager().Unprotect(p, tag)
	}
}
