package embedded

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/ncruces/go-sqlite3"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/sqlite"
)

type appendRequest struct {
	ctx      context.Context
	stream   string
	expected eventlog.Expected
	events   []eventlog.Proposed
	// done receives exactly one reply; it is buffered so that the writer
	// never waits for an appender that has gone.
	done chan appendReply
}

type appendReply struct {
	result eventlog.AppendResult
	err    error
}

// Append implements eventlog.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventlog.Expected, events ...eventlog.Proposed) (eventlog.AppendResult, error) {
	if err := eventlog.CheckStream(stream); err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append: %w", err)
	}
	if err := eventlog.CheckProposed(events); err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	if err := s.enter(); err != nil {
		return eventlog.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	defer s.running.Done()
	req := &appendRequest{ctx: ctx, stream: stream, expected: expected, events: events, done: make(chan appendReply, 1)}
	select {
	case s.appends <- req:
	case <-ctx.Done():
		return eventlog.AppendResult{}, ctx.Err()
	case <-s.closing:
		return eventlog.AppendResult{}, errClosedWhileWaiting
	}
	select {
	case r := <-req.done:
		return r.result, r.err
	case <-ctx.Done():
		return eventlog.AppendResult{}, ctx.Err()
	}
}

// writeLoop owns the write connection. It commits the appends waiting in
// batches, so that concurrent appenders share one transaction and one sync.
func (s *Store) writeLoop(w *sqlite.Conn) {
	defer close(s.writerEnd)
	defer w.Close()
	batch := make([]*appendRequest, 0, s.opts.MaxBatch)
	for {
		select {
		case r := <-s.appends:
			batch = append(batch[:0], r)
		case <-s.closing:
			s.refuseWaiting()
			return
		}
	drain:
		for len(batch) < s.opts.MaxBatch {
			select {
			case r := <-s.appends:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.commit(w, batch)
	}
}

// refuseWaiting answers the appends still queued at Close.
func (s *Store) refuseWaiting() {
	for {
		select {
		case r := <-s.appends:
			r.done <- appendReply{err: errClosedWhileWaiting}
		default:
			return
		}
	}
}

// commit applies a batch of appends in one transaction. Refusals (a wrong
// revision, a duplicate id) write nothing for that append and do not disturb
// the others; an I/O failure fails the whole batch.
func (s *Store) commit(w *sqlite.Conn, batch []*appendRequest) {
	replies := make([]appendReply, len(batch))
	wrote := false
	err := func() (err error) {
		tx, err := w.BeginImmediate()
		if err != nil {
			return err
		}
		defer tx.End(&err)
		for i, r := range batch {
			if err := r.ctx.Err(); err != nil {
				replies[i].err = err
				continue
			}
			res, refusal, err := appendOne(w, r)
			if err != nil {
				return err
			}
			replies[i] = appendReply{result: res, err: refusal}
			wrote = wrote || refusal == nil
		}
		return nil
	}()
	for i, r := range batch {
		if err != nil {
			replies[i] = appendReply{err: fmt.Errorf("append to %s: %w", r.stream, err)}
		}
		r.done <- replies[i]
	}
	if err == nil && wrote {
		s.notify()
	}
}

// appendOne writes one append inside the writer's transaction. It returns
// the result, or a refusal that leaves the log untouched, or an error that
// must abort the transaction.
func appendOne(w *sqlite.Conn, r *appendRequest) (res eventlog.AppendResult, refusal, err error) {
	res, done, refusal, err := previousAppend(w, r)
	if err != nil || refusal != nil || done {
		return res, refusal, err
	}
	current, exists, err := lastRevision(w, r.stream)
	if err != nil {
		return res, nil, err
	}
	if !r.expected.Allows(current, exists) {
		return res, &eventlog.WrongRevisionError{Stream: r.stream, Expected: r.expected, Current: current, Exists: exists}, nil
	}
	next := uint64(0)
	if exists {
		next = current + 1
	}
	ins, err := w.Stmt(`INSERT INTO events (id, stream, revision, type, version, time, actor, correlation, causation, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return res, nil, err
	}
	now := time.Now()
	for i, e := range r.events {
		t := e.Meta.Time
		if t.IsZero() {
			t = now
		}
		ins.BindBlob(1, e.ID[:])
		ins.BindText(2, r.stream)
		ins.BindInt64(3, int64(next+uint64(i)))
		ins.BindText(4, e.Type)
		ins.BindInt64(5, int64(e.Version))
		ins.BindInt64(6, t.UnixNano())
		ins.BindText(7, e.Meta.Actor)
		bindUUID(ins, 8, e.Meta.CorrelationID)
		bindUUID(ins, 9, e.Meta.CausationID)
		ins.BindBlob(10, e.Data)
		if err := ins.Exec(); err != nil {
			return res, nil, err
		}
		if err := ins.Reset(); err != nil {
			return res, nil, err
		}
	}
	return eventlog.AppendResult{
		Revision: next + uint64(len(r.events)) - 1,
		Position: eventlog.Position(w.LastInsertRowID()),
	}, nil, nil
}

// previousAppend looks for the append's event ids in its stream (see
// eventlog.PriorAppend). done is true when the very same append was
// committed before: its original result is returned and nothing is written.
func previousAppend(w *sqlite.Conn, r *appendRequest) (res eventlog.AppendResult, done bool, refusal, err error) {
	res, done, err = eventlog.PriorAppend(r.stream, r.events, func(id uuid.UUID) (eventlog.Recorded, bool, error) {
		return locate(w, r.stream, id)
	})
	if errors.Is(err, eventlog.ErrDuplicateID) {
		return res, false, err, nil
	}
	return res, done, nil, err
}

func locate(c *sqlite.Conn, stream string, id uuid.UUID) (eventlog.Recorded, bool, error) {
	q, err := c.Stmt(`SELECT revision, position FROM events WHERE stream = ? AND id = ?`)
	if err != nil {
		return eventlog.Recorded{}, false, err
	}
	q.BindText(1, stream)
	q.BindBlob(2, id[:])
	if !q.Step() {
		return eventlog.Recorded{}, false, q.Err()
	}
	at := eventlog.Recorded{Revision: uint64(q.ColumnInt64(0)), Position: eventlog.Position(q.ColumnInt64(1))}
	return at, true, q.Reset()
}

// lastRevision returns the revision of the stream's last event, and whether
// the stream has any.
func lastRevision(c *sqlite.Conn, stream string) (uint64, bool, error) {
	q, err := c.Stmt(`SELECT revision FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1`)
	if err != nil {
		return 0, false, err
	}
	q.BindText(1, stream)
	if !q.Step() {
		return 0, false, q.Err()
	}
	rev := uint64(q.ColumnInt64(0))
	return rev, true, q.Reset()
}

func bindUUID(s *sqlite3.Stmt, param int, id uuid.UUID) {
	if id == uuid.Nil {
		s.BindNull(param)
		return
	}
	s.BindBlob(param, id[:])
}

func columnUUID(s *sqlite3.Stmt, col int) uuid.UUID {
	var id uuid.UUID
	if b := s.ColumnRawBlob(col); len(b) == len(id) {
		copy(id[:], b)
	}
	return id
}
