// Package bitswap is the serving role's libp2p peer: a host (TCP and QUIC)
// with a stable identity, running boxo's bitswap server, and only the
// server, over the carpark's checked blockstore (serve.Blockstore). It
// answers want-have and want-block, DONT_HAVE for what no pin holds; a
// block is read from the carpark and checked against its CID before it is
// sent (serve.Blockstore.Get), and a damaged one is never sent (the peer
// is told DONT_HAVE). Blocks of removed pins are not found, as over HTTP.
//
// A public server's limits (Config): a connection manager that trims
// beyond MaxPeers, libp2p's resource manager with its limits scaled to the
// machine, at most MaxWantsPerPeer wants queued per peer, and
// MaxOutstandingBytesPerPeer of blocks in flight to each peer. No block
// over 2 MiB is read (serve.Blockstore's bound, bitswap's own limit).
//
// Provider is the peer as others announce it (its key, its addresses,
// the HTTP trustless gateway's address): delegated routing (serve/routing)
// answers it, IPNI advertisements carry it.
package bitswap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	bsserver "github.com/ipfs/boxo/bitswap/server"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/multiformats/go-multiaddr"
)

// ErrInvalid: a configuration that cannot serve; nothing was started.
var ErrInvalid = errors.New("invalid bitswap server configuration")

// DefaultPort is the port the serving role's libp2p host listens on, TCP
// and UDP (QUIC) alike: kubo's swarm takes 4001.
const DefaultPort = 4002

// DefaultListenAddrs returns where the host listens by default: loopback,
// port 4002, TCP and QUIC (a deployment listens on 0.0.0.0 and announces
// its public name).
func DefaultListenAddrs() []string {
	return []string{"/ip4/127.0.0.1/tcp/4002", "/ip4/127.0.0.1/udp/4002/quic-v1"}
}

// Defaults of Config.
const (
	// DefaultMaxPeers is the connection manager's high water mark: beyond
	// it, the least useful connections are closed down to three quarters.
	DefaultMaxPeers = 2000
	// DefaultMaxWantsPerPeer bounds the wants queued for one peer
	// (boxo's default).
	DefaultMaxWantsPerPeer = 1024
	// DefaultMaxOutstandingBytesPerPeer bounds the blocks queued to one
	// peer and not yet sent. kubo uses 1 MiB from its local disk; a range
	// read of the carpark takes longer than a disk read, so more are kept
	// in flight (BenchmarkBitswapAgainstKubo).
	DefaultMaxOutstandingBytesPerPeer = 4 << 20
	// DefaultTaskWorkers send messages; DefaultBlockstoreWorkers read
	// blocks (range reads of the carpark) at once, for every peer.
	DefaultTaskWorkers       = 8
	DefaultBlockstoreWorkers = 128
	// DefaultReadAheadBytes bounds the blocks read ahead of their send,
	// as their wantlist arrives (readahead.go), counted at 256 KiB each.
	DefaultReadAheadBytes = 64 << 20
	// DefaultReadAheadTTL is how long a block read ahead is kept.
	DefaultReadAheadTTL = time.Second
)

// Config is the server's settings. Zero fields take their defaults;
// PrivateKey is required.
type Config struct {
	// PrivateKey is the peer's identity: its peer ID. The serving role
	// reads it from its configuration and never makes one up.
	PrivateKey crypto.PrivKey
	// ListenAddrs are the multiaddrs the host listens at.
	ListenAddrs []string
	// AnnounceAddrs, when set, are the addresses the host tells its peers
	// (identify) and Addrs returns instead of the ones it listens at: the
	// public name in front of a private address. A /p2p/ part is dropped.
	AnnounceAddrs []string
	// MaxPeers is the connection manager's high water mark.
	MaxPeers int
	// MaxWantsPerPeer bounds the wants queued for one peer.
	MaxWantsPerPeer int
	// MaxOutstandingBytesPerPeer bounds the bytes queued to one peer.
	MaxOutstandingBytesPerPeer int
	// TaskWorkers and BlockstoreWorkers: see the defaults.
	TaskWorkers, BlockstoreWorkers int
	// ReadAheadBytes and ReadAheadTTL bound the blocks read ahead of
	// their send.
	ReadAheadBytes int
	ReadAheadTTL   time.Duration
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = DefaultListenAddrs()
	}
	if c.MaxPeers == 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.MaxWantsPerPeer == 0 {
		c.MaxWantsPerPeer = DefaultMaxWantsPerPeer
	}
	if c.MaxOutstandingBytesPerPeer == 0 {
		c.MaxOutstandingBytesPerPeer = DefaultMaxOutstandingBytesPerPeer
	}
	if c.TaskWorkers == 0 {
		c.TaskWorkers = DefaultTaskWorkers
	}
	if c.BlockstoreWorkers == 0 {
		c.BlockstoreWorkers = DefaultBlockstoreWorkers
	}
	if c.ReadAheadBytes == 0 {
		c.ReadAheadBytes = DefaultReadAheadBytes
	}
	if c.ReadAheadTTL == 0 {
		c.ReadAheadTTL = DefaultReadAheadTTL
	}
	return c
}

