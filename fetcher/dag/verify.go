package dag

import (
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/pin"
)

// Walk is the depth-first walk of a DAG that `ipfs dag export` makes: from
// the root, each block's links in the order Links returns them, every CID
// once (the first time the walk reaches it). It learns the DAG as it goes:
// after Next returns a CID, Visit must be given that block's links.
//
// Its memory is the links still to visit (bounded by the DAG's depth times
// its widest node) and the set of CIDs already visited, which "each block
// once" needs and which `ipfs dag export` keeps too: about 100 bytes a
// distinct block, some 12 MiB for a 31 GiB DAG of 256 KiB blocks. That set
// is the one part of a fetch's memory that grows with the DAG.
//
// The links still to visit are a stack of shared, never changed cells, so
// that the walk's position after any block is one pointer (Position): the
// writer of a CAR checkpoints it long after the walk has gone on.
type Walk struct {
	// top is the next link to visit; each cell points at the one after it.
	top  *pending
	seen map[cid.Cid]struct{}
}

// pending is a cell of a Walk's stack of links still to visit.
type pending struct {
	c    cid.Cid
	next *pending
}

// Position is where a walk is: the links it has still to visit, the next
// one first. It stays what it was when taken, whatever the walk does after.
type Position struct{ top *pending }

// Links returns the links still to visit, the next one first.
func (p Position) Links() []cid.Cid {
	var out []cid.Cid
	for c := p.top; c != nil; c = c.next {
		out = append(out, c.c)
	}
	return out
}

// NewWalk starts a walk at root.
func NewWalk(root cid.Cid) *Walk {
	return &Walk{top: &pending{c: root}, seen: make(map[cid.Cid]struct{})}
}

// ResumeWalk goes on with a walk that had visited the CIDs seen and had
// still to visit links (the next one first), as Position.Links gave them.
func ResumeWalk(links []cid.Cid, seen []cid.Cid) *Walk {
	w := &Walk{seen: make(map[cid.Cid]struct{}, len(seen))}
	for _, c := range seen {
		w.seen[c] = struct{}{}
	}
	for i := len(links) - 1; i >= 0; i-- {
		w.top = &pending{c: links[i], next: w.top}
	}
	return w
}

// Position is where the walk is now.
func (w *Walk) Position() Position { return Position{top: w.top} }

// Next returns the next CID of the walk, or false when the walk is over.
func (w *Walk) Next() (cid.Cid, bool) {
	for w.top != nil {
		c := w.top.c
		w.top = w.top.next
		if _, ok := w.seen[c]; ok {
			continue
		}
		w.seen[c] = struct{}{}
		return c, true
	}
	return cid.Undef, false
}

// NextToFetch is Next for a source that walks the DAG itself: it returns
// the next CID whose block must be fetched, or io.EOF when the walk is
// over. Identity CIDs need no fetching (their data is their digest): their
// links, which are the DAG's too, are visited on the way. A CID pickup
// cannot walk, or an identity block its codec cannot decode, is an
// unsupported_codec *Failure.
func (w *Walk) NextToFetch() (cid.Cid, error) {
	for {
		c, ok := w.Next()
		if !ok {
			return cid.Undef, io.EOF
		}
		if err := CheckCID(c); err != nil {
			return cid.Undef, err
		}
		data, ok := IdentityData(c)
		if !ok {
			return c, nil
		}
		links, err := Links(c, data)
		if err != nil {
			return cid.Undef, err
		}
		w.Visit(links)
	}
}

// Visit adds the links of the block Next last returned.
func (w *Walk) Visit(links []cid.Cid) {
	for i := len(links) - 1; i >= 0; i-- {
		w.top = &pending{c: links[i], next: w.top}
	}
}

// Pending reports whether c is among the links the walk has still to
// visit: a block the walk will reach later.
func (w *Walk) Pending(c cid.Cid) bool {
	for p := w.top; p != nil; p = p.next {
		if p.c == c && !w.Seen(c) {
			return true
		}
	}
	return false
}

