package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/views"
)

var _ views.Reader = (*Store)(nil)

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// query is SQL with its arguments, built up a condition at a time; "?" in
// the pieces becomes $1, $2, ...
type query struct {
	sql  strings.Builder
	args []any
	// planEach makes PostgreSQL plan the query for its arguments every
	// time, not once for any (see planForValues).
	planEach bool
}

// planForValues has the query planned for its arguments' values each time
// it runs. A prepared statement, pgx's default, gets a generic plan after a
// few runs, and a generic plan cannot tell a rare LIKE pattern from a
// common one: for a rare substring of names over a million pins it walked
// the tenant's status index, 83 ms, where the trigram index takes 4 to 6.
func (q *query) planForValues() *query {
	q.planEach = true
	return q
}

// execArgs is what the query runs with: its arguments, behind pgx's
// unprepared mode when it is to be planned each time.
func (q *query) execArgs() []any {
	if !q.planEach {
		return q.args
	}
	return append([]any{pgx.QueryExecModeExec}, q.args...)
}

func (q *query) add(sql string, args ...any) *query {
	for _, part := range strings.SplitAfter(sql, "?") {
		if p, ok := strings.CutSuffix(part, "?"); ok {
			q.sql.WriteString(p)
			q.args = append(q.args, args[0])
			args = args[1:]
			q.sql.WriteString("$" + strconv.Itoa(len(q.args)))
		} else {
			q.sql.WriteString(part)
		}
	}
	return q
}

func sel(from string, args ...any) *query {
	return (&query{}).add(`SELECT `+pinColumns+` FROM `+from, args...)
}