// Validate reports a configuration that cannot serve. The zero values of
// everything but PrivateKey pass.
func (c Config) Validate() error {
	switch {
	case c.PrivateKey == nil:
		return fmt.Errorf("%w: no private key (the peer's identity comes from configuration)", ErrInvalid)
	case c.MaxPeers < 0, c.MaxWantsPerPeer < 0, c.MaxOutstandingBytesPerPeer < 0, c.TaskWorkers < 0, c.BlockstoreWorkers < 0, c.ReadAheadBytes < 0:
		return fmt.Errorf("%w: a negative limit", ErrInvalid)
	case c.ReadAheadTTL < 0:
		return fmt.Errorf("%w: negative ReadAheadTTL %v", ErrInvalid, c.ReadAheadTTL)
	}
	for _, a := range c.ListenAddrs {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			return fmt.Errorf("%w: listen address %q: %v", ErrInvalid, a, err)
		}
	}
	_, err := ParseAddrs(c.AnnounceAddrs)
	return err
}

// Blocks is what the server serves: serve.Blockstore. Get returns a
// block checked against c, or an error (format.ErrNotFound for one no pin
// holds); Has answers without reading the block. Safe for concurrent use.
type Blocks interface {
	Get(ctx context.Context, c cid.Cid) (blocks.Block, error)
	Has(ctx context.Context, c cid.Cid) (bool, error)
}

// Deps are what the server works with.
type Deps struct {
	Blocks Blocks
	// Logger, optional: nil discards.
	Logger *slog.Logger
}

// Server is the libp2p host answering bitswap. Its methods are safe for
// concurrent use.
type Server struct {
	host   host.Host
	net    interface{ Stop() }
	srv    *bsserver.Server
	ahead  *readAhead
	cancel context.CancelFunc
	addrs  []multiaddr.Multiaddr
	log    *slog.Logger
}

// New starts the host and its bitswap server.
func New(cfg Config, d Deps) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Blocks == nil {
		return nil, fmt.Errorf("%w: no Blocks to serve", ErrInvalid)
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "bitswap-server")
	cm, err := connmgr.NewConnManager(cfg.MaxPeers*3/4, cfg.MaxPeers, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("%w: connection manager: %v", ErrInvalid, err)
	}
	announce, _ := ParseAddrs(cfg.AnnounceAddrs)
	opts := []libp2p.Option{
		libp2p.Identity(cfg.PrivateKey),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.ConnectionManager(cm),
		// A server with a public address: no relays, no hole punching.
		libp2p.DisableRelay(),
	}
	if len(announce) > 0 {
		opts = append(opts, libp2p.AddrsFactory(func([]multiaddr.Multiaddr) []multiaddr.Multiaddr { return announce }))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("start libp2p host on %v: %w", cfg.ListenAddrs, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	network := bsnet.NewFromIpfsHost(h)
	ahead := newReadAhead(d.Blocks, cfg.ReadAheadBytes, cfg.ReadAheadTTL)
	srv := bsserver.New(ctx, network, ahead,
		bsserver.TaskWorkerCount(cfg.TaskWorkers),
		bsserver.EngineTaskWorkerCount(cfg.TaskWorkers),
		bsserver.EngineBlockstoreWorkerCount(cfg.BlockstoreWorkers),
		bsserver.MaxOutstandingBytesPerPeer(cfg.MaxOutstandingBytesPerPeer),
		bsserver.MaxQueuedWantlistEntriesPerPeer(uint(cfg.MaxWantsPerPeer)),
		// A want-have is answered from the lookup alone: never a block
		// read to send a small block in its place.
		bsserver.WithWantHaveReplaceSize(0),
	)
	network.Start(srv)
	s := &Server{host: h, net: network, srv: srv, ahead: ahead, cancel: cancel, addrs: announce, log: logger}
	if len(s.addrs) == 0 {
		s.addrs = h.Addrs()
	}
	return s, nil
}

// ID is the peer's identity.
func (s *Server) ID() peer.ID { return s.host.ID() }

// Addrs are the addresses the peer is announced at (AnnounceAddrs, or
// where it listens), without /p2p/.
func (s *Server) Addrs() []multiaddr.Multiaddr { return append([]multiaddr.Multiaddr(nil), s.addrs...) }

// P2pAddrs are Addrs with the peer's /p2p/ identity: what a client dials.
func (s *Server) P2pAddrs() []multiaddr.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: s.host.ID(), Addrs: s.addrs})
	if err != nil {
		return nil
	}
	return addrs
}

// Sent is what the server has sent so far: blocks and their bytes.
func (s *Server) Sent() (blocks, bytes uint64) {
	st, _ := s.srv.Stat()
	return st.BlocksSent, st.DataSent
}

// Close stops the server and the host.
func (s *Server) Close() error {
	s.net.Stop()
	s.srv.Close()
	s.ahead.close()
	s.cancel()
	return s.host.Close()
}

// ParseAddrs reads multiaddrs (announce addresses); a trailing /p2p/ part
// is dropped (the peer's own is added where needed).
func ParseAddrs(addrs []string) ([]multiaddr.Multiaddr, error) {
	var out []multiaddr.Multiaddr
	for _, a := range addrs {
		m, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("%w: address %q: %v", ErrInvalid, a, err)
		}
		transport, _ := peer.SplitAddr(m)
		if transport == nil {
			return nil, fmt.Errorf("%w: address %q: no transport part", ErrInvalid, a)
		}
		out = append(out, transport)
	}
	return out, nil
}
