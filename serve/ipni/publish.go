package ipni

// Publishing: what the log asks of the chain, decided on the chain as
// folded and appended at its revision.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipni/go-libipni/ingest/schema"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/serve/locate"
)

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
