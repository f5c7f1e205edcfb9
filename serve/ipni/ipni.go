// Package ipni advertises to IPNI (the InterPlanetary Network Indexer) what
// the carpark serves: for every CAR validated, a signed advertisement of
// its blocks' multihashes naming the serve peer (its libp2p addresses and
// its HTTP gateway, with the bitswap and trustless-gateway transports);
// for a root removed and deleted, a removal of its CARs. Indexers fetch
// the chain from pickup over HTTP (Handler: go-libipni's ipnisync
// protocol, GET /ipni/v1/ad/head and /ipni/v1/ad/{cid}) when told of a
// new head (announced over HTTP to each configured indexer).
//
// # The chain is events
//
// The chain lives in the event log, never only in memory: one stream
// (Stream, "ipni-ads"), one event (Advertised) per advertisement, at the
// revision of its place in the chain, recording the ad's signed fields
// and its CID. Every serve task folds the stream (and follows it live),
// so any task serves the head and any ad, and a restart takes up the
// chain where it was. An ad's entry chunks are not stored: they are
// recomputed from the CAR's index object (the same object the block
// lookup is loaded from, decoded and checked by locate.ValidatedEntries),
// the CAR's multihashes in its order, cut into chunks of ChunkSize, the
// last chunk first (each links to the next); the same bytes give the same
// CIDs, which the ad's
// event records (Chunks) so that any task knows which CAR a requested
// chunk is part of, and checks the chunk it rebuilt against its CID
// before it serves it.
//
// # Several publishers, one chain
//
// Every serve task runs a Publisher. Each follows the log for
// CarValidated and RootDeleted from the position the chain has decided
// up to (each ad records it: Through), decides a batch of events on the
// chain as folded (an ad per CAR not advertised already; a removal per
// CAR advertised of a deleted root), and appends the batch's ads at the
// stream's revision it decided on. Of two publishers deciding at once,
// one append lands; the other is refused (a wrong revision), reads the
// stream again and follows the log again from the new Through, deciding
// only what the winner did not: the chain never forks and never skips
// an event. The decisions are a pure function of the chain and the
// events, so two publishers deciding on one head decide the same ads;
// the ads' event ids name the publisher (and the ad), so the log's
// revision check, not its idempotency, picks the one that lands, and each
// publisher knows which ads it appended.
//
// # Never in a pin's way
//
// Publishers are followers of the log, as the block lookup's loader is:
// pins never wait for them. A backlog (CARs validated while no publisher
// ran) is taken in batches of up to BatchSize events per append, each
// batch announced once; a failed read of the carpark or the log, or a
// failed announcement, is retried with backoff.
//
// # Serving
//
// Handler answers 503 until the task has read the chain (an indexer must
// not take a restarting task's empty chain for the chain). A chunk of a
// CAR deleted since its ad (its index object gone) is not found: an
// indexer syncing the chain afresh skips the entries of a context ID
// removed later in the chain (storetheindex does:
// TestNewIndexerAfterADeletion).
package ipni

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	"github.com/ipni/go-libipni/metadata"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Defaults of Config's fields.
const (
	// DefaultChunkSize is how many multihashes an entry chunk holds:
	// 16,384 (about 1.1 MB of dag-json for sha2-256 multihashes, under the
	// 4 MiB block limit of IPFS transports; Elastic IPFS used 10,000).
	DefaultChunkSize = 16384
	// DefaultBatchSize is how many log events one append of the chain
	// decides: 100 CARs' ads are one write and one announcement.
	DefaultBatchSize = 100
	// DefaultRetryDelay is the first wait before trying again what failed;
	// it doubles up to a minute.
	DefaultRetryDelay = time.Second
	// DefaultAnnounceTimeout bounds one announcement to the indexers.
	DefaultAnnounceTimeout = 10 * time.Second
)

