package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
)

// Dump calls fn with the checkpoint of one snapshot of the views and the
// rows of that snapshot, table by table in viewrow.DumpTables() order,
// each in key order. The rows can be read only while fn runs.
func (s *Store) Dump(ctx context.Context, fn func(eventlog.Position, viewrow.Rows) error) error {
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		var cp int64
		if err := tx.QueryRow(ctx, `SELECT position FROM pickup_views.checkpoint WHERE id = 1`).Scan(&cp); err != nil {
			return err
		}
		return fn(eventlog.Position(cp), func(yield func(viewrow.DumpRow, error) bool) {
			for _, t := range dumps {
				if err := dumpTable(ctx, tx, t.sql, t.scan, yield); err != nil {
					if !errors.Is(err, errStop) {
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

var errStop = errors.New("stop")

// dumps reads each table in key order; text columns are in the "C"
// collation, bytewise, as dump keys are.
var dumps = []struct {
	sql  string
	scan func(pgx.Rows) (viewrow.DumpRow, error)
}{
	{`SELECT request_id, tenant, seq, created, cid, cid_key, name, name_fold, coalesce(list_status, ''), hidden, phase,
		coalesce(due_at, 0), coalesce(lease_until, 0), coalesce(failed_at, 0), car_bytes, state FROM pickup_views.pins ORDER BY request_id`,
		func(r pgx.Rows) (viewrow.DumpRow, error) {
			var c viewrow.PinColumns
			var id [16]byte
			var state []byte
			err := r.Scan(&id, &c.Tenant, &c.Seq, &c.Created, &c.CID, &c.CIDKey, &c.Name, &c.NameFold, &c.ListStatus, &c.Hidden, &c.Phase,
				&c.DueAt, &c.LeaseUntil, &c.FailedAt, &c.CarBytes, &state)
			c.RequestID, c.State = id, state
			return c.Dump(), err
		}},
	{`SELECT tenant, key, value, seq FROM pickup_views.pin_meta ORDER BY tenant, key, value, seq`,
		func(r pgx.Rows) (viewrow.DumpRow, error) {
			var m viewrow.MetaRow
			err := r.Scan(&m.Tenant, &m.Key, &m.Value, &m.Seq)
			return m.Dump(), err
		}},
	{`SELECT tenant, last_seq, last_created FROM pickup_views.tenants ORDER BY tenant`,
		func(r pgx.Rows) (viewrow.DumpRow, error) {
			var t viewrow.TenantRow
			err := r.Scan(&t.Tenant, &t.LastSeq, &t.LastCreated)
			return t.Dump(), err
		}},
	{`SELECT tenant, status, block, n FROM pickup_views.tenant_blocks ORDER BY tenant, status, block`,
		func(r pgx.Rows) (viewrow.DumpRow, error) {
			var k viewrow.BlockKey
			var n int64
			err := r.Scan(&k.Tenant, &k.Status, &k.Block, &n)
			return viewrow.DumpBlock(k, n), err
		}},
	{`SELECT tenant, key, value, status, block, n FROM pickup_views.meta_blocks ORDER BY tenant, key, value, status, block`,
		func(r pgx.Rows) (viewrow.DumpRow, error) {
			var k viewrow.MetaBlockKey
			var n int64
			err := r.Scan(&k.Tenant, &k.Key, &k.Value, &k.Status, &k.Block, &n)
			return viewrow.DumpMetaBlock(k, n), err
		}},
	{`SELECT name, n FROM pickup_views.totals ORDER BY name`,
		func(r pgx.Rows) (viewrow.DumpRow, error) {
			var name string
			var n int64
			err := r.Scan(&name, &n)
			return viewrow.DumpTotal(name, n), err
		}},
	{`SELECT token_id, tenant, hash, label, created, revoked FROM pickup_views.tokens ORDER BY token_id`,
		func(r pgx.Rows) (viewrow.DumpRow, error) {
			var t viewrow.TokenRow
			var id [16]byte
			var hash []byte
			err := r.Scan(&id, &t.Tenant, &hash, &t.Label, &t.Created, &t.Revoked)
			t.TokenID = id
			copy(t.Hash[:], hash)
			return t.Dump(), err
		}},
	{`SELECT root, live, has_car, released_at, deleting_until FROM pickup_views.roots ORDER BY root`,
		func(r pgx.Rows) (viewrow.DumpRow, error) {
			var rr viewrow.RootRow
			err := r.Scan(&rr.Root, &rr.Live, &rr.HasCar, &rr.ReleasedAt, &rr.DeletingUntil)
			return rr.Dump(), err
		}},
}

func dumpTable(ctx context.Context, tx pgx.Tx, sql string, scan func(pgx.Rows) (viewrow.DumpRow, error), yield func(viewrow.DumpRow, error) bool) error {
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		row, err := scan(rows)
		if err != nil {
			return err
		}
		if !yield(row, nil) {
			return errStop
		}
	}
	return rows.Err()
}
