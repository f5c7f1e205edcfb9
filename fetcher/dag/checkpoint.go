package dag

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-varint"
)

// ResumableSink is a Sink that keeps what it has stored for good across
// the end of a try, or of its process, so that a later try goes on from
// there (carstore's S3 uploads are ones). It must be a HashingSink too:
// the CAR's hash up to a point is the sink's to keep, with the bytes.
//
// As it writes, the Fetcher checkpoints the CAR at the sink's durable
// points: a note of the blocks written since the last checkpoint (each
// block's CID and the offset of its section) and the walk's position after
// the last block the kept bytes hold whole. A try that fails for a reason
// another try may not meet (a source stalled, broken or gone) suspends the
// sink instead of aborting it, so that the next try, of this attempt or a
// later one, on any fetcher, goes on from the last checkpoint
// (Request.Resume) and asks its source only for the sub-DAGs the walk has
// still to visit.
type ResumableSink interface {
	HashingSink
	// Durable returns how many of the bytes written are stored for good:
	// a point a note may describe. It only grows; it is safe to call from
	// any goroutine.
	Durable() int64
	// Checkpoint keeps note as the description of the point at, a value
	// Durable returned. Calls are one at a time, concurrent with Write.
	Checkpoint(ctx context.Context, at int64, note []byte) error
	// Settle waits, for a try that has stopped writing, until what was
	// written is as durable as it will be without more writes (the parts
	// a store was sending are taken), so that a last checkpoint may
	// describe it; it takes no more writes.
	Settle(ctx context.Context) error
	// Suspend ends the sink, keeping what its last checkpoint describes.
	Suspend(ctx context.Context) error
}

// Kept is a CAR an earlier try left, as Request.Resume gives it back: a
// sink that goes on writing at byte Bytes, and the notes of every
// checkpoint, in order, the last of which describes Bytes.
type Kept struct {
	Sink  ResumableSink
	Bytes int64
	Notes [][]byte
}

// noteVersion is the first varint of every note.
const noteVersion = 1

// errBadNote: a note that does not decode, or notes that do not add up to
// the point they claim. The try starts over.
var errBadNote = errors.New("checkpoint notes do not describe the kept CAR")

// checkpoint is where a CAR's writing stood at a durable point, as the
// notes of its checkpoints together say.
type checkpoint struct {
	// bytes is the point: the CAR bytes kept. end is where the last block
	// the kept bytes hold whole ends; the next block's first bytes-end
	// bytes are kept already.
	bytes, end int64
	// blocks are the blocks written, in order, with their sections'
	// offsets.
	blocks []written
	// blockBytes is the blocks' own bytes; expected what the root
	// declared (0: nothing).
	blockBytes, expected int64
	// links is the walk's position after the last block: the links it has
	// still to visit, the next one first.
	links []cid.Cid
}

// written is a block of a checkpoint: its CID and its section's offset.
type written struct {
	c      cid.Cid
	offset int64
}

// appendNote encodes the note of a checkpoint at the point at: the blocks
// written since the previous note, the totals, and the walk's position.
func appendNote(dst []byte, at, end, blockBytes, expected int64, blocks []written, pos Position) []byte {
	for _, v := range []int64{noteVersion, at, end, blockBytes, expected, int64(len(blocks))} {
		dst = appendUvarint(dst, v)
	}
	for _, b := range blocks {
		dst = appendCID(dst, b.c)
		dst = appendUvarint(dst, b.offset)
	}
	links := pos.Links()
	dst = appendUvarint(dst, int64(len(links)))
	for _, c := range links {
		dst = appendCID(dst, c)
	}
	return dst
}

func appendUvarint(dst []byte, v int64) []byte {
	var b [varint.MaxLenUvarint63]byte
	return append(dst, b[:varint.PutUvarint(b[:], uint64(v))]...)
}

func appendCID(dst []byte, c cid.Cid) []byte {
	dst = appendUvarint(dst, int64(c.ByteLen()))
	return append(dst, c.KeyString()...)
}

// noteReader reads a note's fields in order; the first error sticks.
type noteReader struct {
	b   []byte
	err error
}

func (r *noteReader) uint() int64 {
	if r.err != nil {
		return 0
	}
	v, n, err := varint.FromUvarint(r.b)
	if err != nil || v > 1<<62 {
		r.err = errBadNote
		return 0
	}
	r.b = r.b[n:]
	return int64(v)
}

func (r *noteReader) cid() cid.Cid {
	n := r.uint()
	if r.err != nil || n > int64(len(r.b)) || n > maxCIDBytes {
		r.err = errBadNote
		return cid.Undef
	}
	c, err := cid.Cast(r.b[:n])
	if err != nil {
		r.err = errBadNote
		return cid.Undef
	}
	r.b = r.b[n:]
	return c
}

// count reads a count of things each at least min bytes long, bounded by
// what is left of the note.
func (r *noteReader) count(min int) int {
	n := r.uint()
	if r.err == nil && n > int64(len(r.b)/min) {
		r.err = errBadNote
	}
	return int(n)
}