// Config says who advertises and how.
type Config struct {
	// Key is the serve peer's identity: the provider the ads name, and
	// the publisher that signs them and the chain's head. Required.
	Key crypto.PrivKey
	// Addrs are the serve peer's libp2p multiaddrs (bitswap), without
	// /p2p.
	Addrs []multiaddr.Multiaddr
	// HTTPAddr is the serve role's HTTP multiaddr (/ip4/…/tcp/…/http, or
	// /dns/…/https): its trustless gateway, and where Handler is mounted
	// at /ipni/v1/ad/. It is in the ads' addresses and in the
	// announcements. Required.
	HTTPAddr multiaddr.Multiaddr
	// Indexers are the URLs announcements are sent to (PUT /announce is
	// added to a URL without a path); none: nothing is announced, the
	// chain is still built and served.
	Indexers []string
	// ChunkSize is how many multihashes an entry chunk holds. Default
	// DefaultChunkSize. Changing it changes the chunks of new ads only.
	ChunkSize int
	// BatchSize is how many log events one append decides. Default
	// DefaultBatchSize.
	BatchSize int
	// RetryDelay is the first wait before retrying. Default
	// DefaultRetryDelay.
	RetryDelay time.Duration
	// AnnounceTimeout bounds one announcement. Default
	// DefaultAnnounceTimeout.
	AnnounceTimeout time.Duration
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Key == nil:
		return errors.New("ipni: the serve peer's key is needed")
	case c.HTTPAddr == nil:
		return errors.New("ipni: the serve role's HTTP multiaddr is needed")
	case c.ChunkSize < 0 || c.BatchSize < 0 || c.RetryDelay < 0 || c.AnnounceTimeout < 0:
		return fmt.Errorf("ipni: negative chunk size %d, batch size %d, retry delay %v or announce timeout %v", c.ChunkSize, c.BatchSize, c.RetryDelay, c.AnnounceTimeout)
	}
	if _, err := peer.IDFromPrivateKey(c.Key); err != nil {
		return fmt.Errorf("ipni: key: %w", err)
	}
	for _, u := range c.Indexers {
		if _, err := announceURL(u); err != nil {
			return fmt.Errorf("ipni: indexer %q: %w", u, err)
		}
	}
	return nil
}

// Reader reads streams of the log.
type Reader interface {
	ReadStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, limit int) ([]eventlog.Event, error)
}

// Log is the event log as a Publisher uses it: it follows the log and
// appends to the chain's stream only.
type Log interface {
	Reader
	Append(ctx context.Context, stream string, expected eventlog.Expected, events ...eventlog.Proposed) (eventlog.AppendResult, error)
	Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error
}

// Objects reads objects of the carpark (fetcher/carstore's S3 and Dir):
// length bytes from offset, length < 0 for all to the end.
type Objects interface {
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
}

// Deps are what a Publisher works with.
type Deps struct {
	Log     Log
	Objects Objects
	// IsNotFound reports an error of Objects that means the object is not
	// there (carstore.ErrNotFound): a CAR whose index is gone is not
	// advertised, and its chunks are not found. Default: none is.
	IsNotFound func(error) bool
	// Actor names the publisher in its events' metadata. Default "ipni".
	Actor string
	// Logger receives the publisher's logs; nil discards them.
	Logger *slog.Logger
}

// Publisher builds, serves and announces the chain. It is safe for
// concurrent use; Run it once per process (several processes may run one
// each on one log).
type Publisher struct {
	cfg      Config
	d        Deps
	logger   *slog.Logger
	peer     peer.ID
	instance uuid.UUID // names this publisher's events
	addrs    []string
	metadata []byte
	chain    *chain
	announce *announcer
	// prepared holds what was read for events not yet in the chain, so
	// that a lost race does not read the carpark again. Publish loop only.
	prepared map[eventlog.Position]prepared
	// cache is the multihashes of the last CAR whose chunks were served:
	// an indexer fetches a CAR's chunks one after the other.
	cache struct {
		sync.Mutex
		rev uint64
		ad  Advertised
		mhs []multihash.Multihash
	}
	stats struct{ ads, removals, multihashes, races, skipped atomic.Int64 }
	// ready is set once Run has read the chain: before, Handler answers
	// 503, never "no such ad" (an indexer would take that for a broken
	// chain).
	ready atomic.Bool
}

// Stats count what a Publisher appended, and what it met.
type Stats struct {
	// Ads and Removals are the ads this publisher appended; Multihashes
	// the multihashes of its ads.
	Ads, Removals, Multihashes int64
	// Races are appends lost to another publisher; Skipped the CARs not
	// advertised (no index, or a bad or missing one).
	Races, Skipped int64
}

