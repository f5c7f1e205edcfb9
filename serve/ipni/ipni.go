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
// lookup is loaded from, decoded by locate.Entries), the CAR's multihashes
// in its order, cut into chunks of ChunkSize, the last chunk first (each
// links to the next); the same bytes give the same CIDs, which the ad's
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
package ipni

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipni/go-libipni/ingest/schema"
	"github.com/ipni/go-libipni/metadata"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/serve/locate"
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

// errRaced: another publisher appended first; follow the log again from
// the chain's new Through.
var errRaced = errors.New("another publisher appended first")

// publishLoop follows the log for what to advertise.
func (p *Publisher) publishLoop(ctx context.Context) {
	filter := eventlog.Filter{StreamPrefixes: []string{pin.StreamPrefix, pin.RootStreamPrefix}, Types: []string{pin.TypeCarValidated, pin.TypeRootDeleted}}
	for ctx.Err() == nil {
		if err := p.retry(ctx, "read the chain", func() error { return p.chain.sync(ctx, p.d.Log) }); err != nil {
			return
		}
		from := p.chain.tip().through
		err := p.d.Log.Subscribe(ctx, from, filter, func(batch []eventlog.Event) error {
			for len(batch) > 0 {
				n := min(len(batch), p.cfg.BatchSize)
				if err := p.decide(ctx, batch[:n]); err != nil {
					return err
				}
				batch = batch[n:]
			}
			return nil
		})
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errRaced):
			p.stats.races.Add(1)
			p.logger.DebugContext(ctx, "another publisher appended first; deciding again")
			continue
		}
		p.logger.ErrorContext(ctx, "publishing failed; resuming", "err", err, "after", p.cfg.RetryDelay)
		sleep(ctx, p.cfg.RetryDelay)
	}
}

// prepared is what an event asks of the chain, read from the log and the
// carpark: it does not depend on the chain.
type prepared struct {
	// skip: nothing to advertise (logged when read).
	skip bool
	// rm: the root was deleted.
	rm   bool
	root string
	// For a CAR validated: its CID, index object and chunks.
	car    cid.Cid
	index  indexObject
	chunks []cid.Cid
	mhs    int
}

// prepare reads what e asks for; only ctx's end is an error.
func (p *Publisher) prepare(ctx context.Context, e eventlog.Event) (prepared, error) {
	if pr, ok := p.prepared[e.Position]; ok {
		return pr, nil
	}
	pr, err := p.read(ctx, e)
	if err != nil {
		return pr, err
	}
	if len(p.prepared) >= 4*p.cfg.BatchSize {
		clear(p.prepared)
	}
	p.prepared[e.Position] = pr
	return pr, nil
}

func (p *Publisher) read(ctx context.Context, e eventlog.Event) (prepared, error) {
	log := p.logger.With("position", e.Position, "stream", e.Stream)
	skip := func(msg string, args ...any) (prepared, error) {
		p.stats.skipped.Add(1)
		log.WarnContext(ctx, msg, args...)
		return prepared{skip: true}, nil
	}
	if e.Type == pin.TypeRootDeleted {
		root, ok := pin.RootOf(e.Stream)
		if !ok {
			return skip("skipped a RootDeleted outside a root's stream")
		}
		return prepared{rm: true, root: root}, nil
	}
	r, err := pinlog.Decode(e)
	v, ok := r.Payload.(pin.CarValidated)
	if err != nil || !ok {
		return skip("skipped an event that does not decode as CarValidated", "err", err)
	}
	if v.Index == "" {
		return skip("skipped a CAR validated without an index", "key", v.Key)
	}
	carCID, err := cid.Parse(v.CarCID)
	if err != nil {
		return skip("skipped a CarValidated whose CAR CID does not parse", "car_cid", v.CarCID, "err", err)
	}
	id, ok := pin.RequestIDOf(e.Stream)
	if !ok {
		return skip("skipped a CarValidated outside a pin's stream")
	}
	var s pin.State
	if err := p.retry(ctx, "read pin", func() (err error) { s, _, err = pinlog.Read(ctx, p.d.Log, id); return err }); err != nil {
		return prepared{}, err
	}
	root, err := cid.Parse(s.Request.CID)
	if err != nil {
		return skip("skipped a CarValidated whose pin names no root", "err", err)
	}
	obj := indexObject{key: v.Index, bytes: v.IndexBytes, sha256: v.IndexSHA256, carBytes: v.Bytes}
	var mhs []multihash.Multihash
	var bad, missing error
	err = p.retry(ctx, "read index", func() error {
		var err error
		mhs, err = multihashes(ctx, p.d.Objects, obj)
		switch {
		case err != nil && p.d.IsNotFound(err):
			missing = err
			return nil
		case errors.Is(err, locate.ErrBadIndex):
			bad = err
			return nil
		}
		return err
	})
	switch {
	case err != nil:
		return prepared{}, err
	case missing != nil:
		return skip("skipped a CAR whose index object is missing", "index", v.Index, "err", missing)
	case bad != nil:
		return skip("skipped a CAR whose index object is bad", "index", v.Index, "err", bad)
	case len(mhs) == 0:
		return skip("skipped a CAR whose index names no block", "index", v.Index)
	}
	chunks, err := chunkCIDs(mhs, p.cfg.ChunkSize)
	if err != nil {
		return prepared{}, err
	}
	return prepared{root: pinlog.CanonicalRoot(root), car: carCID, index: obj, chunks: chunks, mhs: len(mhs)}, nil
}