func (q *query) rows(ctx context.Context, db querier) ([]viewrow.PinRow, error) {
	rows, err := db.Query(ctx, q.sql.String(), q.execArgs()...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []viewrow.PinRow
	for rows.Next() {
		r, err := scanPin(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (q *query) one(ctx context.Context, db querier) (viewrow.PinRow, error) {
	rows, err := q.rows(ctx, db)
	if err != nil {
		return viewrow.PinRow{}, err
	}
	if len(rows) == 0 {
		return viewrow.PinRow{}, views.ErrNotFound
	}
	return rows[0], nil
}

// int runs a query returning one integer (0 for NULL).
func (q *query) int(ctx context.Context, db querier) (int64, error) {
	var n *int64
	err := db.QueryRow(ctx, q.sql.String(), q.execArgs()...).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil || n == nil {
		return 0, err
	}
	return *n, nil
}

func (q *query) ints(ctx context.Context, db querier) ([]int64, error) {
	rows, err := db.Query(ctx, q.sql.String(), q.execArgs()...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// Pin implements views.Reader.
func (s *Store) Pin(ctx context.Context, tenant string, requestID uuid.UUID) (views.Pin, error) {
	r, err := sel(`pickup_views.pins WHERE request_id = ?`, requestID.String()).one(ctx, s.pool)
	if err == nil && (r.State.Request.Tenant != tenant || r.Hidden || r.State.Removed) {
		err = views.ErrNotFound
	}
	if err != nil {
		return views.Pin{}, fmt.Errorf("pin %s: %w", requestID, err)
	}
	return r.View(), nil
}

// NewestByCID implements views.Reader.
func (s *Store) NewestByCID(ctx context.Context, tenant, canonicalCID string) (views.Pin, error) {
	r, err := sel(`pickup_views.pins WHERE tenant = ? AND cid_key = ? ORDER BY seq DESC LIMIT 1`, viewrow.TextOf(tenant), viewrow.TextOf(canonicalCID)).one(ctx, s.pool)
	if err != nil {
		return views.Pin{}, fmt.Errorf("newest request of %s: %w", canonicalCID, err)
	}
	return r.View(), nil
}

// TokenTenant implements views.Reader.
func (s *Store) TokenTenant(ctx context.Context, hash [32]byte) (string, error) {
	var tenant string
	err := s.pool.QueryRow(ctx, `SELECT tenant FROM pickup_views.tokens WHERE hash = $1 AND NOT revoked ORDER BY created, token_id LIMIT 1`, hash[:]).Scan(&tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		err = views.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return tenant, nil
}

// Tokens returns the tenant's tokens (every tenant's for ""), oldest first.
func (s *Store) Tokens(ctx context.Context, tenant string) ([]views.TokenInfo, error) {
	q := (&query{}).add(`SELECT token_id, tenant, label, created, revoked FROM pickup_views.tokens`)
	if tenant != "" {
		q.add(` WHERE tenant = ?`, viewrow.TextOf(tenant))
	}
	q.add(` ORDER BY created, token_id`)
	rows, err := s.pool.Query(ctx, q.sql.String(), q.execArgs()...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (views.TokenInfo, error) {
		var t views.TokenInfo
		var id [16]byte
		var created int64
		err := row.Scan(&id, &t.Tenant, &t.Label, &created, &t.Revoked)
		t.ID, t.Created = id, viewrow.TimeOf(created)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// Checkpoint implements views.Reader and projections.Applier.
func (s *Store) Checkpoint(ctx context.Context) (eventlog.Position, error) {
	var cp int64
	if err := s.pool.QueryRow(ctx, `SELECT position FROM pickup_views.checkpoint WHERE id = 1`).Scan(&cp); err != nil {
		return 0, fmt.Errorf("read views checkpoint: %w", err)
	}
	return eventlog.Position(cp), nil
}

// List implements views.Reader.
func (s *Store) List(ctx context.Context, lq views.ListQuery) (views.ListResult, error) {
	p, err := viewrow.PlanList(lq)
	if err != nil {
		return views.ListResult{}, err
	}
	var res views.ListResult
	err = s.snapshot(ctx, func(tx pgx.Tx) error {
		lo, hi, err := seqBounds(ctx, tx, p)
		if err != nil || hi <= lo+1 {
			return err
		}
		var rows []viewrow.PinRow
		var count int64
		if p.Driver == viewrow.DriveStatus {
			rows, count, err = listByStatus(ctx, tx, p, lo, hi)
		} else {
			rows, count, err = listByIndex(ctx, tx, p, lo, hi)
		}
		res = views.ListResult{Count: int(count), Pins: viewrow.Views(rows)}
		return err
	})
	if err != nil {
		return views.ListResult{}, fmt.Errorf("list pins of %s: %w", lq.Tenant, err)
	}
	return res, nil
}

// seqBounds turns the created bounds into Seq bounds, lo < seq < hi: Seq
// and Created grow together within a tenant.
func seqBounds(ctx context.Context, db querier, p viewrow.ListPlan) (lo, hi int64, err error) {
	hi = viewrow.NoSeq
	if p.Before != 0 {
		n, err := (&query{}).add(`SELECT seq FROM pickup_views.pins WHERE tenant = ? AND created >= ? ORDER BY created LIMIT 1`, p.Tenant, p.Before).int(ctx, db)
		if err != nil {
			return 0, 0, err
		}
		if n > 0 {
			hi = n
		}
	}
	if p.After != 0 {
		if lo, err = (&query{}).add(`SELECT seq FROM pickup_views.pins WHERE tenant = ? AND created <= ? ORDER BY created DESC LIMIT 1`, p.Tenant, p.After).int(ctx, db); err != nil {
			return 0, 0, err
		}
	}
	return lo, hi, nil
}

// likeEscaper escapes LIKE's wildcards (and its escape character), so
// that a pattern matches the text literally.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func nameFilter(q *query, p viewrow.ListPlan) {
	if p.Name == "" {
		return
	}
	col := "p.name"
	if p.NameFold {
		col = "p.name_fold"
	}
	if p.NameContains {
		q.add(` AND strpos(`+col+`, ?) > 0`, p.Name)
	} else {
		q.add(` AND `+col+` = ?`, p.Name)
	}
}

func statusFilter(q *query, p viewrow.ListPlan) {
	if p.AllStatuses {
		q.add(` AND p.list_status IS NOT NULL`)
	} else {
		q.add(` AND p.list_status = ANY(?)`, p.Statuses)
	}
}

func metaFilter(q *query, meta []viewrow.MetaRow) {
	for _, m := range meta {
		q.add(` AND EXISTS (SELECT 1 FROM pickup_views.pin_meta x WHERE x.tenant = p.tenant AND x.key = ? AND x.value = ? AND x.seq = p.seq)`, m.Key, m.Value)
	}
}

// listByStatus walks the status index newest first, one status at a time,
// taking only Seq, then reads the rows of the page; it counts from the
// block counters.
func listByStatus(ctx context.Context, db querier, p viewrow.ListPlan, lo, hi int64) ([]viewrow.PinRow, int64, error) {
	var seqs [][]int64
	var scanned int64 = -1
	if p.Counted() {
		for _, st := range p.Statuses {
			q := (&query{}).add(`SELECT p.seq FROM pickup_views.pins p WHERE p.tenant = ? AND p.list_status = ? AND p.seq > ? AND p.seq < ?`, p.Tenant, st, lo, hi)
			q.add(` ORDER BY p.seq DESC LIMIT ?`, p.Limit)
			l, err := q.ints(ctx, db)
			if err != nil {
				return nil, 0, err
			}
			seqs = append(seqs, l)
		}
	} else {
		// A substring of the name: every match is found, for the count
		// and the page alike; through the trigram index of folded names
		// when the substring has a trigram (then the name itself is
		// checked), otherwise in one pass over the tenant's pins.
		q := (&query{}).add(`SELECT p.seq FROM pickup_views.pins p WHERE p.tenant = ? AND p.list_status = ANY(?) AND p.seq > ? AND p.seq < ?`, p.Tenant, p.Statuses, lo, hi)
		if viewrow.TrigramSearchable(p.NameKey) {
			q.add(` AND p.name_fold LIKE ?`, "%"+likeEscaper.Replace(p.NameKey)+"%").planForValues()
		}
		nameFilter(q, p)
		l, err := q.ints(ctx, db)
		if err != nil {
			return nil, 0, err
		}
		seqs = append(seqs, l)
		scanned = int64(len(l))
	}
	page := viewrow.NewestSeqs(p.Limit, seqs...)
	var rows []viewrow.PinRow
	if len(page) > 0 {
		var err error
		if rows, err = sel(`pickup_views.pins WHERE tenant = ? AND seq = ANY(?) ORDER BY seq DESC`, p.Tenant, page).rows(ctx, db); err != nil {
			return nil, 0, err
		}
	}
	if scanned >= 0 {
		return rows, scanned, nil
	}
	n, err := viewrow.CountBetween(lo, hi,
		func(below int64) (int64, error) {
			q := (&query{}).add(`SELECT sum(n)::bigint FROM pickup_views.tenant_blocks WHERE tenant = ? AND status = ANY(?)`, p.Tenant, p.Statuses)
			if below != viewrow.NoSeq {
				q.add(` AND block < ?`, below)
			}
			return q.int(ctx, db)
		},
		func(from, to int64) (int64, error) {
			return (&query{}).add(`SELECT count(*) FROM pickup_views.pins WHERE tenant = ? AND list_status = ANY(?) AND seq >= ? AND seq < ?`,
				p.Tenant, p.Statuses, from, to).int(ctx, db)
		})
	return rows, n, err
}

// listByIndex walks the index of the plan's driver, filtering the rest,
// and counts the matches on the same index.
func listByIndex(ctx context.Context, db querier, p viewrow.ListPlan, lo, hi int64) ([]viewrow.PinRow, int64, error) {
	build := func(head string) *query {
		q := (&query{}).add(head)
		meta := p.Meta
		switch p.Driver {
		case viewrow.DriveCID:
			q.add(` FROM pickup_views.pins p WHERE p.tenant = ? AND p.cid_key = ANY(?) AND p.seq > ? AND p.seq < ?`, p.Tenant, p.CIDKeys, lo, hi)
		case viewrow.DriveName:
			// Exact names too walk the folded-name index: a name's fold
			// is the index key, the name itself the filter.
			q.add(` FROM pickup_views.pins p WHERE p.tenant = ? AND p.name_fold = ? AND p.seq > ? AND p.seq < ?`, p.Tenant, p.NameKey, lo, hi)
		case viewrow.DriveMeta:
			m := meta[0]
			meta = meta[1:]
			q.add(` FROM pickup_views.pin_meta m JOIN pickup_views.pins p ON p.tenant = m.tenant AND p.seq = m.seq
				WHERE m.tenant = ? AND m.key = ? AND m.value = ? AND m.seq > ? AND m.seq < ?`, p.Tenant, m.Key, m.Value, lo, hi)
		}
		nameFilter(q, p)
		statusFilter(q, p)
		metaFilter(q, meta)
		return q
	}
	q := build(`SELECT p.state, p.seq, p.created, p.hidden`)
	if p.Driver == viewrow.DriveMeta {
		// The meta index's order, so that the walk stops at the page.
		q.add(` ORDER BY m.seq DESC LIMIT ?`, p.Limit)
	} else {
		q.add(` ORDER BY p.seq DESC LIMIT ?`, p.Limit)
	}
	rows, err := q.rows(ctx, db)
	if err != nil {
		return nil, 0, err
	}
	if p.CountedByMeta() {
		m := p.Meta[0]
		n, err := viewrow.CountBetween(lo, hi,
			func(below int64) (int64, error) {
				q := (&query{}).add(`SELECT sum(n)::bigint FROM pickup_views.meta_blocks WHERE tenant = ? AND key = ? AND value = ? AND status = ANY(?)`,
					p.Tenant, m.Key, m.Value, p.Statuses)
				if below != viewrow.NoSeq {
					q.add(` AND block < ?`, below)
				}
				return q.int(ctx, db)
			},
			func(from, to int64) (int64, error) {
				q := (&query{}).add(`SELECT count(*) FROM pickup_views.pin_meta m JOIN pickup_views.pins p ON p.tenant = m.tenant AND p.seq = m.seq
					WHERE m.tenant = ? AND m.key = ? AND m.value = ? AND m.seq >= ? AND m.seq < ?`, p.Tenant, m.Key, m.Value, from, to)
				statusFilter(q, p)
				return q.int(ctx, db)
			})
		return rows, n, err
	}
	n, err := build(`SELECT count(*)`).int(ctx, db)
	return rows, n, err
}

// DueForClaim returns visible queued pins due at now, longest waiting
// first: what fetchers claim. It offers one request per root at a time,
// the longest waiting, and none for a root whose DAG a claimed attempt is
// fetching (see the embedded store's DueForClaim).
func (s *Store) DueForClaim(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error) {
	rows, err := sel(`pickup_views.pins AS p WHERE p.due_at <= ?
		AND NOT EXISTS (SELECT 1 FROM pickup_views.pins AS c WHERE c.cid_key = p.cid_key AND c.lease_until IS NOT NULL)
		AND NOT EXISTS (SELECT 1 FROM pickup_views.pins AS o WHERE o.cid_key = p.cid_key AND o.due_at IS NOT NULL
			AND (o.due_at < p.due_at OR (o.due_at = p.due_at AND o.request_id < p.request_id)))
		ORDER BY p.due_at LIMIT ?`, viewrow.MicrosOf(now), limit).rows(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("pins due for a claim: %w", err)
	}
	return viewrow.IDs(rows), nil
}

// Claimable reports whether the pin is one DueForClaim offers at now: a
// visible queued pin, due, the longest waiting of its root, whose root no
// claimed attempt is fetching. A fetcher told of a new request or a due
// retry by the log asks it, once the views have taken that event in, so
// that a root is fetched once however many ask for it.
func (s *Store) Claimable(ctx context.Context, requestID uuid.UUID, now time.Time) (bool, error) {
	rows, err := sel(`pickup_views.pins AS p WHERE p.request_id = ? AND p.due_at <= ?
		AND NOT EXISTS (SELECT 1 FROM pickup_views.pins AS c WHERE c.cid_key = p.cid_key AND c.lease_until IS NOT NULL)
		AND NOT EXISTS (SELECT 1 FROM pickup_views.pins AS o WHERE o.cid_key = p.cid_key AND o.due_at IS NOT NULL
			AND (o.due_at < p.due_at OR (o.due_at = p.due_at AND o.request_id < p.request_id)))`,
		requestID.String(), viewrow.MicrosOf(now)).rows(ctx, s.pool)
	if err != nil {
		return false, fmt.Errorf("is %s claimable: %w", requestID, err)
	}
	return len(rows) == 1, nil
}

// Overdue returns visible pins whose watchdog deadline (lease end, or due
// time plus queueTimeout, see pin.State.Deadline) passed before now,
// soonest deadline first.
func (s *Store) Overdue(ctx context.Context, now time.Time, queueTimeout time.Duration, limit int) ([]uuid.UUID, error) {
	leases, err := sel(`pickup_views.pins WHERE lease_until < ? ORDER BY lease_until LIMIT ?`, viewrow.MicrosOf(now), limit).rows(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("overdue pins: %w", err)
	}
	var queued []viewrow.PinRow
	if queueTimeout > 0 {
		queued, err = sel(`pickup_views.pins WHERE due_at < ? ORDER BY due_at LIMIT ?`, viewrow.MicrosOf(now.Add(-queueTimeout)), limit).rows(ctx, s.pool)
		if err != nil {
			return nil, fmt.Errorf("overdue pins: %w", err)
		}
	}
	return viewrow.MergeOverdue(leases, queued, queueTimeout, limit), nil
}

// AwaitingDecision returns visible pins whose attempt failed and that wait
// for the retry decider, oldest failure first.
func (s *Store) AwaitingDecision(ctx context.Context, limit int) ([]uuid.UUID, error) {
	rows, err := sel(`pickup_views.pins WHERE failed_at IS NOT NULL ORDER BY failed_at LIMIT ?`, limit).rows(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("pins awaiting a retry decision: %w", err)
	}
	return viewrow.IDs(rows), nil
}

// CarForRoot returns the CAR CID of a visible pinned request for the root
// (in canonical form), from any tenant, and false when there is none.
func (s *Store) CarForRoot(ctx context.Context, canonicalCID string) (string, bool, error) {
	r, err := sel(`pickup_views.pins WHERE list_status = 'pinned' AND cid_key = ? LIMIT 1`, viewrow.TextOf(canonicalCID)).one(ctx, s.pool)
	if err != nil {
		if errors.Is(err, views.ErrNotFound) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("car for %s: %w", canonicalCID, err)
	}
	return r.State.Car.CarCID, true, nil
}

// Root returns the roots view's row of a root (in canonical form), or
// ErrNotFound when the views hold none: no live pin, no CAR.
func (s *Store) Root(ctx context.Context, canonicalRoot string) (views.Root, error) {
	r := viewrow.RootRow{Root: viewrow.TextOf(canonicalRoot)}
	err := s.pool.QueryRow(ctx, `SELECT live, has_car, released_at, deleting_until FROM pickup_views.roots WHERE root = $1`, r.Root).
		Scan(&r.Live, &r.HasCar, &r.ReleasedAt, &r.DeletingUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		err = views.ErrNotFound
	}
	if err != nil {
		return views.Root{}, fmt.Errorf("root %s: %w", canonicalRoot, err)
	}
	return r.View(), nil
}

// RootReleased reports whether the root (in canonical form) has a CAR in
// the carpark that no live pin holds, released before before.
func (s *Store) RootReleased(ctx context.Context, canonicalRoot string, before time.Time) (bool, error) {
	r, err := s.Root(ctx, canonicalRoot)
	if errors.Is(err, views.ErrNotFound) {
		return false, nil
	}
	return r.ReleasedBefore(before), err
}

// ReleasedRoots returns up to limit roots (canonical) for the garbage
// collector: first those whose deletion is decided and not recorded done
// (its actor may have died: any collector finishes it), then those with a
// CAR in the carpark, no live pin, released before before, longest
// released first.
func (s *Store) ReleasedRoots(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT root FROM pickup_views.roots WHERE gc_at IS NOT NULL AND gc_at < $1 ORDER BY gc_at, root LIMIT $2`,
		viewrow.MicrosOf(before), limit)
	if err != nil {
		return nil, fmt.Errorf("released roots: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("released roots: %w", err)
	}
	return out, nil
}

// Figures returns the views' totals at now.
func (s *Store) Figures(ctx context.Context, now time.Time) (projections.Figures, error) {
	var f projections.Figures
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		var cp int64
		if err := tx.QueryRow(ctx, `SELECT position FROM pickup_views.checkpoint WHERE id = 1`).Scan(&cp); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT name, n FROM pickup_views.totals`)
		if err != nil {
			return err
		}
		totals := map[string]int64{}
		for rows.Next() {
			var name string
			var n int64
			if err := rows.Scan(&name, &n); err != nil {
				rows.Close()
				return err
			}
			totals[name] = n
		}
		if err := rows.Err(); err != nil {
			return err
		}
		us := viewrow.MicrosOf(now)
		later, err := (&query{}).add(`SELECT count(*) FROM pickup_views.pins WHERE due_at > ?`, us).int(ctx, tx)
		if err != nil {
			return err
		}
		first, err := (&query{}).add(`SELECT due_at FROM pickup_views.pins WHERE due_at <= ? ORDER BY due_at LIMIT 1`, us).int(ctx, tx)
		if err != nil {
			return err
		}
		var oldest time.Time
		if first != 0 {
			oldest = viewrow.TimeOf(first)
		}
		f = viewrow.FiguresFrom(totals, later, oldest, eventlog.Position(cp))
		return nil
	})
	if err != nil {
		return f, fmt.Errorf("read figures: %w", err)
	}
	return f, nil
}
