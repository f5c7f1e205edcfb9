package postgres

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pickup-ipfs/pickup/eventlog"
)

const columns = `position, id, stream, revision, type, version, time_ns, actor, correlation, causation, data`

// scanEvents reads every row of rows as an event, appending to into.
func scanEvents(rows pgx.Rows, into []eventlog.Event) ([]eventlog.Event, error) {
	defer rows.Close()
	var (
		pos, rev, timeNS   int64
		version            int32
		corr, cause        pgtype.UUID
		e                  eventlog.Event
		stream, typ, actor string
		data               []byte
	)
	for rows.Next() {
		e = eventlog.Event{}
		if err := rows.Scan(&pos, (*[16]byte)(&e.ID), &stream, &rev, &typ, &version, &timeNS, &actor, &corr, &cause, &data); err != nil {
			return into, err
		}
		e.Position, e.Stream, e.Revision, e.Type, e.Version = eventlog.Position(pos), stream, uint64(rev), typ, int(version)
		e.Meta = eventlog.Metadata{Time: time.Unix(0, timeNS).UTC(), Actor: actor}
		if corr.Valid {
			e.Meta.CorrelationID = corr.Bytes
		}
		if cause.Valid {
			e.Meta.CausationID = cause.Bytes
		}
		// Scan reuses nothing of a []byte it fills: the slice is the row's
		// own copy.
		e.Data = data
		data = nil
		into = append(into, e)
	}
	return into, rows.Err()
}

func checkLimit(limit int) error {
	if limit < 1 {
		return fmt.Errorf("%w: read limit %d, want at least 1", eventlog.ErrInvalid, limit)
	}
	return nil
}

// query runs a read as a call in flight of the store.
func (s *Store) query(ctx context.Context, into []eventlog.Event, sql string, args ...any) ([]eventlog.Event, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.running.Done()
	var out []eventlog.Event
	err := s.retried(ctx, func() error {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = scanEvents(rows, into)
		return err
	})
	return out, s.closedErr(err)
}

// ReadStream implements eventlog.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, limit int) ([]eventlog.Event, error) {
	if err := eventlog.CheckStream(stream); err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	sql := `SELECT ` + columns + ` FROM pickup_events.events WHERE stream = $1 AND revision >= $2 ORDER BY revision LIMIT $3`
	if dir == eventlog.Backwards {
		sql = `SELECT ` + columns + ` FROM pickup_events.events WHERE stream = $1 AND revision <= $2 ORDER BY revision DESC LIMIT $3`
	}
	out, err := s.query(ctx, nil, sql, stream, int64(min(from, math.MaxInt64)), limit)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	return out, nil
}

// ReadAll implements eventlog.Store. A full page starts the read of the
// next one (readAhead).
func (s *Store) ReadAll(ctx context.Context, after eventlog.Position, limit int) ([]eventlog.Event, error) {
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("read all after %d: %w", after, err)
	}
	defer s.running.Done()
	out, ok := s.ahead.take(ctx, after, limit)
	if !ok {
		var err error
		if out, err = s.readPage(ctx, after, limit); err != nil {
			return nil, fmt.Errorf("read all after %d: %w", after, err)
		}
	}
	if len(out) == limit {
		s.readAheadAfter(out, limit)
	}
	return out, nil
}

// readPage reads up to limit events after a position, in log order.
func (s *Store) readPage(ctx context.Context, after eventlog.Position, limit int) ([]eventlog.Event, error) {
	var out []eventlog.Event
	err := s.retried(ctx, func() error {
		rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM pickup_events.events WHERE position > $1 ORDER BY position LIMIT $2`,
			int64(min(after, math.MaxInt64)), limit)
		if err != nil {
			return err
		}
		out, err = scanEvents(rows, nil)
		return err
	})
	return out, s.closedErr(err)
}

// Head implements eventlog.Store.
func (s *Store) Head(ctx context.Context) (eventlog.Position, error) {
	if err := s.enter(); err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	defer s.running.Done()
	var head eventlog.Position
	err := s.retried(ctx, func() (err error) {
		head, err = readHead(ctx, s.pool)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read head: %w", s.closedErr(err))
	}
	return head, nil
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func readHead(ctx context.Context, q queryRower) (eventlog.Position, error) {
	var head int64
	err := q.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM pickup_events.events`).Scan(&head)
	return eventlog.Position(head), err
}

// filterQuery returns the query for the events a filter selects in a
// window of positions ($1, $2], at most $3 of them, with its arguments
// after those three. Prefixes are compared with starts_with, byte for byte:
// LIKE would treat % and _ in a prefix as wildcards.
func filterQuery(f eventlog.Filter) (string, []any) {
	var b strings.Builder
	var args []any
	b.WriteString(`SELECT ` + columns + ` FROM pickup_events.events WHERE position > $1 AND position <= $2`)
	if len(f.Types) > 0 {
		args = append(args, f.Types)
		b.WriteString(` AND type = ANY($` + strconv.Itoa(len(args)+3) + `::text[])`)
	}
	if len(f.StreamPrefixes) > 0 {
		args = append(args, f.StreamPrefixes)
		b.WriteString(` AND EXISTS (SELECT 1 FROM unnest($` + strconv.Itoa(len(args)+3) + `::text[]) AS p(prefix) WHERE starts_with(stream, p.prefix))`)
	}
	b.WriteString(` ORDER BY position LIMIT $3`)
	return b.String(), args
}
