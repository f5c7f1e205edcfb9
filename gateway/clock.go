package gateway

import (
	"sync"
	"time"
)

// createdClock stamps pin requests' Created times: microsecond precision
// (what the views store and clients page by), strictly increasing within the
// process, so that two requests of one tenant accepted here never share a
// timestamp and the 202's created is, in the normal case, exactly what
// later reads show. (The views also make Created strictly increasing per
// tenant across processes.)
type createdClock struct {
	now  func() time.Time
	mu   sync.Mutex
	last time.Time
}

func (c *createdClock) Now() time.Time {
	t := c.now().UTC().Truncate(time.Microsecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.After(c.last) {
		t = c.last.Add(time.Microsecond)
	}
	c.last = t
	return t
}
