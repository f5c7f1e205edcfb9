package viewtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/tenant"
)

// Step is one event of a generated history, with the stream it goes to.
type Step struct {
	Stream string
	Event  eventlog.Proposed
}

// HistoryConfig shapes a generated history.
type HistoryConfig struct {
	// Events is about how many events to generate.
	Events int
	// Tenants names the tenants; the first gets the most requests.
	Tenants []string
	// Active is how many pins are in flight at once, which sets how far
	// apart a pin's events are in the log. Default 100.
	Active int
	// Seed makes the history reproducible.
	Seed uint64
	// Junk mixes in events the views must leave out: events of pins never
	// requested, second requests, unknown types and schema versions.
	Junk bool
	// Start is the time of the first event. Default 2026-01-01.
	Start time.Time
}

// Policy returns the retry policy of generated histories: short waits, so that
// retries come due within the history.
func Policy() pin.RetryPolicy {
	return pin.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: 8 * time.Second, Jitter: 0.2}
}

type genPin struct {
	id     uuid.UUID
	stream string
	state  pin.State
}

type generator struct {
	cfg     HistoryConfig
	rnd     *rand.Rand
	now     time.Time
	out     []Step
	active  []*genPin
	done    []*genPin
	cids    []string
	created map[string]time.Time
	tokens  []uuid.UUID
	// removals are replacements' PinRemoved, appended some steps later.
	removals []removal
}

type removal struct {
	at         int
	old        *genPin
	replacedBy uuid.UUID
}

// History generates a random but valid history of pins (and tokens): pins
// requested by several tenants, claimed, progressing, uploaded, validated,
// failing, retried, dead-lettered, requeued, removed and replaced, their
// events interleaved as concurrent work interleaves them.
func History(cfg HistoryConfig) []Step {
	if cfg.Active == 0 {
		cfg.Active = 100
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if len(cfg.Tenants) == 0 {
		cfg.Tenants = []string{"alice", "bob", "carol"}
	}
	g := &generator{cfg: cfg, rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), now: cfg.Start, created: map[string]time.Time{}}
	for range max(8, cfg.Events/20) {
		g.cids = append(g.cids, g.newCID())
	}
	for len(g.out) < cfg.Events {
		g.step()
	}
	return g.out
}

func (g *generator) newCID() string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(g.rnd.UintN(256))
	}
	mh, _ := multihash.Sum(b, multihash.SHA2_256, -1)
	switch g.rnd.IntN(4) {
	case 0:
		return cid.NewCidV0(mh).String() // Qm...: canonical form is dag-pb CIDv1
	case 1:
		return cid.NewCidV1(cid.DagProtobuf, mh).String()
	default:
		return cid.NewCidV1(cid.Raw, mh).String()
	}
}

var names = []string{"", "photo.jpg", "Photo.JPG", "backup-2026", "Backup 2026", "ünïcode Ärchive", "notes", "NOTES.txt", "a%b_c", `say "cheese" OR ph* NEAR(x)`}

func (g *generator) emit(stream string, p any, meta eventlog.Metadata) eventlog.Proposed {
	var ev eventlog.Proposed
	var err error
	meta.Time = g.now
	// Ids from the generator's source, so that the history is reproducible.
	id := g.uuid()
	switch p := p.(type) {
	case pin.Payload:
		ev, err = pinlog.Propose(p, id, meta)
	case tenant.Payload:
		ev, err = tenant.Proposal(p, id, meta)
	default:
		err = fmt.Errorf("%T is no event", p)
	}
	if err != nil {
		panic(err)
	}
	g.out = append(g.out, Step{Stream: stream, Event: ev})
	return ev
}