// New returns a publisher; Run starts it.
func New(cfg Config, d Deps) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Log == nil || d.Objects == nil {
		return nil, errors.New("ipni: a log and a carpark are needed")
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.AnnounceTimeout == 0 {
		cfg.AnnounceTimeout = DefaultAnnounceTimeout
	}
	if d.IsNotFound == nil {
		d.IsNotFound = func(error) bool { return false }
	}
	if d.Actor == "" {
		d.Actor = "ipni"
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	id, _ := peer.IDFromPrivateKey(cfg.Key)
	transports := metadata.Default.New(metadata.Bitswap{}, metadata.IpfsGatewayHttp{})
	md, err := transports.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("ipni: metadata: %w", err)
	}
	p := &Publisher{cfg: cfg, d: d, logger: d.Logger.With("component", "ipni"), peer: id, instance: uuid.New(), metadata: md,
		chain: newChain(), prepared: map[eventlog.Position]prepared{}}
	for _, a := range cfg.Addrs {
		p.addrs = append(p.addrs, a.String())
	}
	p.addrs = append(p.addrs, cfg.HTTPAddr.String())
	if len(cfg.Indexers) > 0 {
		if p.announce, err = newAnnouncer(cfg, id, p.logger); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Peer is the provider and publisher the ads name.
func (p *Publisher) Peer() peer.ID { return p.peer }

// Head is the chain's head as this process has folded it (cid.Undef
// before the first ad), and the number of ads in the chain.
func (p *Publisher) Head() (cid.Cid, uint64) {
	t := p.chain.tip()
	return t.head, t.next
}

// Stats returns the counts so far.
func (p *Publisher) Stats() Stats {
	s := &p.stats
	return Stats{Ads: s.ads.Load(), Removals: s.removals.Load(), Multihashes: s.multihashes.Load(), Races: s.races.Load(), Skipped: s.skipped.Load()}
}

// Run reads the chain, then follows it (for Handler) and the log (to
// publish), and announces each head it appends (and, once, the head it
// starts from), until ctx is done; it returns ctx's error. Failures are
// logged and retried.
func (p *Publisher) Run(ctx context.Context) error {
	if err := p.retry(ctx, "read the chain", func() error { return p.chain.sync(ctx, p.d.Log) }); err != nil {
		return err
	}
	p.ready.Store(true)
	head, n := p.Head()
	p.logger.InfoContext(ctx, "chain read", "head", head, "ads", n, "peer", p.peer)
	var wg sync.WaitGroup
	if p.announce != nil {
		wg.Go(func() { p.announce.run(ctx) })
		if head.Defined() {
			p.announce.tell(head)
		}
	}
	wg.Go(func() { p.follow(ctx) })
	p.publishLoop(ctx)
	wg.Wait()
	return ctx.Err()
}

// follow folds the chain's stream as others append to it.
func (p *Publisher) follow(ctx context.Context) {
	filter := eventlog.Filter{StreamPrefixes: []string{Stream}, Types: []string{TypeAdvertised}}
	for ctx.Err() == nil {
		err := p.d.Log.Subscribe(ctx, p.chain.tip().headPos, filter, func(batch []eventlog.Event) error {
			for _, e := range batch {
				if e.Stream != Stream {
					continue
				}
				err := p.chain.apply(e)
				if errors.Is(err, errGap) {
					err = p.chain.sync(ctx, p.d.Log)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		p.logger.ErrorContext(ctx, "following the chain failed; resuming", "err", err, "after", p.cfg.RetryDelay)
		sleep(ctx, p.cfg.RetryDelay)
	}
}

// retry runs fn until it returns nil or ctx is done, waiting RetryDelay,
// doubled each time up to a minute, between tries.
func (p *Publisher) retry(ctx context.Context, what string, fn func() error) error {
	wait := p.cfg.RetryDelay
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.logger.WarnContext(ctx, "failed; trying again", "op", what, "err", err, "in", wait)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, time.Minute)
	}
}

// sleep waits d, or less if ctx ends (false then).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