// decodeCheckpoint adds up the notes of every checkpoint of a kept CAR
// of root, and checks them against it: the point of the last is the kept
// bytes; the blocks follow the header and each other; the root is first.
func decodeCheckpoint(root cid.Cid, kept int64, notes [][]byte) (checkpoint, error) {
	var ck checkpoint
	if len(notes) == 0 {
		return ck, fmt.Errorf("%w: no notes", errBadNote)
	}
	header, err := carHeader(root)
	if err != nil {
		return ck, err
	}
	next := int64(len(header)) // where the next block's section must start
	for i, note := range notes {
		r := &noteReader{b: note}
		if v := r.uint(); r.err == nil && v != noteVersion {
			return ck, fmt.Errorf("%w: note %d is of version %d", errBadNote, i, v)
		}
		at, end, blockBytes, expected := r.uint(), r.uint(), r.uint(), r.uint()
		n := r.count(3)
		for j := 0; j < n && r.err == nil; j++ {
			c, off := r.cid(), r.uint()
			if r.err == nil && off < next {
				r.err = fmt.Errorf("%w: note %d: block %s at %d, before %d", errBadNote, i, c, off, next)
			}
			ck.blocks = append(ck.blocks, written{c: c, offset: off})
			next = off + 1
		}
		links := make([]cid.Cid, 0, min(r.count(3), 1<<16))
		for j := cap(links); j > 0 && r.err == nil; j-- {
			links = append(links, r.cid())
		}
		if r.err == nil && len(r.b) != 0 {
			r.err = errBadNote
		}
		if r.err != nil {
			return checkpoint{}, fmt.Errorf("note %d: %w", i, r.err)
		}
		if at < end || end < ck.end || at < ck.bytes {
			return checkpoint{}, fmt.Errorf("%w: note %d goes back", errBadNote, i)
		}
		ck.bytes, ck.end, ck.blockBytes, ck.expected, ck.links = at, end, blockBytes, expected, links
	}
	switch {
	case ck.bytes != kept:
		return checkpoint{}, fmt.Errorf("%w: the notes describe %d bytes, %d are kept", errBadNote, ck.bytes, kept)
	case len(ck.blocks) == 0 || !ck.blocks[0].c.Equals(root) || ck.blocks[0].offset != int64(len(header)):
		return checkpoint{}, fmt.Errorf("%w: the root is not the first block", errBadNote)
	case ck.blocks[len(ck.blocks)-1].offset >= ck.end:
		return checkpoint{}, fmt.Errorf("%w: the last block does not end before %d", errBadNote, ck.end)
	}
	return ck, nil
}

// seen returns the CIDs of the blocks written.
func (ck checkpoint) seen() []cid.Cid {
	out := make([]cid.Cid, len(ck.blocks))
	for i, b := range ck.blocks {
		out[i] = b.c
	}
	return out
}

// mark is a block the writer has written, not yet in a saved note: where
// its section starts and ends, and the walk's position after it.
type mark struct {
	written
	end        int64
	blockBytes int64
	pos        Position
}

// checkpointer saves the notes of a CAR being written into a
// ResumableSink, one at a time, off the writer's goroutine: at every
// durable point past a block's end, the blocks written since the last
// saved note and the walk's position after the last of them. A note that
// fails to save is made again, with its blocks, at the next point.
type checkpointer struct {
	sink     ResumableSink
	expected func() int64

	mu sync.Mutex
	// marks are the blocks written since the last saved note.
	marks  []mark
	saving bool
	// saved is the point of the last saved note (0: none).
	saved int64
	wg    sync.WaitGroup
	// failed counts notes that did not save; last is the latest error.
	failed int
	last   error
}

// add records a block as written; it may start the save of a note.
func (cp *checkpointer) add(ctx context.Context, m mark) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.marks = append(cp.marks, m)
	if cp.saving {
		return
	}
	at, j, note, ok := cp.next()
	if !ok {
		return
	}
	cp.saving = true
	cp.wg.Go(func() {
		err := cp.sink.Checkpoint(context.WithoutCancel(ctx), at, note)
		cp.mu.Lock()
		defer cp.mu.Unlock()
		cp.saving = false
		cp.done(at, j, err)
	})
}

// next is the note of a checkpoint at the sink's durable point, if it is
// past the last saved one and a block ends before it: its point, the
// last of the marks it describes, and the note. cp.mu is held.
func (cp *checkpointer) next() (at int64, j int, note []byte, ok bool) {
	at = cp.sink.Durable()
	if at <= cp.saved {
		return 0, 0, nil, false
	}
	// The last block the durable bytes hold whole.
	j = -1
	for i := len(cp.marks) - 1; i >= 0; i-- {
		if cp.marks[i].end <= at {
			j = i
			break
		}
	}
	if j < 0 {
		return 0, 0, nil, false
	}
	last := cp.marks[j]
	blocks := make([]written, j+1)
	for i := range blocks {
		blocks[i] = cp.marks[i].written
	}
	return at, j, appendNote(nil, at, last.end, last.blockBytes, cp.expected(), blocks, last.pos), true
}

// done records how the save of a note at at, of the marks to j, ended.
// cp.mu is held.
func (cp *checkpointer) done(at int64, j int, err error) {
	if err != nil {
		cp.failed++
		cp.last = err
		return
	}
	cp.marks = cp.marks[j+1:]
	cp.saved = at
}

// final saves, once the writer has stopped and the sink has settled, a
// note at the sink's final durable point, if it is past the last saved
// one, and returns the point of the last saved note (0: none). A try that
// stopped on a stalled source thus keeps the parts taken while it waited.
func (cp *checkpointer) final(ctx context.Context) int64 {
	cp.wg.Wait()
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if at, j, note, ok := cp.next(); ok {
		cp.done(at, j, cp.sink.Checkpoint(ctx, at, note))
	}
	return cp.saved
}

// wait waits for a note being saved, and returns the point of the last
// saved one (0: none).
func (cp *checkpointer) wait() int64 {
	cp.wg.Wait()
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.saved
}

// point is the point of the last saved note, or 0.
func (cp *checkpointer) point() int64 {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.saved
}
