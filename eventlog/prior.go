package eventlog

import (
	"fmt"

	"github.com/google/uuid"
)

// Recorded is where an event id was found in a stream.
type Recorded struct {
	Revision uint64
	Position Position
}

// PriorAppend tells whether an append of events to stream was already done:
// it looks each event id up in the stream with find. Every backend decides
// idempotency with it, so they agree:
//
//   - none of the ids is in the stream: a new append (done false);
//   - all of them are, the first one's followed by the others in order: a
//     retry of an append that succeeded (done true, with its original
//     result);
//   - anything else: ErrDuplicateID, nothing to write.
//
// Ids are unique within a stream; the log does not compare ids across
// streams (EventStoreDB does not either).
func PriorAppend(stream string, events []Proposed, find func(uuid.UUID) (Recorded, bool, error)) (res AppendResult, done bool, err error) {
	first, found, err := find(events[0].ID)
	if err != nil {
		return res, false, err
	}
	for i, e := range events {
		at, ok := first, found
		if i > 0 {
			if at, ok, err = find(e.ID); err != nil {
				return res, false, err
			}
		}
		switch {
		case !found && ok:
			return res, false, fmt.Errorf("append to %s: event %s is already in the stream: %w", stream, e.ID, ErrDuplicateID)
		case found && (!ok || at.Revision != first.Revision+uint64(i)):
			return res, false, fmt.Errorf("append to %s: event %s: only part of the append is in the stream: %w", stream, e.ID, ErrDuplicateID)
		}
		res = AppendResult{Revision: at.Revision, Position: at.Position}
	}
	if !found {
		return AppendResult{}, false, nil
	}
	return res, true, nil
}
