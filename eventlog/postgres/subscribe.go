package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/pickup-ipfs/pickup/eventlog"
)

const (
	// subscribeBatch is the most events handed to a subscriber at once.
	subscribeBatch = 1024
	// filterWindow is the widest window of positions a filtered
	// subscription scans in one query, so that a rare type costs a bounded
	// scan per query rather than one over the rest of the log.
	filterWindow = 64 * subscribeBatch
)

// Subscribe implements eventlog.Store.
func (s *Store) Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error {
	s.startListening()
	sql, extra := filterQuery(filter)
	poll := time.NewTimer(s.opts.PollInterval)
	defer poll.Stop()
	pos := after
	for {
		// Take the wake-up channel before reading, so that a commit landing
		// between the read and the wait still wakes us.
		changed := s.changes()
		batch, next, err := s.scanWindow(ctx, pos, filter, sql, extra)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("subscribe after %d: %w", pos, err)
		}
		if len(batch) > 0 {
			if err := handle(batch); err != nil {
				return err
			}
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
// positions up to the head, so that it moves on where nothing matches.
// Every position up to the head is committed (positions are assigned under
// the append lock, see the package doc), so no window hides a late commit.
func (s *Store) scanWindow(ctx context.Context, pos eventlog.Position, f eventlog.Filter, sql string, extra []any) ([]eventlog.Event, eventlog.Position, error) {
	end := eventlog.Position(math.MaxInt64)
	if !f.IsZero() {
		head, err := s.Head(ctx)
		if err != nil || head <= pos {
			return nil, pos, err
		}
		end = min(head, pos+filterWindow)
	}
	args := append([]any{int64(pos), int64(end), subscribeBatch}, extra...)
	out, err := s.query(ctx, nil, sql, args...)
	switch {
	case err != nil:
		return nil, pos, err
	case len(out) == subscribeBatch || f.IsZero() && len(out) > 0:
		return out, out[len(out)-1].Position, nil
	case f.IsZero():
		return nil, pos, nil
	}
	return out, end, nil
}
