// Package sqlite opens SQLite databases the way pickup's embedded stores use
// them: pure Go (github.com/ncruces/go-sqlite3, SQLite translated from Wasm to
// Go, so no cgo), in WAL mode so that readers never wait for the writer and
// several processes can share one file, with every commit synced to disk.
package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// BusyTimeout is how long a connection waits for another process's write
// lock before an operation fails with SQLITE_BUSY.
const BusyTimeout = 30 * time.Second

// Conn is a SQLite connection with a cache of prepared statements. Like the
// connection it wraps, it is not safe for concurrent use.
type Conn struct {
	*sqlite3.Conn
	stmts map[string]*sqlite3.Stmt
}

// Open opens (creating if needed) the database at path, in WAL mode with
// synchronous=FULL, so that a committed transaction is on disk before Commit
// returns.
func Open(ctx context.Context, path string) (*Conn, error) { return OpenPaged(ctx, path, 0) }

// OpenPaged is Open for a database that, when it is created here, gets
// pages of pageSize bytes (a power of two from 512 to 65536; 0 means
// SQLite's 4096). Big pages suit stores written in big batches: fewer
// writes a transaction. Small ones suit small commits (the event log: a
// one-event append writes one page). An existing database keeps its size.
func OpenPaged(ctx context.Context, path string, pageSize int) (*Conn, error) {
	c, err := sqlite3.OpenContext(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := c.BusyTimeout(BusyTimeout); err != nil {
		c.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// The page size takes effect only on a fresh file, and only before it
	// is in WAL mode. journal_mode is stored in the file; setting it on
	// every open is cheap and makes a fresh file WAL before its first
	// write.
	setup := `PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON`
	if pageSize > 0 {
		setup = fmt.Sprintf(`PRAGMA page_size=%d; `, pageSize) + setup
	}
	if err := execBusy(ctx, c, setup); err != nil {
		c.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Conn{Conn: c, stmts: make(map[string]*sqlite3.Stmt)}, nil
}

// execBusy runs sql, again while another connection holds the lock it
// needs, until BusyTimeout has passed. Making a fresh file WAL takes an
// exclusive lock, and SQLite answers SQLITE_BUSY at once, without waiting
// in its busy handler, to a connection that tries while another process
// does the same (several processes starting on one new log: measured here,
// 2 of 30 rounds of six processes failed with "database is locked").
func execBusy(ctx context.Context, c *sqlite3.Conn, sql string) error {
	deadline := time.Now().Add(BusyTimeout)
	wait := time.Millisecond
	for {
		err := c.Exec(sql)
		if err == nil || !errors.Is(err, sqlite3.BUSY) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// Stmt returns the prepared statement for query, preparing it on first use.
// The statement is reset and its bindings cleared, ready to bind. Reset's
// error is not one: sqlite3_reset always resets, and returns the error of
// the statement's last step, so a statement whose last use was
// interrupted (its context done) would otherwise fail every later use of
// the connection with "interrupted".
func (c *Conn) Stmt(query string) (*sqlite3.Stmt, error) {
	if s, ok := c.stmts[query]; ok {
		_ = s.Reset() // the last step's outcome, already reported to its caller
		return s, s.ClearBindings()
	}
	s, _, err := c.Prepare(query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	c.stmts[query] = s
	return s, nil
}

// Close finalizes the cached statements and closes the connection.
func (c *Conn) Close() error {
	for _, s := range c.stmts {
		s.Close()
	}
	clear(c.stmts)
	return c.Conn.Close()
}

// Pool hands out connections to one database, opening up to max of them.
// It is safe for concurrent use.
type Pool struct {
	path string
	idle chan *Conn
	// slots holds a token for every connection that may still be opened.
	slots chan struct{}
	init  func(*Conn) error
	// closed refuses connections once the pool is closed: a store used
	// after Close fails instead of quietly opening its file again.
	closed atomic.Bool
}

// ErrPoolClosed is Get's answer after Close.
var ErrPoolClosed = errors.New("sqlite: connection pool closed")

// NewPool returns a pool of at most max connections to path; init, if not
// nil, runs on each new connection (to set per-connection pragmas).
func NewPool(path string, max int, init func(*Conn) error) *Pool {
	p := &Pool{path: path, idle: make(chan *Conn, max), slots: make(chan struct{}, max), init: init}
	for range max {
		p.slots <- struct{}{}
	}
	return p
}

// Get returns an idle connection, or opens one, or waits for one; after
// Close, ErrPoolClosed.
func (p *Pool) Get(ctx context.Context) (*Conn, error) {
	if p.closed.Load() {
		return nil, ErrPoolClosed
	}
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	select {
	case c := <-p.idle:
		return c, nil
	case <-p.slots:
		c, err := Open(ctx, p.path)
		if err == nil && p.init != nil {
			if err = p.init(c); err != nil {
				c.Close()
			}
		}
		if err != nil {
			p.slots <- struct{}{}
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Put returns a connection to the pool. A connection left inside a
// transaction is rolled back first.
func (p *Pool) Put(c *Conn) {
	if p.closed.Load() {
		c.Close()
		return
	}
	if !c.GetAutocommit() {
		if err := c.Exec(`ROLLBACK`); err != nil {
			c.Close()
			p.slots <- struct{}{}
			return
		}
	}
	p.idle <- c
}

// Close closes the idle connections. Callers return every connection and
// stop using the pool before they close it.
func (p *Pool) Close() error {
	p.closed.Store(true)
	var first error
	for {
		select {
		case c := <-p.idle:
			if err := c.Close(); err != nil && first == nil {
				first = err
			}
		default:
			return first
		}
	}
}
