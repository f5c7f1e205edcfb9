package ipni

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Stream is the one stream of the advertisement chain: every event is an
// Advertised, its revision the ad's place in the chain (0 the first ad).
const Stream = "ipni-ads"

// TypeAdvertised is the type of the chain's events.
const TypeAdvertised = "Advertised"

// SchemaVersion is the version the chain's events are written with.
const SchemaVersion = 1

// Advertised is one advertisement of the chain, as its event records it:
// the signed fields of go-libipni's schema.Advertisement (from which the
// ad's bytes, and so its CID, are rebuilt exactly), and what pickup needs
// to serve its entries and to decide on later events.
type Advertised struct {
	// CID is the advertisement's CID (dag-json, sha2-256).
	CID string `json:"cid"`
	// PreviousID is the CID of the ad before it; empty for the first.
	PreviousID string   `json:"previous_id,omitempty"`
	Provider   string   `json:"provider"`
	Addresses  []string `json:"addresses"`
	Signature  []byte   `json:"signature"`
	// Entries is the CID of the first entry chunk, or schema.NoEntries's
	// for a removal.
	Entries   string `json:"entries"`
	ContextID []byte `json:"context_id"`
	Metadata  []byte `json:"metadata,omitempty"`
	IsRm      bool   `json:"is_rm,omitempty"`

	// CarCID is the CAR the ad names (its context ID's CID); Root the
	// root of its DAG, canonical (pinlog.CanonicalRoot), which a
	// removal is decided on.
	CarCID string `json:"car_cid"`
	Root   string `json:"root"`
	// Index is the CAR's index object, its size and SHA-256 as
	// validated, and CarBytes the CAR's size: the entry chunks are
	// recomputed from them. Empty for a removal.
	Index       string `json:"index,omitempty"`
	IndexBytes  int64  `json:"index_bytes,omitempty"`
	IndexSHA256 string `json:"index_sha256,omitempty"`
	CarBytes    int64  `json:"car_bytes,omitempty"`
	// Chunks are the entry chunks' CIDs in chain order (Chunks[0] is
	// Entries), each of ChunkSize multihashes of the index in the CAR's
	// order, the last the rest; Multihashes counts them all.
	Chunks      []string `json:"chunks,omitempty"`
	ChunkSize   int      `json:"chunk_size,omitempty"`
	Multihashes int      `json:"multihashes,omitempty"`
	// Through is the log position of the last source event (CarValidated
	// or RootDeleted) decided by the time this ad was appended: a
	// publisher goes on after it.
	Through eventlog.Position `json:"through"`
}

// EventType implements eventlog.Payload.
func (Advertised) EventType() string { return TypeAdvertised }

// codec maps the chain's events to the envelope and back; immutable.
var codec = eventlog.NewCodec(SchemaVersion, Advertised{})

// eventID is the id of the event of ad adCID appended by the publisher
// instance: the same on a retry of the append after a lost answer (the
// log keeps it once), another for another publisher, so that of two
// publishers appending the same ad on the same head one loses the race
// (a wrong revision) rather than taking the other's append for its own.
func eventID(instance uuid.UUID, adCID string) uuid.UUID {
	return uuid.NewSHA1(instance, []byte(adCID))
}

// Decode returns the ad an event of the chain records.
func Decode(e eventlog.Event) (Advertised, error) { return codec.Decode(e) }

// chunkRef names entry chunk index of the ad at revision rev.
type chunkRef struct {
	rev   uint64
	index int
}

// chain is the fold of the chain's stream, shared by the follower, the
// publisher and the handler; safe for concurrent use. It keeps what the
// decisions and the handler look up (an ad's or a chunk's revision, the
// CARs advertised), not the ads: the handler reads an ad's event again
// by its revision, so the heap holds about 440 bytes an ad
// (BenchmarkChainMemory; 690 with a map per root, and the ads themselves
// over a kilobyte each): 220 MB for the 500,000 CARs of 5 billion blocks
// at 10,000 a CAR.
type chain struct {
	mu sync.Mutex
	// next is the revision of the next event to fold (the count folded);
	// head is the last ad's CID and headPos its log position.
	next    uint64
	head    cid.Cid
	headPos eventlog.Position
	through eventlog.Position
	ads     map[string]uint64   // ad CID (binary) → its revision
	chunks  map[string]chunkRef // chunk CID (binary) → its ad and place
	// live are the CARs advertised and not removed since, by CAR CID, to
	// their root; byRoot the same, by root (a root has one CAR but for
	// CARs of other writers).
	live   map[string]string
	byRoot map[string][]string
}

