package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"

	"github.com/pickup-ipfs/pickup/serve/locate"
)

// maxSectionBytes bounds one block's section: the largest block the
// fetchers store (2 MiB, bitswap's limit) with its CID and length.
const maxSectionBytes = 2<<20 + 256

// ErrDamaged: a stored block does not match its CID (or its section is not
// one), and is not served. Requests that find only damaged copies fail
// with it (a 5xx).
var ErrDamaged = errors.New("stored block is damaged")

// ErrReadOnly: the carpark is written by the fetchers only.
var ErrReadOnly = errors.New("the served carpark is read-only")

// BlockstoreOptions tunes a Blockstore.
type BlockstoreOptions struct {
	// HoldTTL is how long a root's held CAR is remembered (Config.HoldTTL).
	HoldTTL time.Duration
	// Reporter is told of damaged blocks.
	Reporter Reporter
}

// Blockstore is a read-only boxo blockstore over the carpark: Get finds a
// block through the lookup, reads its section with one range read, and
// checks it against the CID asked for; only copies in CARs that a pinned,
// not removed, pin holds count. It is safe for concurrent use.
type Blockstore struct {
	locator Locator
	carpark Carpark
	pins    Pins
	opts    BlockstoreOptions

	mu    sync.Mutex
	cache map[string]hold
}

// hold is what the views said of a root, and when.
type hold struct {
	car string
	ok  bool
	at  time.Time
}

// NewBlockstore returns the blockstore over the carpark.
func NewBlockstore(l Locator, c Carpark, p Pins, opts BlockstoreOptions) *Blockstore {
	if opts.Reporter == nil {
		opts.Reporter = reporters{}
	}
	return &Blockstore{locator: l, carpark: c, pins: p, opts: opts, cache: map[string]hold{}}
}

// Get returns the block of c from a CAR a pin holds, checked against c; a
// block no such CAR has is format.ErrNotFound; one whose every held copy
// is damaged, ErrDamaged.
func (b *Blockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	locs, err := b.held(ctx, c)
	if err != nil {
		return nil, err
	}
	var damaged error
	for _, loc := range locs {
		data, err := b.read(ctx, loc, c)
		if errors.Is(err, ErrDamaged) {
			damaged = err
			b.opts.Reporter.Damaged(ctx, Damage{Location: loc, Block: c, Err: err})
			continue
		}
		if err != nil {
			return nil, err
		}
		return blocks.NewBlockWithCid(data, c)
	}
	if damaged != nil {
		return nil, damaged
	}
	return nil, format.ErrNotFound{Cid: c}
}

// Has reports whether a CAR a pin holds has the block (without reading
// it).
func (b *Blockstore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	locs, err := b.held(ctx, c)
	return len(locs) > 0, err
}

// GetSize returns the size of the block of c, read and checked as Get
// does (so a damaged block has no size either).
func (b *Blockstore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	blk, err := b.Get(ctx, c)
	if err != nil {
		return -1, err
	}
	return len(blk.RawData()), nil
}

// Put, PutMany and DeleteBlock refuse: the carpark is the fetchers'.
func (b *Blockstore) Put(context.Context, blocks.Block) error       { return ErrReadOnly }
func (b *Blockstore) PutMany(context.Context, []blocks.Block) error { return ErrReadOnly }
func (b *Blockstore) DeleteBlock(context.Context, cid.Cid) error    { return ErrReadOnly }
func (b *Blockstore) AllKeysChan(context.Context) (<-chan cid.Cid, error) {
	return nil, fmt.Errorf("list the carpark's blocks: %w", errors.ErrUnsupported)
}

// held returns the stored copies of c's block that are in CARs a pin holds.
func (b *Blockstore) held(ctx context.Context, c cid.Cid) ([]locate.Location, error) {
	locs, err := b.locator.Locate(ctx, c.Hash())
	if err != nil {
		return nil, fmt.Errorf("locate %s: %w", c, err)
	}
	out := locs[:0]
	for _, loc := range locs {
		ok, err := b.holds(ctx, loc)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, loc)
		}
	}
	return out, nil
}

// holds reports whether a pinned, not removed, pin holds the CAR of loc:
// the CAR the views name for its root.
func (b *Blockstore) holds(ctx context.Context, loc locate.Location) (bool, error) {
	root := cid.NewCidV1(loc.Root.Type(), loc.Root.Hash()).String()
	now := time.Now()
	b.mu.Lock()
	h, ok := b.cache[root]
	b.mu.Unlock()
	if !ok || now.Sub(h.at) >= b.opts.HoldTTL {
		car, held, err := b.pins.CarForRoot(ctx, root)
		if err != nil {
			return false, fmt.Errorf("which CAR holds %s: %w", root, err)
		}
		h = hold{car: car, ok: held, at: now}
		b.mu.Lock()
		if len(b.cache) > 1<<16 {
			clear(b.cache)
		}
		b.cache[root] = h
		b.mu.Unlock()
	}
	return h.ok && h.car == loc.CarCID.String(), nil
}

// read reads the section of loc and returns its block's data, once the
// section is found to hold c's multihash and the data to hash to it.
func (b *Blockstore) read(ctx context.Context, loc locate.Location, c cid.Cid) ([]byte, error) {
	if loc.Length <= 0 || loc.Length > maxSectionBytes || loc.Offset < 0 {
		return nil, fmt.Errorf("%w: %s at %d in %s: a section of %d bytes", ErrDamaged, c, loc.Offset, loc.Key, loc.Length)
	}
	rc, err := b.carpark.ReadRange(ctx, loc.Key, loc.Offset, loc.Length)
	if err != nil {
		return nil, fmt.Errorf("read %s at %d in %s: %w", c, loc.Offset, loc.Key, err)
	}
	defer rc.Close()
	section := make([]byte, loc.Length)
	if _, err := io.ReadFull(rc, section); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s at %d in %s: the object ends inside the section", ErrDamaged, c, loc.Offset, loc.Key)
		}
		return nil, fmt.Errorf("read %s at %d in %s: %w", c, loc.Offset, loc.Key, err)
	}
	_, data, err := locate.Block(section, c.Hash())
	if err != nil {
		return nil, fmt.Errorf("%w: %s at %d in %s: %v", ErrDamaged, c, loc.Offset, loc.Key, err)
	}
	return data, nil
}
