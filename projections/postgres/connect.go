package postgres

import (
	"context"
	"errors"
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

// db is the pool as the store uses it. When credentials may rotate
// (retryAuth), an operation whose new connection was refused is retried
// once: the refusal made the credentials be asked for again, so the retry
// connects with the rotated ones.
type db struct {
	pool      *pgxpool.Pool
	retryAuth bool
}

func (d db) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := d.pool.Query(ctx, sql, args...)
	if d.retryAuth && refusedAtConnect(err) {
		rows, err = d.pool.Query(ctx, sql, args...)
	}
	return rows, err
}

func (d db) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return retryRow{d: d, ctx: ctx, sql: sql, args: args}
}

func (d db) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := d.pool.Begin(ctx)
	if d.retryAuth && refusedAtConnect(err) {
		tx, err = d.pool.Begin(ctx)
	}
	return tx, err
}

func (d db) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	tx, err := d.pool.BeginTx(ctx, opts)
	if d.retryAuth && refusedAtConnect(err) {
		tx, err = d.pool.BeginTx(ctx, opts)
	}
	return tx, err
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
