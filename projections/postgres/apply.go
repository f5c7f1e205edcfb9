package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
)

// Apply implements projections.Applier: a batch of the events that follow
// position after is applied in one transaction with the new checkpoint. Events at or
// before the stored checkpoint are left out, so a batch applied twice, or
// by two runners at once, counts once.
func (s *Store) Apply(ctx context.Context, after eventlog.Position, batch *viewrow.Batch) (projections.Applied, error) {
	var out projections.Applied
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The lock makes concurrent runners take turns; the one that waited
		// sees the other's checkpoint.
		var cp int64
		if err := tx.QueryRow(ctx, `SELECT position FROM pickup_views.checkpoint WHERE id = 1 FOR UPDATE`).Scan(&cp); err != nil {
			return fmt.Errorf("read checkpoint: %w", err)
		}
		if eventlog.Position(cp) < after {
			return fmt.Errorf("%w: checkpoint %d, events after %d", projections.ErrCheckpointMoved, cp, after)
		}
		out.Checkpoint = eventlog.Position(cp)
		b := batch.Since(eventlog.Position(cp))
		if b.Len() == 0 {
			return nil
		}
		loaded, err := load(ctx, tx, b)
		if err != nil {
			return err
		}
		ch, err := b.Project(loaded)
		if err != nil {
			return err
		}
		if err := save(ctx, tx, ch); err != nil {
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

func uuidStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

const pinColumns = `state, seq, created, hidden`

// scanPin reads the pinColumns of a row.
func scanPin(row pgx.Row) (viewrow.PinRow, error) {
	var state []byte
	var seq, created int64
	var hidden bool
	if err := row.Scan(&state, &seq, &created, &hidden); err != nil {
		return viewrow.PinRow{}, err
	}
	return viewrow.DecodePinRow(state, seq, created, hidden)
}

func load(ctx context.Context, tx pgx.Tx, b *viewrow.Batch) (viewrow.Loaded, error) {
	l := viewrow.NewLoaded()
	if len(b.Pins) > 0 {
		rows, err := tx.Query(ctx, `SELECT request_id, `+pinColumns+` FROM pickup_views.pins WHERE request_id = ANY($1::uuid[])`, uuidStrings(b.Pins))
		if err != nil {
			return l, fmt.Errorf("load pins: %w", err)
		}
		for rows.Next() {
			var id [16]byte
			var state []byte
			var seq, created int64
			var hidden bool
			if err := rows.Scan(&id, &state, &seq, &created, &hidden); err != nil {
				rows.Close()
				return l, fmt.Errorf("load pins: %w", err)
			}
			r, err := viewrow.DecodePinRow(state, seq, created, hidden)
			if err != nil {
				rows.Close()
				return l, fmt.Errorf("pin %s: %w", uuid.UUID(id), err)
			}
			l.Pins[id] = r
		}
		if err := rows.Err(); err != nil {
			return l, fmt.Errorf("load pins: %w", err)
		}
	}
	if len(b.Tenants) > 0 {
		rows, err := tx.Query(ctx, `SELECT tenant, last_seq, last_created FROM pickup_views.tenants WHERE tenant = ANY($1)`, b.Tenants)
		if err != nil {
			return l, fmt.Errorf("load tenants: %w", err)
		}
		for rows.Next() {
			var t viewrow.TenantRow
			if err := rows.Scan(&t.Tenant, &t.LastSeq, &t.LastCreated); err != nil {
				rows.Close()
				return l, fmt.Errorf("load tenants: %w", err)
			}
			l.Tenants[t.Tenant] = t
		}
		if err := rows.Err(); err != nil {
			return l, fmt.Errorf("load tenants: %w", err)
		}
	}
	if len(b.Tokens) > 0 {
		rows, err := tx.Query(ctx, `SELECT token_id, tenant, hash, label, created, revoked FROM pickup_views.tokens WHERE token_id = ANY($1::uuid[])`, uuidStrings(b.Tokens))
		if err != nil {
			return l, fmt.Errorf("load tokens: %w", err)
		}
		for rows.Next() {
			var t viewrow.TokenRow
			var id [16]byte
			var hash []byte
			if err := rows.Scan(&id, &t.Tenant, &hash, &t.Label, &t.Created, &t.Revoked); err != nil {
				rows.Close()
				return l, fmt.Errorf("load tokens: %w", err)
			}
			t.TokenID = id
			copy(t.Hash[:], hash)
			l.Tokens[t.TokenID] = t
		}
		if err := rows.Err(); err != nil {
			return l, fmt.Errorf("load tokens: %w", err)
		}
	}
	if keys := b.RootKeys(l); len(keys) > 0 {
		rows, err := tx.Query(ctx, `SELECT root, live, has_car, released_at, deleting_until FROM pickup_views.roots WHERE root = ANY($1)`, keys)
		if err != nil {
			return l, fmt.Errorf("load roots: %w", err)
		}
		for rows.Next() {
			var r viewrow.RootRow
			if err := rows.Scan(&r.Root, &r.Live, &r.HasCar, &r.ReleasedAt, &r.DeletingUntil); err != nil {
				rows.Close()
				return l, fmt.Errorf("load roots: %w", err)
			}
			l.Roots[r.Root] = r
		}
		if err := rows.Err(); err != nil {
			return l, fmt.Errorf("load roots: %w", err)
		}
	}
	return l, nil
}

// opt is a column that is NULL when zero.
func opt[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

// save writes the changes with one statement per table (rows passed as
// arrays and unnested), sent in one round trip.
func save(ctx context.Context, tx pgx.Tx, ch *viewrow.Changes) error {
	var batch pgx.Batch
	var ins, upd struct {
		id                                  []string
		tenant, cid, cidKey, name, nameFold []string
		seq, created                        []int64
		status                              []*string
		hidden                              []bool
		due, lease, failed                  []*int64
		carBytes                            []int64
		state                               [][]byte
		phaseText                           []string
	}
	var meta struct {
		tenant, key, value []string
		seq                []int64
	}
	for _, p := range ch.Pins {
		n := p.New
		c := &upd
		if p.Old == nil {
			c = &ins
			c.tenant = append(c.tenant, n.Tenant)
			c.seq = append(c.seq, n.Seq)
			c.created = append(c.created, n.Created)
			c.cid = append(c.cid, n.CID)
			c.cidKey = append(c.cidKey, n.CIDKey)
			c.name = append(c.name, n.Name)
			c.nameFold = append(c.nameFold, n.NameFold)
		}
		c.id = append(c.id, n.RequestID.String())
		c.status = append(c.status, opt(n.ListStatus))
		c.hidden = append(c.hidden, n.Hidden)
		c.phaseText = append(c.phaseText, n.Phase)
		c.due = append(c.due, opt(n.DueAt))
		c.lease = append(c.lease, opt(n.LeaseUntil))
		c.failed = append(c.failed, opt(n.FailedAt))
		c.carBytes = append(c.carBytes, n.CarBytes)
		c.state = append(c.state, n.State)
		for _, m := range p.Meta {
			meta.tenant = append(meta.tenant, m.Tenant)
			meta.key = append(meta.key, m.Key)
			meta.value = append(meta.value, m.Value)
			meta.seq = append(meta.seq, m.Seq)
		}
	}
	if len(ins.id) > 0 {
		batch.Queue(`INSERT INTO pickup_views.pins (request_id, tenant, seq, created, cid, cid_key, name, name_fold,
			list_status, hidden, phase, due_at, lease_until, failed_at, car_bytes, state)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
				$9::text[], $10::boolean[], $11::text[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bytea[])`,
			ins.id, ins.tenant, ins.seq, ins.created, ins.cid, ins.cidKey, ins.name, ins.nameFold,
			ins.status, ins.hidden, ins.phaseText, ins.due, ins.lease, ins.failed, ins.carBytes, ins.state)
	}
	if len(upd.id) > 0 {
		batch.Queue(`UPDATE pickup_views.pins p SET list_status = u.list_status, hidden = u.hidden, phase = u.phase, due_at = u.due_at,
			lease_until = u.lease_until, failed_at = u.failed_at, car_bytes = u.car_bytes, state = u.state
			FROM unnest($1::uuid[], $2::text[], $3::boolean[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bytea[])
				AS u(request_id, list_status, hidden, phase, due_at, lease_until, failed_at, car_bytes, state)
			WHERE p.request_id = u.request_id`,
			upd.id, upd.status, upd.hidden, upd.phaseText, upd.due, upd.lease, upd.failed, upd.carBytes, upd.state)
	}
	if len(meta.seq) > 0 {
		batch.Queue(`INSERT INTO pickup_views.pin_meta (tenant, key, value, seq) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])`,
			meta.tenant, meta.key, meta.value, meta.seq)
	}
	if len(ch.Tenants) > 0 {
		var names []string
		var seqs, created []int64
		for _, t := range ch.Tenants {
			names, seqs, created = append(names, t.Tenant), append(seqs, t.LastSeq), append(created, t.LastCreated)
		}
		batch.Queue(`INSERT INTO pickup_views.tenants (tenant, last_seq, last_created) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
			ON CONFLICT (tenant) DO UPDATE SET last_seq = excluded.last_seq, last_created = excluded.last_created`, names, seqs, created)
	}
	queueTokens(&batch, ch.Tokens)
	queueCounters(&batch, ch)
	queueRoots(&batch, ch.Roots)
	batch.Queue(`UPDATE pickup_views.checkpoint SET position = $1 WHERE id = 1`, int64(ch.Checkpoint))
	if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
		return fmt.Errorf("save views: %w", err)
	}
	return nil
}

func queueTokens(batch *pgx.Batch, tokens []viewrow.TokenChange) {
	var ins struct {
		id, tenant, label []string
		hash              [][]byte
		created           []int64
		revoked           []bool
	}
	var revoked []string
	for _, t := range tokens {
		r := t.Row
		if !t.New {
			if r.Revoked {
				revoked = append(revoked, r.TokenID.String())
			}
			continue
		}
		ins.id = append(ins.id, r.TokenID.String())
		ins.tenant = append(ins.tenant, r.Tenant)
		ins.hash = append(ins.hash, r.Hash[:])
		ins.label = append(ins.label, r.Label)
		ins.created = append(ins.created, r.Created)
		ins.revoked = append(ins.revoked, r.Revoked)
	}
	if len(ins.id) > 0 {
		batch.Queue(`INSERT INTO pickup_views.tokens (token_id, tenant, hash, label, created, revoked)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::boolean[])`,
			ins.id, ins.tenant, ins.hash, ins.label, ins.created, ins.revoked)
	}
	if len(revoked) > 0 {
		batch.Queue(`UPDATE pickup_views.tokens SET revoked = true WHERE token_id = ANY($1::uuid[])`, revoked)
	}
}

func queueRoots(batch *pgx.Batch, roots []viewrow.RootChange) {
	var up struct {
		root                     []string
		live, released, deleting []int64
		hasCar                   []bool
		gcAt                     []*int64
	}
	var drop []string
	for _, r := range roots {
		if r.Delete {
			drop = append(drop, r.Row.Root)
			continue
		}
		up.root = append(up.root, r.Row.Root)
		up.live = append(up.live, r.Row.Live)
		up.hasCar = append(up.hasCar, r.Row.HasCar)
		up.released = append(up.released, r.Row.ReleasedAt)
		up.deleting = append(up.deleting, r.Row.DeletingUntil)
		up.gcAt = append(up.gcAt, opt(r.Row.GCAt()))
	}
	if len(up.root) > 0 {
		batch.Queue(`INSERT INTO pickup_views.roots (root, live, has_car, released_at, deleting_until, gc_at)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::boolean[], $4::bigint[], $5::bigint[], $6::bigint[])
			ON CONFLICT (root) DO UPDATE SET live = excluded.live, has_car = excluded.has_car, released_at = excluded.released_at,
			deleting_until = excluded.deleting_until, gc_at = excluded.gc_at`,
			up.root, up.live, up.hasCar, up.released, up.deleting, up.gcAt)
	}
	if len(drop) > 0 {
		batch.Queue(`DELETE FROM pickup_views.roots WHERE root = ANY($1)`, drop)
	}
}

// queueCounters adds the deltas to the counters, then deletes those that
// reached zero.
func queueCounters(batch *pgx.Batch, ch *viewrow.Changes) {
	if len(ch.Blocks) > 0 {
		var tenants, statuses []string
		var blocks, deltas []int64
		for _, d := range ch.Blocks {
			tenants, statuses = append(tenants, d.Tenant), append(statuses, d.Status)
			blocks, deltas = append(blocks, d.Block), append(deltas, d.Delta)
		}
		batch.Queue(`INSERT INTO pickup_views.tenant_blocks (tenant, status, block, n) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
			ON CONFLICT (tenant, status, block) DO UPDATE SET n = tenant_blocks.n + excluded.n`, tenants, statuses, blocks, deltas)
		batch.Queue(`DELETE FROM pickup_views.tenant_blocks b USING unnest($1::text[], $2::text[], $3::bigint[]) AS u(tenant, status, block)
			WHERE b.tenant = u.tenant AND b.status = u.status AND b.block = u.block AND b.n = 0`, tenants, statuses, blocks)
	}
	if len(ch.MetaBlocks) > 0 {
		var tenants, keys, values, statuses []string
		var blocks, deltas []int64
		for _, d := range ch.MetaBlocks {
			tenants, keys, values, statuses = append(tenants, d.Tenant), append(keys, d.Key), append(values, d.Value), append(statuses, d.Status)
			blocks, deltas = append(blocks, d.Block), append(deltas, d.Delta)
		}
		batch.Queue(`INSERT INTO pickup_views.meta_blocks (tenant, key, value, status, block, n)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
			ON CONFLICT (tenant, key, value, status, block) DO UPDATE SET n = meta_blocks.n + excluded.n`, tenants, keys, values, statuses, blocks, deltas)
		batch.Queue(`DELETE FROM pickup_views.meta_blocks b USING unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS u(tenant, key, value, status, block)
			WHERE b.tenant = u.tenant AND b.key = u.key AND b.value = u.value AND b.status = u.status AND b.block = u.block AND b.n = 0`,
			tenants, keys, values, statuses, blocks)
	}
	if len(ch.Totals) > 0 {
		var names []string
		var deltas []int64
		for _, d := range ch.Totals {
			names, deltas = append(names, d.Name), append(deltas, d.Delta)
		}
		batch.Queue(`INSERT INTO pickup_views.totals (name, n) SELECT * FROM unnest($1::text[], $2::bigint[])
			ON CONFLICT (name) DO UPDATE SET n = totals.n + excluded.n`, names, deltas)
		batch.Queue(`DELETE FROM pickup_views.totals t USING unnest($1::text[]) AS u(name) WHERE t.name = u.name AND t.n = 0`, names)
	}
}

// Reset empties the views and sets the checkpoint back to zero, in one
// transaction: the next Apply starts a rebuild.
func (s *Store) Reset(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `TRUNCATE pickup_views.pins, pickup_views.pin_meta, pickup_views.tenants, pickup_views.tenant_blocks, pickup_views.meta_blocks, pickup_views.totals, pickup_views.tokens, pickup_views.roots; UPDATE pickup_views.checkpoint SET position = 0 WHERE id = 1`)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset views: %w", err)
	}
	return nil
}
