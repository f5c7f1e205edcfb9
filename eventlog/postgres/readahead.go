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
type readAhead struct {
	mu   sync.Mutex
	next *prefetch
}

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
	p := r.next
	if p == nil || p.after != after || p.limit != limit {
		r.mu.Unlock()
		return nil, false
	}
	r.next = nil
	r.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, false
	}
	return p.evs, p.err == nil && len(p.evs) == limit
}

// readAheadAfter reads the page after a full page, in the background, unless that
// page is already being read.
func (s *Store) readAheadAfter(page []eventlog.Event, limit int) {
	after := page[len(page)-1].Position
	s.ahead.mu.Lock()
	defer s.ahead.mu.Unlock()
	if p := s.ahead.next; p != nil && p.after == after && p.limit == limit {
		return
	}
	if s.enter() != nil {
		return
	}
	p := &prefetch{after: after, limit: limit, done: make(chan struct{})}
	s.ahead.next = p
	go func() {
		defer s.running.Done()
		defer close(p.done)
		p.evs, p.err = s.readPage(s.background, after, limit)
	}()
}
