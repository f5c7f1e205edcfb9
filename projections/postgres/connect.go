package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// credentialCache hands the credentials of Options.Credentials to each new
// connection: the same for ttl, then asked for again; asked for again at
// once after the server refused them.
type credentialCache struct {
	get Credentials
	ttl time.Duration
	now func() time.Time

	mu             sync.Mutex
	user, password string
	fetched        time.Time // zero: ask again
}

// beforeConnect is the pool's BeforeConnect: it sets the connection's
// credentials, and has them forgotten if the server refuses them.
func (c *credentialCache) beforeConnect(ctx context.Context, cc *pgx.ConnConfig) error {
	user, password, err := c.credentials(ctx)
	if err != nil {
		return err
	}
	cc.User, cc.Password = user, password
	next := cc.OnPgError
	cc.OnPgError = func(conn *pgconn.PgConn, pgErr *pgconn.PgError) bool {
		if isAuthCode(pgErr.Code) {
			c.forget(password)
		}
		if next == nil {
			return true
		}
		return next(conn, pgErr)
	}
	return nil
}

func (c *credentialCache) credentials(ctx context.Context) (string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fetched.IsZero() && c.now().Sub(c.fetched) < c.ttl {
		return c.user, c.password, nil
	}
	user, password, err := c.get(ctx)
	if err != nil {
		return "", "", err
	}
	c.user, c.password, c.fetched = user, password, c.now()
	return user, password, nil
}

// forget drops the cached credentials if they still hold password, so that
// the next connection asks again.
func (c *credentialCache) forget(password string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.password == password {
		c.fetched = time.Time{}
	}
}

// isAuthCode reports the SQLSTATEs of refused credentials: invalid_password
// and invalid_authorization_specification (an unknown role, or pg_hba.conf
// refusing it).
func isAuthCode(code string) bool { return code == "28P01" || code == "28000" }

// refusedAtConnect reports an error of a new connection whose credentials
// the server refused: nothing was sent, so the operation may be retried.
func refusedAtConnect(err error) bool {
	var connErr *pgconn.ConnectError
	var pgErr *pgconn.PgError
	return errors.As(err, &connErr) && errors.As(err, &pgErr) && isAuthCode(pgErr.Code)
}

// schemaMarker stands for the store's schema in the SQL of this package:
// every table is written pickup_views.<table>, and the statement is sent
// with the schema of the store's version in its place. A table written
// without it would be looked up through the session's search_path (where
// the unversioned tables of versions up to 4 are): none is, and a marker
// left unreplaced names a schema that does not exist.
const schemaMarker = "pickup_views."

// schemaPrefix is what replaces schemaMarker for the views in schema.
func schemaPrefix(schema string) string { return pgx.Identifier{schema}.Sanitize() + "." }

// qualify puts the schema prefix in place of schemaMarker in sql.
func qualify(sql, prefix string) string { return strings.ReplaceAll(sql, schemaMarker, prefix) }

// db is the pool as the store uses it: every statement goes to the
// store's schema (qualify). When credentials may rotate (retryAuth), an
// operation whose new connection was refused is retried once: the refusal
// made the credentials be asked for again, so the retry connects with the
// rotated ones.
type db struct {
	pool      *pgxpool.Pool
	retryAuth bool
	prefix    string
}

func (d db) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	sql = qualify(sql, d.prefix)
	rows, err := d.pool.Query(ctx, sql, args...)
	if d.retryAuth && refusedAtConnect(err) {
		rows, err = d.pool.Query(ctx, sql, args...)
	}
	return rows, err
}

func (d db) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return retryRow{d: d, ctx: ctx, sql: qualify(sql, d.prefix), args: args}
}

func (d db) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := d.pool.Begin(ctx)
	if d.retryAuth && refusedAtConnect(err) {
		tx, err = d.pool.Begin(ctx)
	}
	if err != nil {
		return nil, err
	}
	return schemaTx{Tx: tx, prefix: d.prefix}, nil
}

func (d db) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	tx, err := d.pool.BeginTx(ctx, opts)
	if d.retryAuth && refusedAtConnect(err) {
		tx, err = d.pool.BeginTx(ctx, opts)
	}
	if err != nil {
		return nil, err
	}
	return schemaTx{Tx: tx, prefix: d.prefix}, nil
}

// schemaTx is a transaction of the store: its statements go to the
// store's schema, as db's do.
type schemaTx struct {
	pgx.Tx
	prefix string
}

func (t schemaTx) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := t.Tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return schemaTx{Tx: tx, prefix: t.prefix}, nil
}

func (t schemaTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.Tx.Exec(ctx, qualify(sql, t.prefix), args...)
}

func (t schemaTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.Tx.Query(ctx, qualify(sql, t.prefix), args...)
}

func (t schemaTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.Tx.QueryRow(ctx, qualify(sql, t.prefix), args...)
}

func (t schemaTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	for _, q := range b.QueuedQueries {
		q.SQL = qualify(q.SQL, t.prefix)
	}
	return t.Tx.SendBatch(ctx, b)
}

// retryRow is QueryRow's row: the query runs at Scan, again once if its
// connection was refused.
type retryRow struct {
	d    db
	ctx  context.Context
	sql  string
	args []any
}

func (r retryRow) Scan(dest ...any) error {
	err := r.d.pool.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	if r.d.retryAuth && refusedAtConnect(err) {
		err = r.d.pool.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	}
	return err
}
