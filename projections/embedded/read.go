package embedded

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ncruces/go-sqlite3"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/sqlite"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/views"
)

var _ views.Reader = (*Store)(nil)

// query is SQL with its arguments, built up a condition at a time.
type query struct {
	sql  strings.Builder
	args []any
}

func (q *query) add(sql string, args ...any) *query {
	q.sql.WriteString(sql)
	q.args = append(q.args, args...)
	return q
}

// in adds "(?, ?, ...)" for the values.
func (q *query) in(values []string) *query {
	q.sql.WriteString("(")
	for i, v := range values {
		if i > 0 {
			q.sql.WriteString(", ")
		}
		q.sql.WriteString("?")
		q.args = append(q.args, v)
	}
	q.sql.WriteString(")")
	return q
}

// stmt prepares the query on c and binds its arguments.
func (q *query) stmt(c *sqlite.Conn) (*sqlite3.Stmt, error) {
	st, err := c.Stmt(q.sql.String())
	if err != nil {
		return nil, err
	}
	for i, a := range q.args {
		switch a := a.(type) {
		case string:
			st.BindText(i+1, a)
		case int64:
			st.BindInt64(i+1, a)
		case int:
			st.BindInt64(i+1, int64(a))
		case []byte:
			st.BindBlob(i+1, a)
		default:
			return nil, fmt.Errorf("bind %T", a)
		}
	}
	return st, nil
}

// rows runs a query selecting pinColumns and decodes every row.
func (q *query) rows(c *sqlite.Conn) ([]viewrow.PinRow, error) {
	st, err := q.stmt(c)
	if err != nil {
		return nil, err
	}
	var out []viewrow.PinRow
	for st.Step() {
		r, err := scanPin(st, 0)
		if err != nil {
			st.Reset()
			return nil, err
		}
		out = append(out, r)
	}
	if err := st.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", q.sql.String(), err)
	}
	return out, st.Reset()
}

// ints runs a query returning integers, every column of every row in
// order.
func (q *query) ints(c *sqlite.Conn) ([]int64, error) {
	st, err := q.stmt(c)
	if err != nil {
		return nil, err
	}
	var out []int64
	for st.Step() {
		for i := range st.ColumnCount() {
			out = append(out, st.ColumnInt64(i))
		}
	}
	if err := st.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", q.sql.String(), err)
	}
	return out, st.Reset()
}

// int runs a query returning one integer (0 for no row or NULL).
func (q *query) int(c *sqlite.Conn) (int64, error) {
	st, err := q.stmt(c)
	if err != nil {
		return 0, err
	}
	var n int64
	if st.Step() {
		n = st.ColumnInt64(0)
	}
	if err := st.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", q.sql.String(), err)
	}
	return n, st.Reset()
}

// one returns the single row a query selects, or ErrNotFound.
func (q *query) one(c *sqlite.Conn) (viewrow.PinRow, error) {
	rows, err := q.rows(c)
	if err != nil {
		return viewrow.PinRow{}, err
	}
	if len(rows) == 0 {
		return viewrow.PinRow{}, views.ErrNotFound
	}
	return rows[0], nil
}

func sel(from string) *query {
	q := &query{}
	return q.add(`SELECT ` + pinColumns + ` FROM ` + from)
}

// Pin implements views.Reader.
func (s *Store) Pin(ctx context.Context, tenant string, requestID uuid.UUID) (views.Pin, error) {
	var r viewrow.PinRow
	err := s.read(ctx, func(c *sqlite.Conn) (err error) {
		r, err = sel(`pins INDEXED BY pins_req WHERE req_hash = ? AND request_id = ?`).add(``, reqHash(requestID), requestID[:]).one(c)
		return err
	})
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
	var r viewrow.PinRow
	err := s.read(ctx, func(c *sqlite.Conn) (err error) {
		key := viewrow.TextOf(canonicalCID)
		r, err = sel(`pins INDEXED BY pins_cid WHERE tenant = ? AND cid_hash = ? AND cid_key = ? ORDER BY seq DESC LIMIT 1`).
			add(``, viewrow.TextOf(tenant), viewrow.KeyHash(key), key).one(c)
		return err
	})
	if err != nil {
		return views.Pin{}, fmt.Errorf("newest request of %s: %w", canonicalCID, err)
	}
	return r.View(), nil
}