// decide appends the ads a batch of events asks for, on the chain as it
// is; errRaced when another publisher appended first.
func (p *Publisher) decide(ctx context.Context, events []eventlog.Event) error {
	preps := make([]prepared, len(events))
	for i, e := range events {
		if e.Position <= p.chain.tip().through {
			continue
		}
		var err error
		if preps[i], err = p.prepare(ctx, e); err != nil {
			return err
		}
	}
	wait := p.cfg.RetryDelay
	for {
		if err := p.retry(ctx, "read the chain", func() error { return p.chain.sync(ctx, p.d.Log) }); err != nil {
			return err
		}
		t := p.chain.tip()
		ads, err := p.draft(t, events, preps)
		if err != nil || len(ads) == 0 {
			return err
		}
		props := make([]eventlog.Proposed, len(ads))
		for i, ad := range ads {
			if props[i], err = codec.Propose(ad, eventID(p.instance, ad.CID), eventlog.Metadata{Actor: p.d.Actor}); err != nil {
				return err
			}
		}
		_, err = p.d.Log.Append(ctx, Stream, eventlog.ExpectedAfter(t.next-1, t.next > 0), props...)
		switch {
		case err == nil:
			// Fold the ads before they are announced: an indexer told of
			// the head asks this process for it at once.
			if err := p.retry(ctx, "read the chain", func() error { return p.chain.sync(ctx, p.d.Log) }); err != nil {
				return err
			}
			p.published(ctx, ads)
			return nil
		case eventlog.IsWrongRevision(err) || errors.Is(err, eventlog.ErrDuplicateID):
			return errRaced
		case ctx.Err() != nil:
			return ctx.Err()
		}
		// Nothing is known to be written: decide again on the chain as
		// it then is (an append that landed is in it; the same ids make
		// a retry of it a no-op).
		p.logger.WarnContext(ctx, "appending to the chain failed; trying again", "err", err, "in", wait)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, time.Minute)
	}
}

// published records what was appended and announces the new head.
func (p *Publisher) published(ctx context.Context, ads []Advertised) {
	for _, ad := range ads {
		if ad.IsRm {
			p.stats.removals.Add(1)
		} else {
			p.stats.ads.Add(1)
			p.stats.multihashes.Add(int64(ad.Multihashes))
		}
	}
	last := ads[len(ads)-1]
	for pos := range p.prepared {
		if pos <= last.Through {
			delete(p.prepared, pos)
		}
	}
	p.logger.InfoContext(ctx, "published", "ads", len(ads), "head", last.CID, "through", last.Through)
	if p.announce != nil {
		if c, err := cid.Parse(last.CID); err == nil {
			p.announce.tell(c)
		}
	}
}

