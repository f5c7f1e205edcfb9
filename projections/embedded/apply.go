package embedded

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"
	"github.com/ncruces/go-sqlite3"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/sqlite"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
)

// Apply implements projections.Applier: a batch of the events that follow
// position after is applied in one transaction with the new checkpoint. Events at or
// before the stored checkpoint are left out, so a batch applied twice, or
// by two runners at once, counts once.
func (s *Store) Apply(ctx context.Context, after eventlog.Position, batch *viewrow.Batch) (projections.Applied, error) {
	var out projections.Applied
	err := s.write(ctx, func(c *sqlite.Conn) error {
		cp, err := readCheckpoint(c)
		if err != nil {
			return err
		}
		if cp < after {
			return fmt.Errorf("%w: checkpoint %d, events after %d", projections.ErrCheckpointMoved, cp, after)
		}
		out.Checkpoint = cp
		b := batch.Since(cp)
		if b.Len() == 0 {
			return nil
		}
		if err := pace(c, b.Len()); err != nil {
			return err
		}
		loaded, rowids, err := load(c, b)
		if err != nil {
			return err
		}
		ch, err := b.Project(loaded)
		if err != nil {
			return err
		}
		if err := save(c, ch, rowids); err != nil {
			return err
		}
		out = projections.Applied{Events: b.Len(), Checkpoint: ch.Checkpoint, Skipped: ch.Skipped}
		return nil
	})
	if err != nil {
		return projections.Applied{}, fmt.Errorf("apply events to views: %w", err)
	}
	return out, nil
}

