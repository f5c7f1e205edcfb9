package embedded

import (
	"context"
	"fmt"
	"time"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/sqlite"
)

// subscribeBatch is the most events handed to a subscriber at once, and the
// widest window of positions a filtered subscription scans in one read.
const subscribeBatch = 1024

// Subscribe implements eventlog.Store.
func (s *Store) Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error {
	query, args := filterQuery(filter)
	poll := time.NewTimer(s.opts.PollInterval)
	defer poll.Stop()
	pos := after
	var batch []eventlog.Event
	for {
		// Take the wake-up channel before reading, so that a commit landing
		// between the read and the wait still wakes us.
		changed := s.changes()
		var next eventlog.Position
		err := s.read(ctx, func(c *sqlite.Conn) (err error) {
			batch, next, err = scanWindow(c, pos, filter, query, args, batch[:0])
			return err
		})
		if err != nil {
			return fmt.Errorf("subscribe after %d: %w", pos, err)
		}
		if len(batch) > 0 {
			if err := handle(batch); err != nil {
				return err
			}
			// The handler may keep the slice; never reuse it.
			batch = nil
		}
		if next > pos {
			pos = next
			continue
		}
		poll.Reset(s.opts.PollInterval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return fmt.Errorf("subscribe: %w", eventlog.ErrClosed)
		case <-changed:
		case <-poll.C:
		}
	}
}

// scanWindow reads the events after pos that the filter selects, and
// returns the position the subscription has seen up to. An unfiltered
// subscription reads the next events; a filtered one scans a window of
// positions, so that it moves on even where nothing matches.
func scanWindow(c *sqlite.Conn, pos eventlog.Position, f eventlog.Filter, query string, args []any, into []eventlog.Event) ([]eventlog.Event, eventlog.Position, error) {
	if f.IsZero() {
		out, err := readAll(c, pos, subscribeBatch, into)
		if err != nil || len(out) == 0 {
			return out, pos, err
		}
		return out, out[len(out)-1].Position, nil
	}
	head, err := readHead(c)
	if err != nil || head <= pos {
		return into, pos, err
	}
	// Every position up to head is committed (positions are assigned under
	// the write lock), so the window hides no late commit.
	end := min(head, pos+subscribeBatch)
	q, err := c.Stmt(query)
	if err != nil {
		return into, pos, err
	}
	q.BindInt64(1, int64(pos))
	q.BindInt64(2, int64(end))
	for i, a := range args {
		switch a := a.(type) {
		case string:
			q.BindText(i+3, a)
		case int64:
			q.BindInt64(i+3, a)
		}
	}
	out, err := scanEvents(q, into)
	return out, end, err
}
