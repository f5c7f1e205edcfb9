package bitswap

import (
	"context"
	"errors"
	"fmt"
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
// range read and a check, as the block itself is. So GetSize only asks
// whether a pin holds the block (the lookup, no read), starts reading it
// in the background, and answers a nominal size; Get takes the block so
// read, waiting for it if need be, or reads it. One range read per block
// sent, the reads of a wantlist under way at once while earlier blocks are
// sent, and a peer's next wantlist read at once. A block that fails its
// check is not sent (the server answers DONT_HAVE).
//
// Reads under way and blocks read and not yet taken are bounded (maxBytes
// at the nominal size; beyond, GetSize starts no read and Get reads) and
// kept at most ttl: a block read just before its pin was removed may still
// be sent within that time (1 s), as the hold cache lets the gateway
// (serve.Config.HoldTTL).
type readAhead struct {
	blocks Blocks
	max    int
	ttl    time.Duration

	mu    sync.Mutex
	ahead map[cid.Cid]*pending
}

// pending is a block being read, or read.
type pending struct {
	done chan struct{}
	blk  blocks.Block
	err  error
	at   time.Time
}

func newReadAhead(b Blocks, maxBytes int, ttl time.Duration) *readAhead {
	return &readAhead{blocks: b, max: max(maxBytes/nominalBlockSize, 1), ttl: ttl, ahead: map[cid.Cid]*pending{}}
}

func (r *readAhead) Has(ctx context.Context, c cid.Cid) (bool, error) { return r.blocks.Has(ctx, c) }

// GetSize answers whether a pin holds the block, with a nominal size, and
// starts reading it for Get.
func (r *readAhead) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	has, err := r.blocks.Has(ctx, c)
	if err != nil {
		return -1, err
	}
	if !has {
		return -1, format.ErrNotFound{Cid: c}
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
	if p.err != nil || time.Since(p.at) >= r.ttl {
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