func (g *generator) uuid() uuid.UUID {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(g.rnd.UintN(256))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// apply records a pin's event and folds it into the pin's state.
func (g *generator) apply(p *genPin, payload pin.Payload, actor string) {
	ev := g.emit(p.stream, payload, eventlog.Metadata{Actor: actor, CorrelationID: p.id})
	e := eventlog.Event{ID: ev.ID, Stream: p.stream, Revision: revisionAfter(p.state), Type: ev.Type, Version: ev.Version, Data: ev.Data, Meta: ev.Meta}
	s, err := pinlog.Apply(p.state, e)
	if err != nil {
		panic(err)
	}
	p.state = s
}

func revisionAfter(s pin.State) uint64 {
	if !s.Exists {
		return 0
	}
	return s.Revision + 1
}

func (g *generator) step() {
	g.now = g.now.Add(time.Duration(g.rnd.IntN(2000)) * time.Millisecond)
	for len(g.removals) > 0 && g.removals[0].at <= len(g.out) {
		r := g.removals[0]
		g.removals = g.removals[1:]
		if rm, err := r.old.state.Remove(r.replacedBy); err == nil {
			g.apply(r.old, rm, "gateway")
		}
	}
	switch x := g.rnd.IntN(1000); {
	case x < 10:
		g.token()
		return
	case x < 14 && g.cfg.Junk:
		g.junk()
		return
	case len(g.active) < g.cfg.Active && x < 300:
		g.request()
		return
	}
	if len(g.active) == 0 {
		g.request()
		return
	}
	i := g.rnd.IntN(len(g.active))
	p := g.active[i]
	if g.advance(p) {
		g.active[i] = g.active[len(g.active)-1]
		g.active = g.active[:len(g.active)-1]
		g.done = append(g.done, p)
	}
}

func (g *generator) tenant() string {
	// The first tenant gets about half of the requests.
	if g.rnd.IntN(2) == 0 {
		return g.cfg.Tenants[0]
	}
	return g.cfg.Tenants[g.rnd.IntN(len(g.cfg.Tenants))]
}

func (g *generator) request() {
	t := g.tenant()
	created := g.now
	switch g.rnd.IntN(10) {
	case 0:
		created = g.created[t] // the same instant as the tenant's last request
	case 1:
		created = g.now.Add(-time.Minute) // a clock behind
	case 2:
		created = g.now.Add(1500 * time.Nanosecond) // finer than the views keep
	}
	if created.IsZero() {
		created = g.now
	}
	g.created[t] = created
	r := pin.Requested{RequestID: g.uuid(), Tenant: t, CID: g.cids[g.rnd.IntN(len(g.cids))], Name: names[g.rnd.IntN(len(names))], Created: created}
	if g.rnd.IntN(3) == 0 {
		r.Origins = []string{"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWExample"}
	}
	if g.rnd.IntN(2) == 0 {
		r.Meta = map[string]string{"app": []string{"web", "cli"}[g.rnd.IntN(2)]}
		if g.rnd.IntN(2) == 0 {
			r.Meta["env"] = []string{"prod", "dev", "Prod"}[g.rnd.IntN(3)]
		}
	}
	var old *genPin
	if g.rnd.IntN(20) == 0 && len(g.done)+len(g.active) > 0 {
		// Replace an earlier pin of the same tenant, if one comes to hand.
		all := slices.Concat(g.done[max(0, len(g.done)-50):], g.active)
		if c := all[g.rnd.IntN(len(all))]; c.state.Request.Tenant == t && !c.state.Removed {
			old = c
			r.Replaces = c.id
		}
	}
	p := &genPin{id: r.RequestID, stream: pin.Stream(r.RequestID)}
	req, err := pin.Request(p.state, r)
	if err != nil {
		panic(err)
	}
	g.apply(p, req, "gateway")
	g.active = append(g.active, p)
	if old != nil {
		g.removals = append(g.removals, removal{at: len(g.out) + g.rnd.IntN(40), old: old, replacedBy: p.id})
	}
}

// advance moves a pin on by one event; it returns true when the pin has
// nothing more to do.
func (g *generator) advance(p *genPin) bool {
	s := p.state
	fetcher := []string{"fetcher/a", "fetcher/b"}[g.rnd.IntN(2)]
	x := g.rnd.IntN(100)
	if x < 2 && !s.Removed {
		rm, _ := s.Remove(uuid.Nil)
		g.apply(p, rm, "gateway")
		return true
	}
	var next pin.Payload
	var err error
	actor := fetcher
	switch {
	case s.Removed:
		return true
	case s.Phase == pin.PhaseQueued:
		if g.now.Before(s.NotBefore) {
			if x < 10 {
				next, err = s.Expire(s.NotBefore.Add(2*time.Minute), time.Minute)
				actor = "watchdog"
			} else {
				return false
			}
		} else {
			next, err = s.Claim(fetcher, g.now, lease)
		}
	case s.Phase == pin.PhaseFetching:
		switch {
		case x < 45:
			// Every other attempt's root declares a size (a dag-pb root,
			// say); the blocks' bytes are most of the CAR's.
			bytes := s.Bytes + int64(g.rnd.IntN(1<<20))
			var expected int64
			if s.Attempt%2 == 0 {
				expected = 4 << 20
			}
			next, err = s.Progress(pin.FetchProgress{Fetcher: s.Fetcher, Attempt: s.Attempt, Bytes: bytes, Blocks: s.Blocks + int64(g.rnd.IntN(10)),
				Source: "gateway", BlockBytes: bytes - bytes/64, ExpectedBytes: expected}, g.now, lease)
		case x < 75:
			next, err = s.Upload(pin.CarUploaded{Attempt: s.Attempt, Fetcher: s.Fetcher, Key: "staging/" + p.id.String(), Bytes: s.Bytes + 100, Blocks: s.Blocks + 1, CarCID: "bagbaiera" + p.id.String()[:8], Checksum: "sha256:" + p.id.String()[:8],
				ExpectedBytes: s.ExpectedBytes})
		case x < 82:
			next, err = s.Fail(s.Fetcher, s.Attempt, pin.ReasonStalled, "no bytes for 2m0s", false)
		case x < 85:
			next, err = s.Fail(s.Fetcher, s.Attempt, pin.ReasonTooBig, "bigger than the limit", true)
		case x < 88:
			next, err = s.Fail(s.Fetcher, s.Attempt, pin.ReasonHandedBack, "fetcher stopping", false)
		default:
			next, err = s.Expire(s.LeaseUntil.Add(time.Second), time.Hour)
			actor = "watchdog"
		}
	case s.Phase == pin.PhaseUploaded:
		actor = "validator"
		if x < 85 {
			next, err = s.Validate(pin.CarValidated{Attempt: s.Attempt, Key: "carpark/" + p.id.String(), Bytes: s.Staged.Bytes, CarCID: s.Staged.CarCID})
		} else {
			next, err = s.Fail("", s.Attempt, pin.ReasonValidation, "stored object differs", false)
		}
	case s.Phase == pin.PhaseFailed:
		actor = "decider"
		next, err = s.DecideRetry(Policy())
	case s.Phase == pin.PhaseDeadLettered:
		if x < 20 {
			next, err = s.Requeue(g.now)
			actor = "gateway"
		} else {
			return true
		}
	case s.Phase == pin.PhasePinned:
		return true
	}
	if err != nil {
		panic(fmt.Sprintf("generator: %s in phase %s: %v", p.id, s.Phase, err))
	}
	g.apply(p, next, actor)
	return false
}

func (g *generator) token() {
	if len(g.tokens) > 0 && g.rnd.IntN(4) == 0 {
		id := g.tokens[g.rnd.IntN(len(g.tokens))]
		g.emit(tenant.Stream(id), tenant.TokenRevoked{TokenID: id}, eventlog.Metadata{Actor: "admin"})
		return
	}
	_, issued, err := tenant.Issue(g.tenant(), "generated", g.now)
	if err != nil {
		panic(err)
	}
	issued.TokenID = g.uuid()
	issued.Hash = fmt.Sprintf("%064x", g.rnd.Uint64())
	g.tokens = append(g.tokens, issued.TokenID)
	g.emit(tenant.Stream(issued.TokenID), issued, eventlog.Metadata{Actor: "admin"})
}

// junk appends an event the views must leave out, the same way on every
// replay.
func (g *generator) junk() {
	switch g.rnd.IntN(4) {
	case 0: // a pin never requested
		g.emit(pin.Stream(g.uuid()), pin.FetchStarted{Attempt: 1, Fetcher: "ghost", LeaseUntil: g.now}, eventlog.Metadata{Actor: "ghost"})
	case 1: // a second request in a stream
		if len(g.active) > 0 {
			p := g.active[g.rnd.IntN(len(g.active))]
			r := p.state.Request
			r.Tenant = "intruder"
			g.emit(p.stream, r, eventlog.Metadata{Actor: "ghost"})
		}
	case 2: // a type the views do not know
		if len(g.active) > 0 {
			p := g.active[g.rnd.IntN(len(g.active))]
			g.emit(p.stream, pin.Removed{}, eventlog.Metadata{Actor: "ghost"})
			g.out[len(g.out)-1].Event.Type = "Mystery"
		}
	case 3: // a schema version the views cannot read
		if len(g.active) > 0 {
			p := g.active[g.rnd.IntN(len(g.active))]
			g.emit(p.stream, pin.Removed{}, eventlog.Metadata{Actor: "ghost"})
			g.out[len(g.out)-1].Event.Version = 99
		}
	}
}

// Events turns steps into events as a log would record them: positions
// from 1, revisions counted per stream.
func Events(steps []Step) []eventlog.Event {
	revs := map[string]uint64{}
	out := make([]eventlog.Event, len(steps))
	for i, s := range steps {
		e := s.Event
		out[i] = eventlog.Event{ID: e.ID, Stream: s.Stream, Revision: revs[s.Stream], Position: eventlog.Position(i + 1),
			Type: e.Type, Version: e.Version, Data: e.Data, Meta: e.Meta}
		revs[s.Stream]++
	}
	return out
}

// AppendAll appends the steps to a log, in order.
func AppendAll(ctx context.Context, log eventlog.Store, steps []Step) error {
	for _, s := range steps {
		if _, err := log.Append(ctx, s.Stream, eventlog.Any, s.Event); err != nil {
			return fmt.Errorf("append to %s: %w", s.Stream, err)
		}
	}
	return nil
}
