package bitswap

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/exchange"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
)

const (
	// firstBlockGuess sizes the window until blocks arrive: kubo's chunk.
	firstBlockGuess = 256 << 10
	// minWant and maxWant bound the blocks wanted at once: a few even for
	// big blocks, and not so many small ones that wantlists balloon.
	minWant = 8
	maxWant = 1024
	// maxNudgeEvery bounds how long a wanted block may keep everyone
	// waiting before it is asked for again.
	maxNudgeEvery = 10 * time.Second
)

type arrival struct {
	c    cid.Cid
	data []byte
}

// stream walks the DAG depth-first and yields its blocks in that order,
// keeping the blocks the walk will need next wanted from the session.
type stream struct {
	src    *Source
	ctx    context.Context
	cancel context.CancelFunc
	req    dag.Request
	limits dag.Limits
	tag    string

	started bool
	session exchange.Fetcher
	walk    *dag.Walk
	// requested holds the CIDs wanted and not yet yielded; arrived those
	// of them received.
	requested map[cid.Cid]struct{}
	arrived   map[cid.Cid][]byte
	// biggest is the largest block seen, to turn the window's bytes into
	// a number of blocks.
	biggest  int
	upcoming []cid.Cid
	in       chan arrival
	forward  sync.WaitGroup
	progress atomic.Int64
}

// Next implements dag.Blocks.
func (s *stream) Next() (dag.Block, error) {
	if !s.started {
		if err := s.src.connect(s.ctx, s.req.Origins, s.tag, s.limits); err != nil {
			return dag.Block{}, err
		}
		s.session = s.src.client.NewSession(s.ctx)
		s.started = true
	}
	c, err := s.walk.NextToFetch()
	if err != nil {
		return dag.Block{}, err
	}
	if err := s.want(c); err != nil {
		return dag.Block{}, err
	}
	data, err := s.await(c)
	if err != nil {
		return dag.Block{}, err
	}
	links, err := dag.Links(c, data)
	if err != nil {
		return dag.Block{}, err
	}
	s.walk.Visit(links)
	return dag.Block{CID: c, Data: data}, nil
}

// want asks the session for c, if not yet asked, and for the blocks the
// walk will need after it, as far as the window allows.
func (s *stream) want(c cid.Cid) error {
	biggest := max(s.biggest, firstBlockGuess)
	limit := min(max(s.src.cfg.WindowBytes/biggest, minWant), maxWant)
	var batch []cid.Cid
	if _, ok := s.requested[c]; !ok {
		batch = append(batch, c)
	}
	s.upcoming = s.walk.Upcoming(s.upcoming[:0], limit)
	for _, u := range s.upcoming {
		if len(s.requested)+len(batch) >= limit {
			break
		}
		if _, ok := s.requested[u]; !ok {
			batch = append(batch, u)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	ch, err := s.session.GetBlocks(s.ctx, batch)
	if err != nil {
		return err
	}
	for _, b := range batch {
		s.requested[b] = struct{}{}
	}
	s.forward.Go(func() { s.pipe(ch) })
	return nil
}

// pipe hands the session's blocks to the walk.
func (s *stream) pipe(ch <-chan blocks.Block) {
	for blk := range ch {
		s.progress.Add(int64(len(blk.RawData())))
		select {
		case s.in <- arrival{c: blk.Cid(), data: blk.RawData()}:
		case <-s.ctx.Done():
			return
		}
	}
}

// await returns c's data once it has arrived. If nothing arrives for a
// while, it asks again (see rewant).
func (s *stream) await(c cid.Cid) ([]byte, error) {
	every := min(maxNudgeEvery, s.limits.ChunkTimeout/3)
	nudge := time.NewTimer(every)
	defer nudge.Stop()
	for {
		if data, ok := s.arrived[c]; ok {
			delete(s.arrived, c)
			delete(s.requested, c)
			return data, nil
		}
		select {
		case a := <-s.in:
			if _, ok := s.requested[a.c]; !ok {
				// Asked twice (see rewant), delivered twice.
				continue
			}
			s.arrived[a.c] = a.data
			s.biggest = max(s.biggest, len(a.data))
			nudge.Reset(every)
		case <-nudge.C:
			s.rewant(c)
			nudge.Reset(every)
		case <-s.ctx.Done():
			return nil, fmt.Errorf("waiting for block %s (%d wanted): %w", c, len(s.requested), context.Cause(s.ctx))
		}
	}
}

// rewant asks again, in a new session, for every block wanted and not yet
// received, after dialing the origins again. A want can be lost for good
// inside bitswap (a peer it wrongly takes for gone, a want timed out into a
// DONT_HAVE): asking anew costs little next to a fetch that stalls until
// the chunk timeout and starts over.
func (s *stream) rewant(waiting cid.Cid) {
	var missing []cid.Cid
	for c := range s.requested {
		if _, ok := s.arrived[c]; !ok {
			missing = append(missing, c)
		}
	}
	s.src.log.Info("no block for a while; asking again", "root", s.req.Root, "waiting", waiting, "missing", len(missing))
	if err := s.src.connect(s.ctx, s.req.Origins, s.tag, s.limits); err != nil {
		s.src.log.Debug("dial origins again", "root", s.req.Root, "err", err)
	}
	s.session = s.src.client.NewSession(s.ctx)
	ch, err := s.session.GetBlocks(s.ctx, missing)
	if err != nil {
		return
	}
	s.forward.Go(func() { s.pipe(ch) })
}

// Progress implements dag.Progressor: bytes received.
func (s *stream) Progress() int64 { return s.progress.Load() }

// Close implements dag.Blocks.
func (s *stream) Close() error {
	s.cancel()
	s.forward.Wait()
	s.src.unprotect(s.tag)
	return nil
}