func readCheckpoint(c *sqlite.Conn) (eventlog.Position, error) {
	q, err := c.Stmt(`SELECT position FROM checkpoint WHERE id = 1`)
	if err != nil {
		return 0, err
	}
	if !q.Step() {
		if err := q.Err(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("no checkpoint row")
	}
	cp := eventlog.Position(q.ColumnInt64(0))
	return cp, q.Reset()
}

const pinColumns = `state, seq, created, hidden`

// scanPin reads a row selected with pinColumns from column at on.
func scanPin(q *sqlite3.Stmt, at int) (viewrow.PinRow, error) {
	return viewrow.DecodePinRow(q.ColumnRawBlob(at), q.ColumnInt64(at+1), q.ColumnInt64(at+2), q.ColumnBool(at+3))
}

// reqHash is the index key of a request id: its first 8 bytes, random
// already.
func reqHash(id uuid.UUID) int64 { return int64(binary.BigEndian.Uint64(id[:8])) }

// load reads the rows a batch touches, and the rowids of its pins, by which
// save updates them.
func load(c *sqlite.Conn, b *viewrow.Batch) (viewrow.Loaded, map[uuid.UUID]int64, error) {
	l := viewrow.NewLoaded()
	rowids := map[uuid.UUID]int64{}
	q, err := c.Stmt(`SELECT ` + pinColumns + `, rowid FROM pins INDEXED BY pins_req WHERE req_hash = ? AND request_id = ?`)
	if err != nil {
		return l, nil, err
	}
	for _, id := range b.Pins {
		q.BindInt64(1, reqHash(id))
		q.BindBlob(2, id[:])
		if q.Step() {
			r, err := scanPin(q, 0)
			if err != nil {
				return l, nil, fmt.Errorf("pin %s: %w", id, err)
			}
			l.Pins[id] = r
			rowids[id] = q.ColumnInt64(4)
		}
		if err := q.Reset(); err != nil {
			return l, nil, err
		}
	}
	q, err = c.Stmt(`SELECT last_seq, last_created FROM tenants WHERE tenant = ?`)
	if err != nil {
		return l, nil, err
	}
	for _, t := range b.Tenants {
		q.BindText(1, t)
		if q.Step() {
			l.Tenants[t] = viewrow.TenantRow{Tenant: t, LastSeq: q.ColumnInt64(0), LastCreated: q.ColumnInt64(1)}
		}
		if err := q.Reset(); err != nil {
			return l, nil, err
		}
	}
	q, err = c.Stmt(`SELECT tenant, hash, label, created, revoked FROM tokens WHERE token_id = ?`)
	if err != nil {
		return l, nil, err
	}
	for _, id := range b.Tokens {
		q.BindBlob(1, id[:])
		if q.Step() {
			t := viewrow.TokenRow{TokenID: id, Tenant: q.ColumnText(0), Label: q.ColumnText(2), Created: q.ColumnInt64(3), Revoked: q.ColumnBool(4)}
			copy(t.Hash[:], q.ColumnRawBlob(1))
			l.Tokens[id] = t
		}
		if err := q.Reset(); err != nil {
			return l, nil, err
		}
	}
	q, err = c.Stmt(`SELECT live, has_car, released_at, deleting_until FROM roots WHERE root = ?`)
	if err != nil {
		return l, nil, err
	}
	for _, k := range b.RootKeys(l) {
		q.BindText(1, k)
		if q.Step() {
			l.Roots[k] = viewrow.RootRow{Root: k, Live: q.ColumnInt64(0), HasCar: q.ColumnBool(1), ReleasedAt: q.ColumnInt64(2), DeletingUntil: q.ColumnInt64(3)}
		}
		if err := q.Reset(); err != nil {
			return l, nil, err
		}
	}
	return l, rowids, nil
}

// bindOpt binds a column that is NULL when zero.
func bindOpt(q *sqlite3.Stmt, i int, v int64) {
	if v == 0 {
		q.BindNull(i)
	} else {
		q.BindInt64(i, v)
	}
}

func bindOptText(q *sqlite3.Stmt, i int, v string) {
	if v == "" {
		q.BindNull(i)
	} else {
		q.BindText(i, v)
	}
}

func exec(q *sqlite3.Stmt) error {
	if err := q.Exec(); err != nil {
		return fmt.Errorf("%s: %w", q.SQL(), err)
	}
	return nil
}

func save(c *sqlite.Conn, ch *viewrow.Changes, rowids map[uuid.UUID]int64) error {
	insert, err := c.Stmt(`INSERT INTO pins (request_id, tenant, seq, created, cid, cid_key, name, name_fold, cid_hash, name_hash,
		list_status, hidden, phase, due_at, lease_until, failed_at, car_bytes, state, req_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	meta, err := c.Stmt(`INSERT INTO pin_meta (tenant, key, value, seq, pin) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	name, err := c.Stmt(`INSERT INTO pin_names (rowid, name_fold) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	for _, p := range ch.Pins {
		n := p.New
		if p.Old != nil {
			continue
		}
		insert.BindBlob(1, n.RequestID[:])
		insert.BindText(2, n.Tenant)
		insert.BindInt64(3, n.Seq)
		insert.BindInt64(4, n.Created)
		insert.BindText(5, n.CID)
		insert.BindText(6, n.CIDKey)
		insert.BindText(7, n.Name)
		insert.BindText(8, n.NameFold)
		insert.BindInt64(9, n.CIDHash)
		insert.BindInt64(10, n.NameHash)
		bindMutable(insert, 11, n)
		insert.BindInt64(19, reqHash(n.RequestID))
		if err := exec(insert); err != nil {
			return err
		}
		rowid := c.LastInsertRowID()
		if viewrow.TrigramSearchable(n.NameFold) {
			name.BindInt64(1, rowid)
			name.BindText(2, n.NameFold)
			if err := exec(name); err != nil {
				return err
			}
		}
		for _, m := range p.Meta {
			meta.BindText(1, m.Tenant)
			meta.BindText(2, m.Key)
			meta.BindText(3, m.Value)
			meta.BindInt64(4, m.Seq)
			meta.BindInt64(5, rowid)
			if err := exec(meta); err != nil {
				return err
			}
		}
	}
	// Only the columns that can change are set, so that SQLite leaves the
	// indexes of the others alone.
	update, err := c.Stmt(`UPDATE pins SET list_status = ?, hidden = ?, phase = ?, due_at = ?, lease_until = ?,
		failed_at = ?, car_bytes = ?, state = ? WHERE rowid = ?`)
	if err != nil {
		return err
	}
	for _, p := range ch.Pins {
		if p.Old == nil {
			continue
		}
		rowid, ok := rowids[p.New.RequestID]
		if !ok {
			return fmt.Errorf("pin %s changed but was not loaded", p.New.RequestID)
		}
		bindMutable(update, 1, p.New)
		update.BindInt64(9, rowid)
		if err := exec(update); err != nil {
			return err
		}
	}
	tenants, err := c.Stmt(`INSERT INTO tenants (tenant, last_seq, last_created) VALUES (?, ?, ?)
		ON CONFLICT (tenant) DO UPDATE SET last_seq = excluded.last_seq, last_created = excluded.last_created`)
	if err != nil {
		return err
	}
	for _, t := range ch.Tenants {
		tenants.BindText(1, t.Tenant)
		tenants.BindInt64(2, t.LastSeq)
		tenants.BindInt64(3, t.LastCreated)
		if err := exec(tenants); err != nil {
			return err
		}
	}
	if err := saveTokens(c, ch.Tokens); err != nil {
		return err
	}
	if err := saveCounters(c, ch); err != nil {
		return err
	}
	if err := saveRoots(c, ch.Roots); err != nil {
		return err
	}
	q, err := c.Stmt(`UPDATE checkpoint SET position = ? WHERE id = 1`)
	if err != nil {
		return err
	}
	q.BindInt64(1, int64(ch.Checkpoint))
	return exec(q)
}

// bindMutable binds the columns that change with the pin, from column at.
func bindMutable(q *sqlite3.Stmt, at int, n viewrow.PinColumns) {
	bindOptText(q, at, n.ListStatus)
	q.BindBool(at+1, n.Hidden)
	q.BindText(at+2, n.Phase)
	bindOpt(q, at+3, n.DueAt)
	bindOpt(q, at+4, n.LeaseUntil)
	bindOpt(q, at+5, n.FailedAt)
	q.BindInt64(at+6, n.CarBytes)
	q.BindBlob(at+7, n.State)
}

func saveTokens(c *sqlite.Conn, tokens []viewrow.TokenChange) error {
	insert, err := c.Stmt(`INSERT INTO tokens (token_id, tenant, hash, label, created, revoked) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	revoke, err := c.Stmt(`UPDATE tokens SET revoked = ? WHERE token_id = ?`)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		r := t.Row
		q := revoke
		if t.New {
			q = insert
			insert.BindBlob(1, r.TokenID[:])
			insert.BindText(2, r.Tenant)
			insert.BindBlob(3, r.Hash[:])
			insert.BindText(4, r.Label)
			insert.BindInt64(5, r.Created)
			insert.BindBool(6, r.Revoked)
		} else {
			revoke.BindBool(1, r.Revoked)
			revoke.BindBlob(2, r.TokenID[:])
		}
		if err := exec(q); err != nil {
			return err
		}
	}
	return nil
}

func saveRoots(c *sqlite.Conn, roots []viewrow.RootChange) error {
	upsert, err := c.Stmt(`INSERT INTO roots (root, live, has_car, released_at, deleting_until, gc_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (root) DO UPDATE SET live = excluded.live, has_car = excluded.has_car, released_at = excluded.released_at,
		deleting_until = excluded.deleting_until, gc_at = excluded.gc_at`)
	if err != nil {
		return err
	}
	drop, err := c.Stmt(`DELETE FROM roots WHERE root = ?`)
	if err != nil {
		return err
	}
	for _, r := range roots {
		if r.Delete {
			drop.BindText(1, r.Row.Root)
			if err := exec(drop); err != nil {
				return err
			}
			continue
		}
		upsert.BindText(1, r.Row.Root)
		upsert.BindInt64(2, r.Row.Live)
		upsert.BindBool(3, r.Row.HasCar)
		upsert.BindInt64(4, r.Row.ReleasedAt)
		upsert.BindInt64(5, r.Row.DeletingUntil)
		bindOpt(upsert, 6, r.Row.GCAt())
		if err := exec(upsert); err != nil {
			return err
		}
	}
	return nil
}

// saveCounters adds the deltas to the counters, deleting those that reach
// zero.
func saveCounters(c *sqlite.Conn, ch *viewrow.Changes) error {
	add, err := c.Stmt(`INSERT INTO tenant_blocks (tenant, status, block, n) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant, status, block) DO UPDATE SET n = n + excluded.n RETURNING n`)
	if err != nil {
		return err
	}
	drop, err := c.Stmt(`DELETE FROM tenant_blocks WHERE tenant = ? AND status = ? AND block = ?`)
	if err != nil {
		return err
	}
	for _, d := range ch.Blocks {
		for _, q := range []*sqlite3.Stmt{add, drop} {
			q.BindText(1, d.Tenant)
			q.BindText(2, d.Status)
			q.BindInt64(3, d.Block)
		}
		add.BindInt64(4, d.Delta)
		n, err := stepInt(add)
		if err != nil {
			return err
		}
		if n == 0 {
			if err := exec(drop); err != nil {
				return err
			}
		}
	}
	addMeta, err := c.Stmt(`INSERT INTO meta_blocks (tenant, key, value, status, block, n) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, key, value, status, block) DO UPDATE SET n = n + excluded.n RETURNING n`)
	if err != nil {
		return err
	}
	dropMeta, err := c.Stmt(`DELETE FROM meta_blocks WHERE tenant = ? AND key = ? AND value = ? AND status = ? AND block = ?`)
	if err != nil {
		return err
	}
	for _, d := range ch.MetaBlocks {
		for _, q := range []*sqlite3.Stmt{addMeta, dropMeta} {
			q.BindText(1, d.Tenant)
			q.BindText(2, d.Key)
			q.BindText(3, d.Value)
			q.BindText(4, d.Status)
			q.BindInt64(5, d.Block)
		}
		addMeta.BindInt64(6, d.Delta)
		n, err := stepInt(addMeta)
		if err != nil {
			return err
		}
		if n == 0 {
			if err := exec(dropMeta); err != nil {
				return err
			}
		}
	}
	addTotal, err := c.Stmt(`INSERT INTO totals (name, n) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET n = n + excluded.n RETURNING n`)
	if err != nil {
		return err
	}
	dropTotal, err := c.Stmt(`DELETE FROM totals WHERE name = ?`)
	if err != nil {
		return err
	}
	for _, d := range ch.Totals {
		addTotal.BindText(1, d.Name)
		addTotal.BindInt64(2, d.Delta)
		n, err := stepInt(addTotal)
		if err != nil {
			return err
		}
		if n == 0 {
			dropTotal.BindText(1, d.Name)
			if err := exec(dropTotal); err != nil {
				return err
			}
		}
	}
	return nil
}

// stepInt runs a statement returning one integer.
func stepInt(q *sqlite3.Stmt) (int64, error) {
	if !q.Step() {
		if err := q.Err(); err != nil {
			return 0, fmt.Errorf("%s: %w", q.SQL(), err)
		}
		return 0, fmt.Errorf("%s: no row", q.SQL())
	}
	n := q.ColumnInt64(0)
	// Step to the end, so that the statement completes.
	for q.Step() {
	}
	if err := q.Err(); err != nil {
		return 0, err
	}
	return n, q.Reset()
}

// Reset empties the views and sets the checkpoint back to zero, in one
// transaction: the next Apply starts a rebuild.
func (s *Store) Reset(ctx context.Context) error {
	err := s.write(ctx, func(c *sqlite.Conn) error {
		return c.Exec(`DELETE FROM pins; DELETE FROM pin_meta; DELETE FROM tenants; DELETE FROM tenant_blocks; DELETE FROM meta_blocks;
			DELETE FROM totals; DELETE FROM tokens; DELETE FROM roots; INSERT INTO pin_names (pin_names) VALUES ('delete-all'); UPDATE checkpoint SET position = 0 WHERE id = 1`)
	})
	if err != nil {
		return fmt.Errorf("reset views: %w", err)
	}
	return nil
}
