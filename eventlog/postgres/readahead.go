package postgres

import (
	"context"
	"sync"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// readAhead is the page a reader of the whole log will ask for next: a
// replay calls ReadAll page after page, and while it works on one page the
// server computes the next, so that the two sides of the connection work
// at once instead of taking turns.
//
// Only a full page is handed out. A full page read earlier is what a
// fresh read returns: positions are assigned under the append lock, so no
// event can be committed later below the page's last position (see the
// package doc). A short page may have missed events appended since, and
// is read again.
//
// A few readers may replay at once (a projector's runners catching up):
// each has its own pages ahead, for up to readersAhead of them.
type readAhead struct {
	mu   sync.Mutex
	next []*prefetch
}

// readersAhead is how many readers have pages read ahead at once at most,
// pagesAhead pages each; a new page takes the place of the oldest. Pages
// read ahead keep the server's backends working while the reader decodes
// (a million events read back here: 335,000-340,000 events/s one page
// ahead, 370,000-470,000 two, 540,000-570,000 three). Each takes a
// connection while it is read: 6 of the pool's Readers+2 at most.
const (
	readersAhead = 2
	pagesAhead   = 3
)

type prefetch struct {
	after eventlog.Position
	limit int
	done  chan struct{}
	evs   []eventlog.Event
	err   error
}

// take returns the page read ahead for (after, limit), if it was full.
func (r *readAhead) take(ctx context.Context, after eventlog.Position, limit int) ([]eventlog.Event, bool) {
	r.mu.Lock()
	i := r.find(after, limit)
	if i < 0 {
		r.mu.Unlock()
		return nil, false
	}
	p := r.next[i]
	r.next = append(r.next[:i], r.next[i+1:]...)
	r.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, false
	}
	return p.evs, p.err == nil && len(p.evs) == limit
}

// find returns the index of the page read ahead for (after, limit), or -1.
// The caller holds mu.
func (r *readAhead) find(after eventlog.Position, limit int) int {
	for i, p := range r.next {
		if p.after == after && p.limit == limit {
			return i
		}
	}
	return -1
}

// readAheadAfter reads the pages after a full page, pagesAhead of them, in
// the background, unless they are already being read. The pages beyond the
// next are where the log's dense positions put them (one after another
// from head+1: see commitBatch); were a position missing, such a page
// would be asked for by no reader and only wasted, never wrong, since a
// full page after a position is the log's whatever the positions.
func (s *Store) readAheadAfter(page []eventlog.Event, limit int) {
	after := page[len(page)-1].Position
	s.ahead.mu.Lock()
	defer s.ahead.mu.Unlock()
	for k := range pagesAhead {
		s.startReadAhead(after+eventlog.Position(k*limit), limit)
	}
}

// startReadAhead reads the page after a position in the background unless
// it is being read. The caller holds s.ahead.mu.
func (s *Store) startReadAhead(after eventlog.Position, limit int) {
	if s.ahead.find(after, limit) >= 0 || s.enter() != nil {
		return
	}
	p := &prefetch{after: after, limit: limit, done: make(chan struct{})}
	if len(s.ahead.next) == readersAhead*pagesAhead {
		s.ahead.next = s.ahead.next[1:]
	}
	s.ahead.next = append(s.ahead.next, p)
	go func() {
		defer s.running.Done()
		defer close(p.done)
		p.evs, p.err = s.readPage(s.background, after, limit)
	}()
}
