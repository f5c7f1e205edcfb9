package embedded

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/sqlite"
)

const columns = `position, id, stream, revision, type, version, time, actor, correlation, causation, data`

// scanEvents steps q to its end, collecting every row as an event.
func scanEvents(q *sqlite3.Stmt, into []eventlog.Event) ([]eventlog.Event, error) {
	for q.Step() {
		into = append(into, eventlog.Event{
			Position: eventlog.Position(q.ColumnInt64(0)),
			ID:       columnUUID(q, 1),
			Stream:   q.ColumnText(2),
			Revision: uint64(q.ColumnInt64(3)),
			Type:     q.ColumnText(4),
			Version:  q.ColumnInt(5),
			Meta: eventlog.Metadata{
				Time:          time.Unix(0, q.ColumnInt64(6)).UTC(),
				Actor:         q.ColumnText(7),
				CorrelationID: columnUUID(q, 8),
				CausationID:   columnUUID(q, 9),
			},
			Data: q.ColumnBlob(10, nil),
		})
	}
	return into, q.Err()
}

func checkLimit(limit int) error {
	if limit < 1 {
		return fmt.Errorf("%w: read limit %d, want at least 1", eventlog.ErrInvalid, limit)
	}
	return nil
}

// ReadStream implements eventlog.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, limit int) ([]eventlog.Event, error) {
	if err := eventlog.CheckStream(stream); err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	query := `SELECT ` + columns + ` FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?`
	if dir == eventlog.Backwards {
		query = `SELECT ` + columns + ` FROM events WHERE stream = ? AND revision <= ? ORDER BY revision DESC LIMIT ?`
	}
	var out []eventlog.Event
	err := s.read(ctx, func(c *sqlite.Conn) error {
		q, err := c.Stmt(query)
		if err != nil {
			return err
		}
		q.BindText(1, stream)
		q.BindInt64(2, int64(min(from, math.MaxInt64)))
		q.BindInt64(3, int64(limit))
		out, err = scanEvents(q, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	return out, nil
}

// ReadAll implements eventlog.Store.
func (s *Store) ReadAll(ctx context.Context, after eventlog.Position, limit int) ([]eventlog.Event, error) {
	if err := checkLimit(limit); err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	var out []eventlog.Event
	err := s.read(ctx, func(c *sqlite.Conn) (err error) {
		out, err = readAll(c, after, limit, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read all after %d: %w", after, err)
	}
	return out, nil
}

func readAll(c *sqlite.Conn, after eventlog.Position, limit int, into []eventlog.Event) ([]eventlog.Event, error) {
	q, err := c.Stmt(`SELECT ` + columns + ` FROM events WHERE position > ? ORDER BY position LIMIT ?`)
	if err != nil {
		return into, err
	}
	q.BindInt64(1, int64(after))
	q.BindInt64(2, int64(limit))
	return scanEvents(q, into)
}

// Head implements eventlog.Store.
func (s *Store) Head(ctx context.Context) (eventlog.Position, error) {
	var head eventlog.Position
	err := s.read(ctx, func(c *sqlite.Conn) (err error) {
		head, err = readHead(c)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	return head, nil
}

func readHead(c *sqlite.Conn) (eventlog.Position, error) {
	q, err := c.Stmt(`SELECT coalesce(max(position), 0) FROM events`)
	if err != nil {
		return 0, err
	}
	if !q.Step() {
		return 0, q.Err()
	}
	head := eventlog.Position(q.ColumnInt64(0))
	return head, q.Reset()
}

// filterQuery returns the query for a window of positions holding the
// events a filter selects, with its arguments after the window's bounds.
func filterQuery(f eventlog.Filter) (string, []any) {
	var b strings.Builder
	var args []any
	b.WriteString(`SELECT ` + columns + ` FROM events WHERE position > ? AND position <= ?`)
	if len(f.Types) > 0 {
		b.WriteString(` AND type IN (`)
		for i, t := range f.Types {
			if i > 0 {
				b.WriteString(`, `)
			}
			b.WriteString(`?`)
			args = append(args, t)
		}
		b.WriteString(`)`)
	}
	if len(f.StreamPrefixes) > 0 {
		b.WriteString(` AND (`)
		for i, p := range f.StreamPrefixes {
			if i > 0 {
				b.WriteString(` OR `)
			}
			// Compare bytes exactly: LIKE would treat % and _ in a prefix as
			// wildcards and fold case.
			b.WriteString(`substr(CAST(stream AS BLOB), 1, ?) = CAST(? AS BLOB)`)
			args = append(args, int64(len(p)), p)
		}
		b.WriteString(`)`)
	}
	b.WriteString(` ORDER BY position`)
	return b.String(), args
}