// Seen reports whether the walk has already returned c.
func (w *Walk) Seen(c cid.Cid) bool {
	_, ok := w.seen[c]
	return ok
}

// Upcoming appends to dst up to n CIDs the walk will return soonest, as
// far as it knows the DAG yet, skipping identity CIDs, which need no
// fetching. It looks at no more than 4n pending links, so that a bitswap
// walker can call it for every block.
func (w *Walk) Upcoming(dst []cid.Cid, n int) []cid.Cid {
	start := len(dst)
	for p, looked := w.top, 0; p != nil && len(dst)-start < n && looked < 4*n; p, looked = p.next, looked+1 {
		c := p.c
		if w.Seen(c) {
			continue
		}
		if _, ok := IdentityData(c); ok {
			continue
		}
		dup := false
		for _, d := range dst[start:] {
			if d == c {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, c)
		}
	}
	return dst
}

// verifier holds a source's stream to the walk: every block must be the
// one the walk expects next, be within the size limits, and hash to its
// CID; the stream must not end before the walk does, nor go on after it.
// Identity blocks are made from their CIDs, whether or not the source
// sends them (the trustless gateway spec forbids sending them; kubo's dag
// export sends them).
type verifier struct {
	root     cid.Cid
	walk     *Walk
	src      Blocks
	maxBlock int
	// peeked is a block read ahead, to see whether a source sent an
	// identity block the walk made itself; peekErr is what reading ahead
	// met instead, held until a block is really needed.
	peeked  *Block
	peekErr error
	// received counts the blocks the source sent.
	received int64
	// resumed: the walk goes on from a checkpoint, its source serves
	// sub-DAGs one after the other (subDAGs), and blocks the walk has
	// visited already are dropped, not refused; dropped counts their
	// bytes.
	resumed bool
	dropped int64
}

func newVerifier(root cid.Cid, walk *Walk, src Blocks, maxBlockBytes int) *verifier {
	return &verifier{root: root, walk: walk, src: src, maxBlock: maxBlockBytes}
}

// next returns the next block of the DAG, verified, or io.EOF when the DAG
// is complete and the source has ended too.
func (v *verifier) next() (Block, error) {
	want, ok := v.walk.Next()
	if !ok {
		return Block{}, v.end()
	}
	if err := CheckCID(want); err != nil {
		return Block{}, err
	}
	var blk Block
	if data, ok := IdentityData(want); ok {
		blk = Block{CID: want, Data: data}
		if err := v.skipSent(want); err != nil {
			return Block{}, err
		}
	} else {
		got, err := v.read()
		for err == nil && got.CID != want {
			var drop bool
			if drop, err = v.dropVisited(got); err != nil || !drop {
				break
			}
			got, err = v.read()
		}
		if err == io.EOF {
			if v.received == 0 {
				return Block{}, Fail(pin.ReasonRootNotFound, "the CAR has no blocks")
			}
			return Block{}, Fail(pin.ReasonMissingBlock, "stream ended before block %s (after %d blocks)", want, v.received)
		}
		if err != nil {
			if v.received == 0 && ReasonOf(err) == pin.ReasonMissingBlock {
				// A stream cut short before its first block never had
				// the root (boxo's gateway answers so when it lacks it).
				return Block{}, Fail(pin.ReasonRootNotFound, "no root block: %w", err)
			}
			return Block{}, err
		}
		if err := v.check(want, got); err != nil {
			return Block{}, err
		}
		blk = got
	}
	links, err := Links(blk.CID, blk.Data)
	if err != nil {
		return Block{}, err
	}
	v.walk.Visit(links)
	blk.after = v.walk.Position()
	return blk, nil
}

// maxDroppedBytes bounds what a resumed try's source may send again of
// what the walk has visited: sub-DAGs sharing blocks send them once each,
// a source repeating them forever is refused.
const maxDroppedBytes = 4 << 30

