package dag

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/pin"
)

// subDAGs is the stream of a resumed try: the sub-DAGs of the links the
// walk had still to visit at the checkpoint, asked of the source one
// after the other, each as a DAG of its own (a trustless gateway's CAR of
// that root, bitswap's walk from it, kubo's dag export of it), in the
// walk's order. Whatever DAG sources serve, only the blocks the walk
// reaches next are written: a block a sub-DAG shares with what was kept,
// or with an earlier sub-DAG, arrives again and the verifier drops it.
type subDAGs struct {
	ctx    context.Context
	src    Source
	req    Request
	limits Limits
	// roots are the sub-DAGs still to ask for, the next one first;
	// skip says which the checkpoint holds already.
	roots []cid.Cid
	skip  func(cid.Cid) bool

	cur Blocks
	// done is the progress of the streams closed; cur's is added to it.
	done    atomic.Int64
	curProg atomic.Pointer[Progressor]
}

func newSubDAGs(ctx context.Context, src Source, req Request, limits Limits, roots []cid.Cid, skip func(cid.Cid) bool) *subDAGs {
	req.Resume = nil
	return &subDAGs{ctx: ctx, src: src, req: req, limits: limits, roots: roots, skip: skip}
}

// Next implements Blocks.
func (s *subDAGs) Next() (Block, error) {
	for {
		if s.cur == nil {
			if err := s.open(); err != nil {
				return Block{}, err
			}
			if s.cur == nil {
				return Block{}, io.EOF
			}
		}
		blk, err := s.cur.Next()
		if err != io.EOF {
			s.done.Add(1)
			return blk, err
		}
		s.close()
	}
}

// open asks the source for the next sub-DAG, or leaves cur nil when none
// is left. An identity root needs no asking: its links are asked for in
// its place.
func (s *subDAGs) open() error {
	for len(s.roots) > 0 {
		root := s.roots[0]
		s.roots = s.roots[1:]
		if s.skip(root) {
			continue
		}
		if data, ok := IdentityData(root); ok {
			links, err := Links(root, data)
			if err != nil {
				return err
			}
			s.roots = append(links, s.roots...)
			continue
		}
		req := s.req
		req.Root = root
		blocks, err := s.src.Fetch(s.ctx, req, s.limits)
		if err != nil {
			return lacking(err)
		}
		s.cur = blocks
		if p, ok := blocks.(Progressor); ok {
			s.curProg.Store(&p)
		}
		return nil
	}
	return nil
}

// lacking turns a source's "no such root" for a sub-DAG into what it is
// for the DAG: a missing block.
func lacking(err error) error {
	if f, ok := err.(*Failure); ok && f.Reason == pin.ReasonRootNotFound {
		out := *f
		out.Reason = pin.ReasonMissingBlock
		return &out
	}
	return err
}

func (s *subDAGs) close() {
	if p := s.curProg.Swap(nil); p != nil {
		s.done.Add((*p).Progress())
	}
	s.cur.Close()
	s.cur = nil
}

// Progress implements Progressor: what the streams so far received.
func (s *subDAGs) Progress() int64 {
	n := s.done.Load()
	if p := s.curProg.Load(); p != nil {
		n += (*p).Progress()
	}
	return n
}

// Close implements Blocks.
func (s *subDAGs) Close() error {
	if s.cur != nil {
		s.close()
	}
	return nil
}

// skipper drops the first skip bytes written through it: the first bytes
// of a resumed CAR's next section, which the kept bytes hold already.
type skipper struct {
	w    io.Writer
	skip int64
}

func (s *skipper) Write(p []byte) (int, error) {
	if s.skip >= int64(len(p)) {
		s.skip -= int64(len(p))
		return len(p), nil
	}
	n := int(s.skip)
	s.skip = 0
	m, err := s.w.Write(p[n:])
	return n + m, err
}
