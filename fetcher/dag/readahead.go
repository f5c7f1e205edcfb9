package dag

import "context"

// readAheadBlocks is how many blocks are read from the source ahead of
// verification, so that waiting on the network (and copying out of the
// socket) overlaps hashing what has arrived.
const readAheadBlocks = 8

type readItem struct {
	blk Block
	err error
}

// readAhead reads a source's stream in its own goroutine. Its done
// channel closes when the goroutine has stopped touching the stream, after
// which the stream may be closed.
type readAhead struct {
	ctx  context.Context
	ch   chan readItem
	done chan struct{}
	// last is the error that ended the stream, returned again by every
	// later Next (the verifier asks past the end to see that it is one).
	last error
}

func startReadAhead(ctx context.Context, src Blocks) *readAhead {
	ra := &readAhead{ctx: ctx, ch: make(chan readItem, readAheadBlocks), done: make(chan struct{})}
	go func() {
		defer close(ra.done)
		for {
			blk, err := src.Next()
			select {
			case ra.ch <- readItem{blk: blk, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ra
}

// Next implements Blocks.
func (ra *readAhead) Next() (Block, error) {
	if ra.last != nil {
		return Block{}, ra.last
	}
	var it readItem
	select {
	case it = <-ra.ch:
	case <-ra.done:
		// Stopped: anything it had sent comes first.
		select {
		case it = <-ra.ch:
		default:
			it.err = context.Cause(ra.ctx)
		}
	}
	if it.err != nil {
		ra.last = it.err
	}
	return it.blk, it.err
}

// Close implements Blocks; the try closes the source itself.
func (ra *readAhead) Close() error { return nil }
