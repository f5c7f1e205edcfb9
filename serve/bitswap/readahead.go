package bitswap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// errReadOnly: the bitswap server never writes.
var errReadOnly = errors.New("the served carpark is read-only")

// readAhead is the read-only blockstore boxo's server reads. The server
// sizes every want-block when it arrives (GetSize, in parallel, with
// BlockstoreWorkers) and reads it again when its turn to be sent comes
// (Get). A size from the carpark is a range read and a check, as the
// block itself is: so GetSize reads and checks the block, and keeps it
// for the Get that follows, which takes it. One range read per block
// sent, and the reads of a wantlist happen at once rather than one send
// after another. Kept blocks are bounded in bytes and age; a block that
// aged out or was pushed out is read again. So a block sized just before
// its pin was removed may still be sent within ReadAheadTTL (1 s), as the
// hold cache lets the gateway (serve.Config.HoldTTL).
type readAhead struct {
	blocks Blocks
	max    int
	ttl    time.Duration

	mu    sync.Mutex
	kept  map[cid.Cid]kept
	order []keptAt
	seq   uint64
	bytes int
}

type kept struct {
	blk blocks.Block
	at  time.Time
	seq uint64
}

// keptAt is an entry of order: a block kept, once (seq tells a block kept
// again after it was taken from its first keeping).
type keptAt struct {
	c   cid.Cid
	seq uint64
}

func newReadAhead(b Blocks, maxBytes int, ttl time.Duration) *readAhead {
	return &readAhead{blocks: b, max: maxBytes, ttl: ttl, kept: map[cid.Cid]kept{}}
}

func (r *readAhead) Has(ctx context.Context, c cid.Cid) (bool, error) { return r.blocks.Has(ctx, c) }

// GetSize reads and checks the block, and keeps it for Get: a block that
// fails its check has no size (the server answers DONT_HAVE).
func (r *readAhead) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	blk, err := r.blocks.Get(ctx, c)
	if err != nil {
		return -1, err
	}
	r.keep(blk)
	return len(blk.RawData()), nil
}

// Get takes the block GetSize kept, or reads it.
func (r *readAhead) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if blk, ok := r.take(c); ok {
		return blk, nil
	}
	return r.blocks.Get(ctx, c)
}

func (r *readAhead) keep(blk blocks.Block) {
	n := len(blk.RawData())
	if n > r.max {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.kept[blk.Cid()]; ok {
		return
	}
	now := time.Now()
	for len(r.order) > 0 && (r.bytes+n > r.max || now.Sub(r.oldest()) >= r.ttl) {
		r.dropOldest()
	}
	r.seq++
	r.kept[blk.Cid()] = kept{blk: blk, at: now, seq: r.seq}
	r.order = append(r.order, keptAt{blk.Cid(), r.seq})
	r.bytes += n
}

// oldest is when the oldest entry of order was kept (taken ones count as
// new, so they are dropped from order without waiting).
func (r *readAhead) oldest() time.Time {
	if k, ok := r.kept[r.order[0].c]; ok && k.seq == r.order[0].seq {
		return k.at
	}
	return time.Time{}
}

func (r *readAhead) dropOldest() {
	e := r.order[0]
	r.order = r.order[1:]
	if k, ok := r.kept[e.c]; ok && k.seq == e.seq {
		r.bytes -= len(k.blk.RawData())
		delete(r.kept, e.c)
	}
}

func (r *readAhead) take(c cid.Cid) (blocks.Block, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.kept[c]
	if !ok {
		return nil, false
	}
	delete(r.kept, c)
	r.bytes -= len(k.blk.RawData())
	if time.Since(k.at) >= r.ttl {
		return nil, false
	}
	return k.blk, true
}

func (r *readAhead) Put(context.Context, blocks.Block) error       { return errReadOnly }
func (r *readAhead) PutMany(context.Context, []blocks.Block) error { return errReadOnly }
func (r *readAhead) DeleteBlock(context.Context, cid.Cid) error    { return errReadOnly }
func (r *readAhead) AllKeysChan(context.Context) (<-chan cid.Cid, error) {
	return nil, fmt.Errorf("list the carpark's blocks: %w", errors.ErrUnsupported)
}
