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
// each has its own next page, up to readersAhead of them.
type readAhead struct {
	mu   sync.Mutex
	next []*prefetch
}

// readersAhead is how many pages are read ahead at once at most; a new one
// takes the place of the oldest.
const readersAhead = 4

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

// readAheadAfter reads the page after a full page, in the background,
// unless that page is already being read.
func (s *Store) readAheadAfter(page []eventlog.Event, limit int) {
	after := page[len(page)-1].Position
	s.ahead.mu.Lock()
	defer s.ahead.mu.Unlock()
	if s.ahead.find(after, limit) >= 0 {
		return
	}
	if s.enter() != nil {
		return
	}
	p := &prefetch{after: after, limit: limit, done: make(chan struct{})}
	if len(s.ahead.next) == readersAhead {
		s.ahead.next = s.ahead.next[1:]
	}
	s.ahead.next = append(s.ahead.next, p)
	go func() {
		defer s.running.Done()
		defer close(p.done)
		p.evs, p.err = s.readPage(s.background, after, limit)
	}()
}
