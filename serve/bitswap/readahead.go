package bitswap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"
)

// errReadOnly: the bitswap server never writes.
var errReadOnly = errors.New("the served carpark is read-only")

// nominalBlockSize is the size a want-block is scheduled by before its
// block is read: UnixFS's chunk, the commonest block of a pinned DAG.
const nominalBlockSize = 256 << 10

// readAhead is the read-only blockstore boxo's server reads. The server
// sizes every want-block as its wantlist arrives (GetSize, on the peer's
// stream, before it reads the peer's next message), and reads the block
// when its turn to be sent comes (Get). A size from the carpark would be a
// range read and a check, as the block itself is. So GetSize starts
// reading the block in the background and answers a nominal size; Get takes the block so
// read, waiting for it if need be, or reads it. One range read per block
// sent, the reads of a wantlist under way at once while earlier blocks are
// sent, and a peer's next wantlist read at once. What a blockstore that
// reads many blocks at once (serve.Blockstore.GetMany) is given is read in
// batches, so that blocks close together in a CAR come with one range
// read: a range read costs about a millisecond of the machine whatever its
// length. A block that fails its
// check is not sent (the server answers DONT_HAVE).
//
// Reads under way and blocks read and not yet taken are bounded (maxBytes
// at the nominal size; beyond, GetSize starts no read and Get reads) and
// kept at most ttl: a block read just before its pin was removed may still
// be sent within that time (1 s), as the hold cache lets the gateway
// (serve.Config.HoldTTL).
type readAhead struct {
	blocks Blocks
	many   manyGetter // blocks, when it reads many at once
	max    int
	ttl    time.Duration

	mu    sync.Mutex
	ahead map[cid.Cid]*pending
	// queue is what many is to read next; kick wakes the batcher, which
	// runs until stop.
	queue []queued
	kick  chan struct{}
	stop  chan struct{}
	done  sync.WaitGroup
}

// manyGetter reads many blocks at once, joining the reads of blocks that
// lie close together (serve.Blockstore.GetMany): a CID left out of the
// answer is not found.
type manyGetter interface {
	GetMany(ctx context.Context, cids []cid.Cid) (map[cid.Cid]blocks.Block, error)
}

type queued struct {
	c cid.Cid
	p *pending
}

// Batches of reads: at most batchSize blocks a GetMany, batchesAtOnce of
// them under way (while they run, the next batch fills).
const (
	batchSize     = 64
	batchesAtOnce = 2
)

// pending is a block being read, or read.
type pending struct {
	done chan struct{}
	blk  blocks.Block
	err  error
	at   time.Time
}

func newReadAhead(b Blocks, maxBytes int, ttl time.Duration) *readAhead {
	r := &readAhead{blocks: b, max: max(maxBytes/nominalBlockSize, 1), ttl: ttl, ahead: map[cid.Cid]*pending{},
		kick: make(chan struct{}, 1), stop: make(chan struct{})}
	if many, ok := b.(manyGetter); ok {
		r.many = many
		r.done.Go(r.batch)
	}
	return r
}

// close stops the batcher and waits for its reads.
func (r *readAhead) close() {
	close(r.stop)
	r.done.Wait()
}

// batch reads what is queued, batchSize blocks at a time, until stop.
func (r *readAhead) batch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-r.stop; cancel() }()
	sem := make(chan struct{}, batchesAtOnce)
	var reads sync.WaitGroup
	defer reads.Wait()
	for {
		select {
		case <-r.stop:
			return
		case <-r.kick:
		}
		for {
			select {
			case sem <- struct{}{}:
			case <-r.stop:
				return
			}
			r.mu.Lock()
			n := min(len(r.queue), batchSize)
			batch := slices.Clone(r.queue[:n])
			r.queue = r.queue[n:]
			r.mu.Unlock()
			if n == 0 {
				<-sem
				break
			}
			reads.Go(func() {
				defer func() { <-sem }()
				r.readBatch(ctx, batch)
			})
		}
	}
}

// readBatch reads a batch with one GetMany and hands each its block.
func (r *readAhead) readBatch(ctx context.Context, batch []queued) {
	ctx, cancel := context.WithTimeout(ctx, r.ttl+30*time.Second)
	defer cancel()
	cids := make([]cid.Cid, len(batch))
	for i, q := range batch {
		cids[i] = q.c
	}
	got, err := r.many.GetMany(ctx, cids)
	for _, q := range batch {
		switch blk, ok := got[q.c]; {
		case err != nil:
			q.p.err = err
		case ok:
			q.p.blk = blk
		default:
			q.p.err = format.ErrNotFound{Cid: q.c}
		}
		close(q.p.done)
	}
}

func (r *readAhead) Has(ctx context.Context, c cid.Cid) (bool, error) { return r.blocks.Has(ctx, c) }

// GetSize starts reading the block for Get and answers a nominal size.
// When GetMany reads (in batches), whether a pin holds the block is left
// to the read: one lookup a block, not two, and a block no pin holds is
// answered DONT_HAVE when its turn comes (Get finds nothing), as it would
// have been at once. Otherwise it is asked first.
func (r *readAhead) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if r.many == nil {
		has, err := r.blocks.Has(ctx, c)
		if err != nil {
			return -1, err
		}
		if !has {
			return -1, format.ErrNotFound{Cid: c}
		}
	}
	r.start(c)
	return nominalBlockSize, nil
}

// Get takes the block read ahead, or reads it.
func (r *readAhead) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	r.mu.Lock()
	p, ok := r.ahead[c]
	if ok {
		delete(r.ahead, c)
	}
	r.mu.Unlock()
	if !ok {
		return r.blocks.Get(ctx, c)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	switch {
	case format.IsNotFound(p.err):
		return nil, p.err
	case p.err != nil || time.Since(p.at) >= r.ttl:
		return r.blocks.Get(ctx, c)
	}
	return p.blk, nil
}

// start reads c in the background, unless it is being read, or too many
// are.
func (r *readAhead) start(c cid.Cid) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ahead[c]; ok {
		return
	}
	if len(r.ahead) >= r.max {
		for k, p := range r.ahead {
			select {
			case <-p.done:
				if now.Sub(p.at) >= r.ttl {
					delete(r.ahead, k)
				}
			default:
			}
		}
		if len(r.ahead) >= r.max {
			return
		}
	}
	p := &pending{done: make(chan struct{}), at: now}
	r.ahead[c] = p
	if r.many != nil {
		r.queue = append(r.queue, queued{c, p})
		select {
		case r.kick <- struct{}{}:
		default:
		}
		return
	}
	go func() {
		// The read outlives the message that asked for it; it is bounded
		// by the store's own timeouts and the ttl.
		ctx, cancel := context.WithTimeout(context.Background(), r.ttl+30*time.Second)
		defer cancel()
		p.blk, p.err = r.blocks.Get(ctx, c)
		close(p.done)
	}()
}

func (r *readAhead) Put(context.Context, blocks.Block) error       { return errReadOnly }
func (r *readAhead) PutMany(context.Context, []blocks.Block) error { return errReadOnly }
func (r *readAhead) DeleteBlock(context.Context, cid.Cid) error    { return errReadOnly }
func (r *readAhead) AllKeysChan(context.Context) (<-chan cid.Cid, error) {
	return nil, fmt.Errorf("list the carpark's blocks: %w", errors.ErrUnsupported)
}