// TokenTenant implements views.Reader.
func (s *Store) TokenTenant(ctx context.Context, hash [32]byte) (string, error) {
	var tenant string
	err := s.read(ctx, func(c *sqlite.Conn) error {
		q, err := c.Stmt(`SELECT tenant FROM tokens INDEXED BY tokens_hash WHERE hash = ? AND revoked = 0 ORDER BY created, token_id LIMIT 1`)
		if err != nil {
			return err
		}
		q.BindBlob(1, hash[:])
		if !q.Step() {
			if err := q.Err(); err != nil {
				return err
			}
			return views.ErrNotFound
		}
		tenant = q.ColumnText(0)
		return q.Reset()
	})
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return tenant, nil
}

// Tokens returns the tenant's tokens (every tenant's for ""), oldest first.
func (s *Store) Tokens(ctx context.Context, tenant string) ([]views.TokenInfo, error) {
	var out []views.TokenInfo
	err := s.read(ctx, func(c *sqlite.Conn) error {
		sql := `SELECT token_id, tenant, label, created, revoked FROM tokens ORDER BY created, token_id`
		if tenant != "" {
			sql = `SELECT token_id, tenant, label, created, revoked FROM tokens WHERE tenant = ? ORDER BY created, token_id`
		}
		q, err := c.Stmt(sql)
		if err != nil {
			return err
		}
		if tenant != "" {
			q.BindText(1, viewrow.TextOf(tenant))
		}
		for q.Step() {
			var id uuid.UUID
			copy(id[:], q.ColumnRawBlob(0))
			out = append(out, views.TokenInfo{ID: id, Tenant: q.ColumnText(1), Label: q.ColumnText(2),
				Created: viewrow.TimeOf(q.ColumnInt64(3)), Revoked: q.ColumnBool(4)})
		}
		if err := q.Err(); err != nil {
			return err
		}
		return q.Reset()
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// Checkpoint implements views.Reader and projections.Applier.
func (s *Store) Checkpoint(ctx context.Context) (eventlog.Position, error) {
	var cp eventlog.Position
	err := s.read(ctx, func(c *sqlite.Conn) (err error) {
		cp, err = readCheckpoint(c)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read views checkpoint: %w", err)
	}
	return cp, nil
}

// List implements views.Reader.
func (s *Store) List(ctx context.Context, lq views.ListQuery) (views.ListResult, error) {
	p, err := viewrow.PlanList(lq)
	if err != nil {
		return views.ListResult{}, err
	}
	var res views.ListResult
	err = s.read(ctx, func(c *sqlite.Conn) error {
		lo, hi, err := seqBounds(c, p)
		if err != nil || hi <= lo+1 {
			return err
		}
		var rows []viewrow.PinRow
		var count int64
		if p.Driver == viewrow.DriveStatus {
			rows, count, err = listByStatus(c, p, lo, hi)
		} else {
			rows, count, err = listByIndex(c, p, lo, hi)
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
func seqBounds(c *sqlite.Conn, p viewrow.ListPlan) (lo, hi int64, err error) {
	hi = viewrow.NoSeq
	if p.Before != 0 {
		q := (&query{}).add(`SELECT seq FROM pins INDEXED BY pins_created WHERE tenant = ? AND created >= ? ORDER BY created LIMIT 1`, p.Tenant, p.Before)
		n, err := q.int(c)
		if err != nil {
			return 0, 0, err
		}
		if n > 0 {
			hi = n
		}
	}
	if p.After != 0 {
		q := (&query{}).add(`SELECT seq FROM pins INDEXED BY pins_created WHERE tenant = ? AND created <= ? ORDER BY created DESC LIMIT 1`, p.Tenant, p.After)
		if lo, err = q.int(c); err != nil {
			return 0, 0, err
		}
	}
	return lo, hi, nil
}

// nameFilter adds the name condition on p. (alias "p").
func nameFilter(q *query, p viewrow.ListPlan) {
	if p.Name == "" {
		return
	}
	col := "p.name"
	if p.NameFold {
		col = "p.name_fold"
	}
	if p.NameContains {
		q.add(` AND instr(`+col+`, ?) > 0`, p.Name)
	} else {
		q.add(` AND `+col+` = ?`, p.Name)
	}
}

func statusFilter(q *query, p viewrow.ListPlan) {
	if p.AllStatuses {
		q.add(` AND p.list_status IS NOT NULL`)
	} else {
		q.add(` AND p.list_status IN `).in(p.Statuses)
	}
}

func metaFilter(q *query, meta []viewrow.MetaRow) {
	for _, m := range meta {
		q.add(` AND EXISTS (SELECT 1 FROM pin_meta x WHERE x.tenant = p.tenant AND x.key = ? AND x.value = ? AND x.seq = p.seq)`, m.Key, m.Value)
	}
}

// listByStatus walks the status index newest first, one status at a time,
// taking only Seq (the index covers it), then reads the rows of the page;
// it counts from the block counters.
func listByStatus(c *sqlite.Conn, p viewrow.ListPlan, lo, hi int64) ([]viewrow.PinRow, int64, error) {
	// Each status's newest, as (seq, rowid) from the covering index; then
	// the page's rows by rowid.
	var seqs [][]int64
	rowids := map[int64]int64{}
	var scanned int64 = -1
	if p.Counted() {
		for _, st := range p.Statuses {
			q := (&query{}).add(`SELECT p.seq, p.rowid FROM pins p INDEXED BY pins_status WHERE p.tenant = ? AND p.list_status = ? AND p.seq > ? AND p.seq < ?`,
				p.Tenant, st, lo, hi)
			q.add(` ORDER BY p.seq DESC LIMIT ?`, p.Limit)
			pairs, err := q.ints(c)
			if err != nil {
				return nil, 0, err
			}
			seqs = append(seqs, pairPage(pairs, rowids))
		}
	} else {
		// A substring of the name: every match is found, for the count and
		// the page alike.
		q, err := substringMatches(c, p, lo, hi)
		if err != nil {
			return nil, 0, err
		}
		pairs, err := q.ints(c)
		if err != nil {
			return nil, 0, err
		}
		seqs = append(seqs, pairPage(pairs, rowids))
		scanned = int64(len(pairs) / 2)
	}
	page := viewrow.NewestSeqs(p.Limit, seqs...)
	var rows []viewrow.PinRow
	if len(page) > 0 {
		q := sel(`pins WHERE rowid IN (`)
		for i, n := range page {
			if i > 0 {
				q.sql.WriteString(", ")
			}
			q.add(`?`, rowids[n])
		}
		q.add(`) ORDER BY seq DESC`)
		var err error
		if rows, err = q.rows(c); err != nil {
			return nil, 0, err
		}
	}
	if scanned >= 0 {
		return rows, scanned, nil
	}
	n, err := viewrow.CountBetween(lo, hi,
		func(below int64) (int64, error) {
			q := (&query{}).add(`SELECT sum(n) FROM tenant_blocks WHERE tenant = ? AND status IN `, p.Tenant).in(p.Statuses)
			if below != viewrow.NoSeq {
				q.add(` AND block < ?`, below)
			}
			return q.int(c)
		},
		func(from, to int64) (int64, error) {
			q := (&query{}).add(`SELECT count(*) FROM pins INDEXED BY pins_status WHERE tenant = ? AND list_status IN `, p.Tenant).
				in(p.Statuses).add(` AND seq >= ? AND seq < ?`, from, to)
			return q.int(c)
		})
	return rows, n, err
}

// substringMatches is the query of the (seq, rowid) of every pin of p
// whose name holds p.Name. A substring of three characters or more is
// looked up in the trigram index of folded names, a shorter one is looked
// for in one pass over the tenant's pins; either way the name itself is
// checked.
func substringMatches(c *sqlite.Conn, p viewrow.ListPlan, lo, hi int64) (*query, error) {
	q := &query{}
	if viewrow.TrigramSearchable(p.NameKey) {
		// The phrase of a trigram index matches where its trigrams follow
		// each other: the folded name holds the folded substring.
		phrase := `"` + strings.ReplaceAll(p.NameKey, `"`, `""`) + `"`
		q.add(`SELECT p.seq, p.rowid FROM pin_names f CROSS JOIN pins p ON p.rowid = f.rowid
			WHERE pin_names MATCH ? AND p.tenant = ? AND p.list_status IN `, phrase, p.Tenant)
	} else {
		// When the tenant holds most of the table, reading the table in
		// order is twice as fast as finding its rows one by one from the
		// index.
		scan := "INDEXED BY pins_status"
		mine, err := (&query{}).add(`SELECT last_seq FROM tenants WHERE tenant = ?`, p.Tenant).int(c)
		if err != nil {
			return nil, err
		}
		all, err := (&query{}).add(`SELECT sum(last_seq) FROM tenants`).int(c)
		if err != nil {
			return nil, err
		}
		if 2*mine > all {
			scan = "NOT INDEXED"
		}
		q.add(`SELECT p.seq, p.rowid FROM pins p `+scan+` WHERE p.tenant = ? AND p.list_status IN `, p.Tenant)
	}
	q.in(p.Statuses).add(` AND p.seq > ? AND p.seq < ?`, lo, hi)
	nameFilter(q, p)
	return q, nil
}

// pairPage splits (seq, rowid) pairs into seqs, noting each rowid.
func pairPage(pairs []int64, rowids map[int64]int64) []int64 {
	seqs := make([]int64, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		seqs = append(seqs, pairs[i])
		rowids[pairs[i]] = pairs[i+1]
	}
	return seqs
}

// listByIndex walks the index of the plan's driver, filtering the rest,
// and counts the matches on the same index.
func listByIndex(c *sqlite.Conn, p viewrow.ListPlan, lo, hi int64) ([]viewrow.PinRow, int64, error) {
	build := func(head string) *query {
		q := &query{}
		q.add(head)
		meta := p.Meta
		switch p.Driver {
		case viewrow.DriveCID:
			var hashes []string
			for _, k := range p.CIDKeys {
				hashes = append(hashes, fmt.Sprint(viewrow.KeyHash(k)))
			}
			q.add(` FROM pins p INDEXED BY pins_cid WHERE p.tenant = ? AND p.cid_hash IN (`+strings.Join(hashes, ", ")+`) AND p.cid_key IN `, p.Tenant).in(p.CIDKeys)
			q.add(` AND p.seq > ? AND p.seq < ?`, lo, hi)
			nameFilter(q, p)
		case viewrow.DriveName:
			// Exact names too walk the folded-name index: a name's fold
			// is the index key, the name itself the filter.
			q.add(` FROM pins p INDEXED BY pins_name WHERE p.tenant = ? AND p.name_hash = ? AND p.name_fold = ? AND p.seq > ? AND p.seq < ?`,
				p.Tenant, viewrow.KeyHash(p.NameKey), p.NameKey, lo, hi)
			nameFilter(q, p)
		case viewrow.DriveMeta:
			m := meta[0]
			meta = meta[1:]
			q.add(` FROM pin_meta m CROSS JOIN pins p ON p.rowid = m.pin
				WHERE m.tenant = ? AND m.key = ? AND m.value = ? AND m.seq > ? AND m.seq < ?`, p.Tenant, m.Key, m.Value, lo, hi)
			nameFilter(q, p)
		}
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
	rows, err := q.rows(c)
	if err != nil {
		return nil, 0, err
	}
	if p.CountedByMeta() {
		m := p.Meta[0]
		n, err := viewrow.CountBetween(lo, hi,
			func(below int64) (int64, error) {
				q := (&query{}).add(`SELECT sum(n) FROM meta_blocks WHERE tenant = ? AND key = ? AND value = ? AND status IN `, p.Tenant, m.Key, m.Value).
					in(p.Statuses)
				if below != viewrow.NoSeq {
					q.add(` AND block < ?`, below)
				}
				return q.int(c)
			},
			func(from, to int64) (int64, error) {
				q := (&query{}).add(`SELECT count(*) FROM pin_meta m CROSS JOIN pins p ON p.rowid = m.pin
					WHERE m.tenant = ? AND m.key = ? AND m.value = ? AND m.seq >= ? AND m.seq < ?`, p.Tenant, m.Key, m.Value, from, to)
				statusFilter(q, p)
				return q.int(c)
			})
		return rows, n, err
	}
	n, err := build(`SELECT count(*)`).int(c)
	return rows, n, err
}

// DueForClaim returns visible queued pins due at now, longest waiting
// first: what fetchers claim. It offers one request per root at a time,
// the longest waiting, and none for a root whose DAG a claimed attempt is
// fetching: the others wait, and then complete from the carpark, so that
// fetchers in any number of processes fetch each root once.
func (s *Store) DueForClaim(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error) {
	var rows []viewrow.PinRow
	err := s.read(ctx, func(c *sqlite.Conn) (err error) {
		rows, err = sel(`pins AS p INDEXED BY pins_due WHERE p.due_at <= ?
			AND NOT EXISTS (SELECT 1 FROM pins AS c INDEXED BY pins_root_claimed
				WHERE c.cid_hash = p.cid_hash AND c.lease_until IS NOT NULL AND c.cid_key = p.cid_key)
			AND NOT EXISTS (SELECT 1 FROM pins AS o INDEXED BY pins_root_due
				WHERE o.cid_hash = p.cid_hash AND o.due_at IS NOT NULL AND o.cid_key = p.cid_key
				AND (o.due_at < p.due_at OR (o.due_at = p.due_at AND o.request_id < p.request_id)))
			ORDER BY p.due_at LIMIT ?`).
			add(``, viewrow.MicrosOf(now), limit).rows(c)
		return err
	})
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
	var rows []viewrow.PinRow
	err := s.read(ctx, func(c *sqlite.Conn) (err error) {
		rows, err = sel(`pins AS p INDEXED BY pins_req WHERE p.req_hash = ? AND p.request_id = ? AND p.due_at <= ?
			AND NOT EXISTS (SELECT 1 FROM pins AS c INDEXED BY pins_root_claimed
				WHERE c.cid_hash = p.cid_hash AND c.lease_until IS NOT NULL AND c.cid_key = p.cid_key)
			AND NOT EXISTS (SELECT 1 FROM pins AS o INDEXED BY pins_root_due
				WHERE o.cid_hash = p.cid_hash AND o.due_at IS NOT NULL AND o.cid_key = p.cid_key
				AND (o.due_at < p.due_at OR (o.due_at = p.due_at AND o.request_id < p.request_id)))`).
			add(``, reqHash(requestID), requestID[:], viewrow.MicrosOf(now)).rows(c)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("is %s claimable: %w", requestID, err)
	}
	return len(rows) == 1, nil
}

// Overdue returns visible pins whose watchdog deadline (lease end, or due
// time plus queueTimeout, see pin.State.Deadline) passed before now,
// soonest deadline first.
func (s *Store) Overdue(ctx context.Context, now time.Time, queueTimeout time.Duration, limit int) ([]uuid.UUID, error) {
	var leases, queued []viewrow.PinRow
	err := s.read(ctx, func(c *sqlite.Conn) (err error) {
		leases, err = sel(`pins INDEXED BY pins_lease WHERE lease_until < ? ORDER BY lease_until LIMIT ?`).
			add(``, viewrow.MicrosOf(now), limit).rows(c)
		if err != nil || queueTimeout <= 0 {
			return err
		}
		queued, err = sel(`pins INDEXED BY pins_due WHERE due_at < ? ORDER BY due_at LIMIT ?`).
			add(``, viewrow.MicrosOf(now.Add(-queueTimeout)), limit).rows(c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("overdue pins: %w", err)
	}
	return viewrow.MergeOverdue(leases, queued, queueTimeout, limit), nil
}

// AwaitingDecision returns visible pins whose attempt failed and that wait
// for the retry decider, oldest failure first.
func (s *Store) AwaitingDecision(ctx context.Context, limit int) ([]uuid.UUID, error) {
	var rows []viewrow.PinRow
	err := s.read(ctx, func(c *sqlite.Conn) (err error) {
		rows, err = sel(`pins INDEXED BY pins_failed WHERE failed_at IS NOT NULL ORDER BY failed_at LIMIT ?`).add(``, limit).rows(c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pins awaiting a retry decision: %w", err)
	}
	return viewrow.IDs(rows), nil
}

// CarForRoot returns the CAR CID of a visible pinned request for the root
// (in canonical form), from any tenant, and false when there is none.
func (s *Store) CarForRoot(ctx context.Context, canonicalCID string) (string, bool, error) {
	var r viewrow.PinRow
	err := s.read(ctx, func(c *sqlite.Conn) (err error) {
		key := viewrow.TextOf(canonicalCID)
		r, err = sel(`pins INDEXED BY pins_car WHERE list_status = 'pinned' AND cid_hash = ? AND cid_key = ? LIMIT 1`).
			add(``, viewrow.KeyHash(key), key).one(c)
		return err
	})
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
	var r viewrow.RootRow
	err := s.read(ctx, func(c *sqlite.Conn) error {
		q, err := c.Stmt(`SELECT live, has_car, released_at, deleting_until FROM roots WHERE root = ?`)
		if err != nil {
			return err
		}
		key := viewrow.TextOf(canonicalRoot)
		q.BindText(1, key)
		if !q.Step() {
			if err := q.Err(); err != nil {
				return err
			}
			return views.ErrNotFound
		}
		r = viewrow.RootRow{Root: key, Live: q.ColumnInt64(0), HasCar: q.ColumnBool(1), ReleasedAt: q.ColumnInt64(2), DeletingUntil: q.ColumnInt64(3)}
		return q.Reset()
	})
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
	var out []string
	err := s.read(ctx, func(c *sqlite.Conn) error {
		q, err := (&query{}).add(`SELECT root FROM roots INDEXED BY roots_gc WHERE gc_at IS NOT NULL AND gc_at < ? ORDER BY gc_at, root LIMIT ?`,
			viewrow.MicrosOf(before), limit).stmt(c)
		if err != nil {
			return err
		}
		for q.Step() {
			out = append(out, q.ColumnText(0))
		}
		if err := q.Err(); err != nil {
			return err
		}
		return q.Reset()
	})
	if err != nil {
		return nil, fmt.Errorf("released roots: %w", err)
	}
	return out, nil
}

// Figures returns the views' totals at now.
func (s *Store) Figures(ctx context.Context, now time.Time) (projections.Figures, error) {
	var f projections.Figures
	err := s.read(ctx, func(c *sqlite.Conn) error {
		cp, err := readCheckpoint(c)
		if err != nil {
			return err
		}
		totals := map[string]int64{}
		q, err := c.Stmt(`SELECT name, n FROM totals`)
		if err != nil {
			return err
		}
		for q.Step() {
			totals[q.ColumnText(0)] = q.ColumnInt64(1)
		}
		if err := q.Err(); err != nil {
			return err
		}
		q.Reset()
		us := viewrow.MicrosOf(now)
		later, err := (&query{}).add(`SELECT count(*) FROM pins INDEXED BY pins_due WHERE due_at > ?`, us).int(c)
		if err != nil {
			return err
		}
		first, err := (&query{}).add(`SELECT due_at FROM pins INDEXED BY pins_due WHERE due_at <= ? ORDER BY due_at LIMIT 1`, us).int(c)
		if err != nil {
			return err
		}
		var oldest time.Time
		if first != 0 {
			oldest = viewrow.TimeOf(first)
		}
		f = viewrow.FiguresFrom(totals, later, oldest, cp)
		return nil
	})
	if err != nil {
		return f, fmt.Errorf("read figures: %w", err)
	}
	return f, nil
}

var errStop = errors.New("stop")