func newChain() *chain {
	return &chain{ads: map[string]uint64{}, chunks: map[string]chunkRef{}, live: map[string]string{}, byRoot: map[string][]string{}}
}

// errGap: an event of the chain's stream came after a revision not folded
// yet; the caller reads the stream from next.
var errGap = errors.New("a gap in the chain's stream")

// apply folds one event of the stream. An event folded already is
// ignored; one after a gap is errGap.
func (c *chain) apply(e eventlog.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case e.Revision < c.next:
		return nil
	case e.Revision > c.next:
		return fmt.Errorf("%w: revision %d, %d expected", errGap, e.Revision, c.next)
	}
	ad, err := Decode(e)
	if err != nil {
		return fmt.Errorf("fold %s: %w", Stream, err)
	}
	want := ""
	if c.head.Defined() {
		want = c.head.String()
	}
	if ad.PreviousID != want {
		// Appends at the expected revision make this impossible; refuse
		// to serve a chain that is not one.
		return fmt.Errorf("fold %s/%d: ad %s follows %q, the head is %q", Stream, e.Revision, ad.CID, ad.PreviousID, want)
	}
	adCID, err := cid.Parse(ad.CID)
	if err != nil {
		return fmt.Errorf("fold %s/%d: ad CID: %w", Stream, e.Revision, err)
	}
	c.ads[adCID.KeyString()] = e.Revision
	for i, ch := range ad.Chunks {
		chunk, err := cid.Parse(ch)
		if err != nil {
			return fmt.Errorf("fold %s/%d: chunk CID: %w", Stream, e.Revision, err)
		}
		c.chunks[chunk.KeyString()] = chunkRef{rev: e.Revision, index: i}
	}
	cars := slices.DeleteFunc(c.byRoot[ad.Root], func(car string) bool { return car == ad.CarCID })
	if ad.IsRm {
		delete(c.live, ad.CarCID)
	} else {
		c.live[ad.CarCID] = ad.Root
		cars = append(cars, ad.CarCID)
	}
	if len(cars) == 0 {
		delete(c.byRoot, ad.Root)
	} else {
		c.byRoot[ad.Root] = cars
	}
	c.next, c.head, c.headPos = e.Revision+1, adCID, e.Position
	c.through = max(c.through, ad.Through)
	return nil
}

// readPage is how many of the chain's events one read asks for.
const readPage = 1000

// sync reads the stream from the next revision to its end and folds it.
func (c *chain) sync(ctx context.Context, log Reader) error {
	for {
		c.mu.Lock()
		from := c.next
		c.mu.Unlock()
		evs, err := log.ReadStream(ctx, Stream, from, eventlog.Forwards, readPage)
		if err != nil {
			return fmt.Errorf("read %s: %w", Stream, err)
		}
		for _, e := range evs {
			if err := c.apply(e); err != nil {
				return err
			}
		}
		if len(evs) < readPage {
			return nil
		}
	}
}

// tip is what a decision is taken on: the head and where it stands.
type tip struct {
	next    uint64
	head    cid.Cid
	headPos eventlog.Position
	through eventlog.Position
}

func (c *chain) tip() tip {
	c.mu.Lock()
	defer c.mu.Unlock()
	return tip{next: c.next, head: c.head, headPos: c.headPos, through: c.through}
}

// isLive reports whether the CAR is advertised and not removed.
func (c *chain) isLive(carCID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.live[carCID]
	return ok
}

// liveOf returns the CIDs of the live CARs of a root, sorted.
func (c *chain) liveOf(root string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.byRoot[root])
	slices.Sort(out)
	return out
}

// ad returns the revision of an ad's event.
func (c *chain) ad(adCID cid.Cid) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rev, ok := c.ads[adCID.KeyString()]
	return rev, ok
}

// chunk returns which ad's chunk a CID is.
func (c *chain) chunk(chunkCID cid.Cid) (chunkRef, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.chunks[chunkCID.KeyString()]
	return r, ok
}

// read returns the ad at revision rev of the stream.
func read(ctx context.Context, log Reader, rev uint64) (Advertised, error) {
	evs, err := log.ReadStream(ctx, Stream, rev, eventlog.Forwards, 1)
	if err != nil {
		return Advertised{}, fmt.Errorf("read %s/%d: %w", Stream, rev, err)
	}
	if len(evs) != 1 || evs[0].Revision != rev {
		return Advertised{}, fmt.Errorf("read %s/%d: not in the log", Stream, rev)
	}
	return Decode(evs[0])
}