// dropVisited is, for a resumed walk, whether got is a block the walk has
// visited already, sent again by a sub-DAG that shares it: dropped.
func (v *verifier) dropVisited(got Block) (bool, error) {
	if !v.resumed || !v.walk.Seen(got.CID) {
		return false, nil
	}
	v.dropped += int64(len(got.Data))
	if v.dropped > maxDroppedBytes {
		return false, Fail(pin.ReasonUnrequestedBlock, "the source sent %d bytes of blocks the DAG had already given", v.dropped)
	}
	return true, nil
}

func (v *verifier) check(want cid.Cid, got Block) error {
	switch {
	case got.CID != want && want == v.root:
		return Fail(pin.ReasonWrongRoot, "first block is %s, not the requested root", got.CID)
	case got.CID != want && v.walk.Seen(got.CID):
		return Fail(pin.ReasonUnrequestedBlock, "block %s again (duplicate), where %s comes next", got.CID, want)
	case got.CID != want && v.walk.Pending(got.CID):
		// A block the walk reaches later came first: the source skipped
		// the one due now.
		return Fail(pin.ReasonMissingBlock, "block %s is missing: %s, which comes after it, arrived in its place", want, got.CID)
	case got.CID != want:
		return Fail(pin.ReasonUnrequestedBlock, "block %s where %s comes next", got.CID, want)
	case len(got.Data) > v.maxBlock:
		return Fail(pin.ReasonBlockTooBig, "block %s is %d bytes, over the %d byte limit", want, len(got.Data), v.maxBlock)
	}
	sum, err := want.Prefix().Sum(got.Data)
	if err != nil {
		return Fail(pin.ReasonUnsupportedCodec, "hash block %s: %v", want, err)
	}
	if !sum.Equals(want) {
		return Fail(pin.ReasonBlockMismatch, "block %s: bytes hash to %s", want, sum)
	}
	return nil
}

// skipSent consumes the identity block c if the source sent it next.
func (v *verifier) skipSent(c cid.Cid) error {
	if v.peeked == nil && v.peekErr == nil {
		blk, err := v.src.Next()
		if err != nil {
			v.peekErr = err
			return nil
		}
		v.received++
		v.peeked = &blk
	}
	if v.peeked == nil {
		return nil
	}
	if v.peeked.CID != c {
		return nil
	}
	sent := *v.peeked
	v.peeked = nil
	return v.check(c, sent)
}

func (v *verifier) read() (Block, error) {
	if v.peekErr != nil {
		return Block{}, v.peekErr
	}
	if v.peeked != nil {
		blk := *v.peeked
		v.peeked = nil
		return blk, nil
	}
	blk, err := v.src.Next()
	if err != nil {
		return Block{}, err
	}
	v.received++
	return blk, nil
}

// end checks that the source has nothing after the DAG.
func (v *verifier) end() error {
	blk, err := v.read()
	for err == nil {
		drop, derr := v.dropVisited(blk)
		if derr != nil {
			return derr
		}
		if !drop {
			break
		}
		blk, err = v.read()
	}
	switch {
	case errors.Is(err, io.EOF):
		return io.EOF
	case err != nil && v.received == 0:
		// A DAG all inline needed nothing from the source: whatever
		// became of it (a 404, say) does not matter.
		return io.EOF
	case err != nil:
		if _, ok := errors.AsType[*Failure](err); ok {
			return Fail(pin.ReasonUnrequestedBlock, "bad data after the DAG ended: %w", err)
		}
		return fmt.Errorf("after the last block: %w", err)
	case v.walk.Seen(blk.CID):
		return Fail(pin.ReasonUnrequestedBlock, "block %s again (duplicate) after the DAG ended", blk.CID)
	default:
		return Fail(pin.ReasonUnrequestedBlock, "block %s after the DAG ended", blk.CID)
	}
}
