package embedded

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/ncruces/go-sqlite3"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/sqlite"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
)

// Dump calls fn with the checkpoint of one snapshot of the views and the
// rows of that snapshot, table by table in viewrow.DumpTables() order,
// each in key order. The rows can be read only while fn runs.
func (s *Store) Dump(ctx context.Context, fn func(eventlog.Position, viewrow.Rows) error) error {
	err := s.read(ctx, func(c *sqlite.Conn) error {
		cp, err := readCheckpoint(c)
		if err != nil {
			return err
		}
		return fn(cp, func(yield func(viewrow.DumpRow, error) bool) {
			for i, t := range dumps {
				dump := dumpTable
				if i == 0 {
					dump = dumpPins
				}
				if err := dump(c, t, yield); err != nil {
					if err != errStop {
						yield(viewrow.DumpRow{}, fmt.Errorf("dump %s: %w", t.sql, err))
					}
					return
				}
			}
		})
	})
	if err != nil {
		return fmt.Errorf("dump views: %w", err)
	}
	return nil
}

// dumps reads each table in key order; the text columns are compared as
// bytes (SQLite's BINARY collation), as dump keys are.
var dumps = []struct {
	sql  string
	scan func(q *sqlite3.Stmt) viewrow.DumpRow
}{
	{`SELECT request_id, tenant, seq, created, cid, cid_key, name, name_fold, list_status, hidden, phase,
		coalesce(due_at, 0), coalesce(lease_until, 0), coalesce(failed_at, 0), car_bytes, state FROM pins WHERE rowid = ?`,
		func(q *sqlite3.Stmt) viewrow.DumpRow {
			var id uuid.UUID
			copy(id[:], q.ColumnRawBlob(0))
			return viewrow.PinColumns{
				RequestID: id, Tenant: q.ColumnText(1), Seq: q.ColumnInt64(2), Created: q.ColumnInt64(3),
				CID: q.ColumnText(4), CIDKey: q.ColumnText(5), Name: q.ColumnText(6), NameFold: q.ColumnText(7),
				ListStatus: q.ColumnText(8), Hidden: q.ColumnBool(9), Phase: q.ColumnText(10),
				DueAt: q.ColumnInt64(11), LeaseUntil: q.ColumnInt64(12), FailedAt: q.ColumnInt64(13),
				CarBytes: q.ColumnInt64(14), State: q.ColumnBlob(15, nil),
			}.Dump()
		}},
	{`SELECT tenant, key, value, seq FROM pin_meta ORDER BY tenant, key, value, seq`,
		func(q *sqlite3.Stmt) viewrow.DumpRow {
			return viewrow.MetaRow{Tenant: q.ColumnText(0), Key: q.ColumnText(1), Value: q.ColumnText(2), Seq: q.ColumnInt64(3)}.Dump()
		}},
	{`SELECT tenant, last_seq, last_created FROM tenants ORDER BY tenant`,
		func(q *sqlite3.Stmt) viewrow.DumpRow {
			return viewrow.TenantRow{Tenant: q.ColumnText(0), LastSeq: q.ColumnInt64(1), LastCreated: q.ColumnInt64(2)}.Dump()
		}},
	{`SELECT tenant, status, block, n FROM tenant_blocks ORDER BY tenant, status, block`,
		func(q *sqlite3.Stmt) viewrow.DumpRow {
			return viewrow.DumpBlock(viewrow.BlockKey{Tenant: q.ColumnText(0), Status: q.ColumnText(1), Block: q.ColumnInt64(2)}, q.ColumnInt64(3))
		}},
	{`SELECT tenant, key, value, status, block, n FROM meta_blocks ORDER BY tenant, key, value, status, block`,
		func(q *sqlite3.Stmt) viewrow.DumpRow {
			return viewrow.DumpMetaBlock(viewrow.MetaBlockKey{Tenant: q.ColumnText(0), Key: q.ColumnText(1), Value: q.ColumnText(2),
				Status: q.ColumnText(3), Block: q.ColumnInt64(4)}, q.ColumnInt64(5))
		}},
	{`SELECT name, n FROM totals ORDER BY name`,
		func(q *sqlite3.Stmt) viewrow.DumpRow {
			return viewrow.DumpTotal(q.ColumnText(0), q.ColumnInt64(1))
		}},
	{`SELECT token_id, tenant, hash, label, created, revoked FROM tokens ORDER BY token_id`,
		func(q *sqlite3.Stmt) viewrow.DumpRow {
			t := viewrow.TokenRow{Tenant: q.ColumnText(1), Label: q.ColumnText(3), Created: q.ColumnInt64(4), Revoked: q.ColumnBool(5)}
			copy(t.TokenID[:], q.ColumnRawBlob(0))
			copy(t.Hash[:], q.ColumnRawBlob(2))
			return t.Dump()
		}},
	{`SELECT root, live, has_car, released_at, deleting_until FROM roots ORDER BY root`,
		func(q *sqlite3.Stmt) viewrow.DumpRow {
			return viewrow.RootRow{Root: q.ColumnText(0), Live: q.ColumnInt64(1), HasCar: q.ColumnBool(2), ReleasedAt: q.ColumnInt64(3), DeletingUntil: q.ColumnInt64(4)}.Dump()
		}},
}

// dumpPins reads the pins in request id order: no index holds that order
// (request ids are indexed by hash), so SQLite sorts the ids and rowids
// alone, and each row is read by rowid.
func dumpPins(c *sqlite.Conn, t struct {
	sql  string
	scan func(q *sqlite3.Stmt) viewrow.DumpRow
}, yield func(viewrow.DumpRow, error) bool) error {
	order, _, err := c.Prepare(`SELECT rowid FROM pins ORDER BY request_id`)
	if err != nil {
		return err
	}
	defer order.Close()
	row, _, err := c.Prepare(t.sql)
	if err != nil {
		return err
	}
	defer row.Close()
	for order.Step() {
		row.BindInt64(1, order.ColumnInt64(0))
		if !row.Step() {
			if err := row.Err(); err != nil {
				return err
			}
			continue
		}
		ok := yield(t.scan(row), nil)
		if err := row.Reset(); err != nil {
			return err
		}
		if !ok {
			return errStop
		}
	}
	return order.Err()
}

func dumpTable(c *sqlite.Conn, t struct {
	sql  string
	scan func(q *sqlite3.Stmt) viewrow.DumpRow
}, yield func(viewrow.DumpRow, error) bool) error {
	// A statement of its own: the cached ones may be in use by the caller
	// between rows.
	q, _, err := c.Prepare(t.sql)
	if err != nil {
		return err
	}
	defer q.Close()
	for q.Step() {
		if !yield(t.scan(q), nil) {
			return errStop
		}
	}
	return q.Err()
}