// draft decides the ads that events ask for on the chain at t, in order,
// each following the one before; the last records the batch's last
// position as its Through. Events at or before t.through are decided
// already.
func (p *Publisher) draft(t tip, events []eventlog.Event, preps []prepared) ([]Advertised, error) {
	head := t.head
	added := map[string]int{} // CAR → its ad's index in ads
	removed := map[string]bool{}
	live := func(car string) bool {
		_, again := added[car]
		return again || (!removed[car] && p.chain.isLive(car))
	}
	var ads []Advertised
	var last eventlog.Position
	next := func(ad Advertised, err error) error {
		if err != nil {
			return err
		}
		ads = append(ads, ad)
		head, err = cid.Parse(ad.CID)
		return err
	}
	for i, e := range events {
		if e.Position <= t.through {
			continue
		}
		last = e.Position
		pr := preps[i]
		switch {
		case pr.skip:
		case pr.rm:
			var cars []Advertised
			for _, car := range p.chain.liveOf(pr.root) {
				if _, again := added[car]; !again && !removed[car] {
					cars = append(cars, Advertised{CarCID: car, Root: pr.root})
				}
			}
			for _, i := range added {
				if ads[i].Root == pr.root {
					cars = append(cars, ads[i])
				}
			}
			slices.SortFunc(cars, func(a, b Advertised) int { return strings.Compare(a.CarCID, b.CarCID) })
			for _, a := range cars {
				if err := next(p.removal(head, a, e.Position)); err != nil {
					return nil, err
				}
				delete(added, a.CarCID)
				removed[a.CarCID] = true
			}
		case live(pr.car.String()):
			// A second pin of the root, completed from the carpark: the
			// CAR is advertised already.
		default:
			if err := next(p.advertisement(head, pr, e.Position)); err != nil {
				return nil, err
			}
			added[pr.car.String()] = len(ads) - 1
			delete(removed, pr.car.String())
		}
	}
	if len(ads) > 0 {
		ads[len(ads)-1].Through = last
	}
	return ads, nil
}

// advertisement is the signed ad of a CAR, after prev.
func (p *Publisher) advertisement(prev cid.Cid, pr prepared, through eventlog.Position) (Advertised, error) {
	chunks := make([]string, len(pr.chunks))
	for i, c := range pr.chunks {
		chunks[i] = c.String()
	}
	a := Advertised{
		Entries: chunks[0], ContextID: pr.car.Bytes(), Metadata: p.metadata,
		CarCID: pr.car.String(), Root: pr.root,
		Index: pr.index.key, IndexBytes: pr.index.bytes, IndexSHA256: pr.index.sha256, CarBytes: pr.index.carBytes,
		Chunks: chunks, ChunkSize: p.cfg.ChunkSize, Multihashes: pr.mhs, Through: through,
	}
	return p.sign(prev, a)
}

// removal is the signed removal of the CAR of ad, after prev.
func (p *Publisher) removal(prev cid.Cid, ad Advertised, through eventlog.Position) (Advertised, error) {
	car, err := cid.Parse(ad.CarCID)
	if err != nil {
		return Advertised{}, fmt.Errorf("removal of %q: %w", ad.CarCID, err)
	}
	return p.sign(prev, Advertised{Entries: schema.NoEntries.Cid.String(), ContextID: car.Bytes(), IsRm: true,
		CarCID: ad.CarCID, Root: ad.Root, Through: through})
}

// sign fills in the ad's provider, addresses and previous ad, signs it
// and names it by its CID.
func (p *Publisher) sign(prev cid.Cid, a Advertised) (Advertised, error) {
	a.Provider, a.Addresses = p.peer.String(), p.addrs
	if prev.Defined() {
		a.PreviousID = prev.String()
	}
	ad, err := toSchema(a)
	if err != nil {
		return a, err
	}
	if err := ad.Sign(p.cfg.Key); err != nil {
		return a, fmt.Errorf("sign ad: %w", err)
	}
	a.Signature = ad.Signature
	_, c, err := adBytes(a)
	if err != nil {
		return a, err
	}
	a.CID = c.String()
	return a, nil
}

// toSchema is the go-libipni form of an ad.
func toSchema(a Advertised) (schema.Advertisement, error) {
	entries, err := cid.Parse(a.Entries)
	if err != nil {
		return schema.Advertisement{}, fmt.Errorf("ad entries: %w", err)
	}
	ad := schema.Advertisement{Provider: a.Provider, Addresses: a.Addresses, Signature: a.Signature,
		Entries: cidlink.Link{Cid: entries}, ContextID: a.ContextID, Metadata: a.Metadata, IsRm: a.IsRm}
	if a.PreviousID != "" {
		prev, err := cid.Parse(a.PreviousID)
		if err != nil {
			return schema.Advertisement{}, fmt.Errorf("ad previous id: %w", err)
		}
		ad.PreviousID = cidlink.Link{Cid: prev}
	}
	return ad, nil
}

// adBytes is an ad's dag-json and CID.
func adBytes(a Advertised) ([]byte, cid.Cid, error) {
	ad, err := toSchema(a)
	if err != nil {
		return nil, cid.Undef, err
	}
	if err := ad.Validate(); err != nil {
		return nil, cid.Undef, fmt.Errorf("ad: %w", err)
	}
	n, err := ad.ToNode()
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("ad: %w", err)
	}
	return encode(n)
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
