package postgres

import (
	"context"
	"fmt"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Import writes events recorded in another log, in their order, in one
// transaction: each to its stream at its recorded revision, with its id,
// type, version, data and metadata (time included); positions are this
// log's. It is how `pickup events copy` moves a history quickly, where
// Append would take one commit per stream change.
//
// Outcomes: nil, and every event is durable (an event whose id is already
// at its revision, from an earlier import, is not written again); a
// *eventlog.WrongRevisionError or eventlog.ErrDuplicateID when the log
// does not continue the history as the events say (a stream holds other
// events), or eventlog.ErrInvalid for bad events: then nothing is written.
// Other errors: nothing is known to be written, and importing the same
// events again is safe.
func (s *Store) Import(ctx context.Context, events []eventlog.Event) error {
	if len(events) == 0 {
		return nil
	}
	batch, err := importRequests(ctx, events)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := s.enter(); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer s.running.Done()
	wrote, err := s.commitBatch(ctx, batch, make([]appendReply, len(batch)), true)
	if err != nil {
		return fmt.Errorf("import %d events from %s/%d: %w", len(events), events[0].Stream, events[0].Revision, s.closedErr(err))
	}
	if wrote {
		s.notify()
	}
	return nil
}

// importRequests groups events into appends, one for each run of
// consecutive revisions of one stream, each expecting the stream to end
// just before its first event.
func importRequests(ctx context.Context, events []eventlog.Event) ([]*appendRequest, error) {
	var batch []*appendRequest
	for i, e := range events {
		p := eventlog.Proposed{ID: e.ID, Type: e.Type, Version: e.Version, Data: e.Data, Meta: e.Meta}
		if n := len(batch); n > 0 && batch[n-1].stream == e.Stream && e.Revision == events[i-1].Revision+1 {
			batch[n-1].events = append(batch[n-1].events, p)
			continue
		}
		batch = append(batch, &appendRequest{
			ctx: ctx, stream: e.Stream, expected: eventlog.ExpectedAfter(e.Revision-1, e.Revision > 0),
			events: []eventlog.Proposed{p},
		})
	}
	for _, r := range batch {
		if err := eventlog.CheckStream(r.stream); err != nil {
			return nil, err
		}
		if err := eventlog.CheckProposed(r.events); err != nil {
			return nil, fmt.Errorf("%s: %w", r.stream, err)
		}
		if err := checkText(r.stream, r.events); err != nil {
			return nil, fmt.Errorf("%s: %w", r.stream, err)
		}
	}
	return batch, nil
}
