// Package postgres is pickup's event log on PostgreSQL (Aurora PostgreSQL
// on AWS): the system of record of a deployment that outgrows one machine,
// on an engine that is tested here and managed there.
//
// # One global order that subscribers can trust
//
// The known trap of an event table ordered by a sequence is that positions
// are handed out when a row is inserted but become visible when its
// transaction commits: transaction A takes position 10, transaction B takes
// 11 and commits first, and a reader that sees 11 moves its checkpoint past
// 10, which then commits and is never read. Under load this loses events
// silently.
//
// This store never lets that happen, by construction rather than by
// waiting: positions are assigned inside the writing transaction while it
// holds one transaction-level advisory lock (pg_advisory_xact_lock on
// appendLock), as head+1, head+2, ... of what is committed. Every
// transaction that writes events takes the same lock, so they write one
// after another; the lock is released only after the commit is visible to
// new snapshots (PostgreSQL makes a commit visible, then releases its
// locks), so the next writer reads a head that includes it. Hence whenever
// a reader sees position N, every position below N was committed before N
// was assigned: readers can read "position > checkpoint ORDER BY position"
// and never skip. The transaction runs at READ COMMITTED, so each statement
// after the lock sees everything committed before it.
//
// The alternative, a transaction-id high-water mark (read only rows whose
// xid is below pg_snapshot_xmin), keeps writers parallel but makes every
// reader wait for the slowest open transaction and ties positions to xids,
// which Aurora's failover and pg_upgrade do not promise to keep. A single
// writer per log costs little because it is not one append per
// transaction:
//
// # Group commit
//
// Appends from all goroutines of a process go through one writer goroutine,
// which takes every append waiting (up to Options.MaxBatch), and commits them
// in one transaction in two round trips and four statements whatever their
// number: begin, take the lock, then look up, for the whole batch in one
// statement, the head, the streams' last revisions and the event ids
// already there; then insert every accepted event in one statement (unnest
// of arrays, with the pg_notify), and commit, which is the one WAL flush.
// Each append keeps its own outcome
// (expected revision, retried ids, duplicate ids: eventlog.PriorAppend
// decides, as in every backend). When a commit answered several appenders,
// the writer waits Options.CommitDelay for them to come back before the
// next one (PostgreSQL's commit_delay with commit_siblings, in the client):
// without it, 64 appenders split into two halves that take turns, and each
// commit carries 32. Writers in other processes take turns through the
// lock, each with its own batch. See BenchmarkDurableAppend for the figures
// on this machine.
//
// # Subscriptions
//
// A caught-up subscriber is woken by appends of its own process at once, by
// those of other processes through LISTEN/NOTIFY (channel notifyChannel,
// sent in the committing transaction, so delivered only after the commit),
// and, as the floor if the listening connection is down, by polling every
// Options.PollInterval. The listening connection opens with the Store's
// first subscription, so a process that only appends and reads (a gateway
// on Lambda) holds none. Stream-prefix and type filters run in SQL, over
// windows of positions up to the head, so that a subscriber moves on where
// nothing matches.
//
// # Schema
//
// Everything lives in the schema pickup_events (SchemaName): one table,
// events, keyed by position, unique by (stream, revision) and (stream, id).
// Data is kept as bytes and times as nanoseconds, so that an event read back
// is byte for byte what was appended (JSON types would rewrite the body,
// timestamptz would round the time to microseconds), and a history copied
// from another store checksums the same. Open creates the schema and the
// table if they are missing, which needs CREATE on the database; a role
// that only appends and reads needs USAGE on the schema and SELECT, INSERT
// on the table.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// SchemaName is the PostgreSQL schema holding the log.
const SchemaName = "pickup_events"

// appendLock is the key of the advisory lock every writing transaction
// holds (and Open's schema set-up): an arbitrary constant, "pickupev" in
// ASCII, that no other part of pickup uses.
const appendLock int64 = 0x7069636b75706576

// notifyChannel is the LISTEN/NOTIFY channel told of every commit.
const notifyChannel = "pickup_events"

// Options tune a Store. The zero value of each field means its default.
type Options struct {
	// PollInterval is how often a caught-up subscriber reads the log when
	// no notification came: the floor under LISTEN/NOTIFY. Default 500ms.
	PollInterval time.Duration
	// MaxBatch is the most appends committed together. Default 512.
	MaxBatch int
	// CommitDelay is how long the writer waits for more appends before a
	// commit, when the last commit held several: the appenders it
	// answered then join the next batch instead of the one after. Zero
	// is the default; negative turns the wait off. Default 300µs.
	CommitDelay time.Duration
	// Readers is the most connections reading at once. Default 8.
	Readers int
	// Credentials, when set, gives every new connection (the pool's and
	// the listener's) its user name and password, instead of the URL's:
	// a password read from a secret that may be rotated.
	Credentials func(ctx context.Context) (user, password string, err error)
}

// Defaults of Options.
const (
	DefaultPollInterval = 500 * time.Millisecond
	DefaultMaxBatch     = 512
	DefaultCommitDelay  = 300 * time.Microsecond
	DefaultReaders      = 8
)

func (o *Options) setDefaults() {
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.CommitDelay == 0 {
		o.CommitDelay = DefaultCommitDelay
	}
	if o.Readers == 0 {
		o.Readers = DefaultReaders
	}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	switch {
	case o.PollInterval < 0:
		return fmt.Errorf("postgres event log: negative poll interval %v", o.PollInterval)
	case o.MaxBatch < 0:
		return fmt.Errorf("postgres event log: negative max batch %d", o.MaxBatch)
	case o.Readers < 0:
		return fmt.Errorf("postgres event log: negative reader count %d", o.Readers)
	}
	return nil
}

// Store is an event log in a PostgreSQL database. It is safe for
// concurrent use; several Stores, in one process or many, may share one
// database.
type Store struct {
	opts    Options
	pool    *pgxpool.Pool
	appends chan *appendRequest

	// closing is closed when Close begins; running tracks calls in flight so
	// Close can wait for them before closing the pool. stop cancels the
	// writer's and the listener's work.
	closing   chan struct{}
	closeOnce sync.Once
	running   sync.WaitGroup
	stop      context.CancelFunc
	loops     sync.WaitGroup
	// background is the context of work the store does on its own (reads
	// ahead, listening), cancelled by Close.
	background context.Context
	ahead      readAhead

	// The listener starts with the first subscription: a process that
	// only appends and reads (a gateway on Lambda, `pickup events cat`)
	// holds no LISTEN connection.
	listenConfig *pgx.ConnConfig
	listening    sync.Once

	// changed is closed, and replaced, after every commit this Store makes
	// or hears of.
	mu      sync.Mutex
	changed chan struct{}
}

var _ eventlog.Store = (*Store)(nil)

const schema = `
CREATE SCHEMA IF NOT EXISTS pickup_events;
CREATE TABLE IF NOT EXISTS pickup_events.events (
	position    bigint PRIMARY KEY,
	stream      text NOT NULL,
	revision    bigint NOT NULL,
	id          uuid NOT NULL,
	type        text NOT NULL,
	version     integer NOT NULL,
	time_ns     bigint NOT NULL,
	actor       text NOT NULL,
	correlation uuid,
	causation   uuid,
	data        bytea NOT NULL,
	CONSTRAINT events_stream_revision UNIQUE (stream, revision),
	CONSTRAINT events_stream_id UNIQUE (stream, id)
);
COMMENT ON TABLE pickup_events.events IS 'pickup event log, version 1: positions are assigned under advisory lock 0x7069636b75706576, never by a sequence';
`

// Open connects to the database at url (postgres:// or postgresql://, any
// form pgx accepts), creating the log's schema and table if missing.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres event log: %w", err)
	}
	// The readers and the writer (the listener has a connection of its
	// own).
	cfg.MaxConns = int32(opts.Readers + 2)
	if opts.Credentials != nil {
		cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
			return withCredentials(ctx, opts.Credentials, cc)
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres event log: %w", err)
	}
	if err := createSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres event log: %w", err)
	}
	loopCtx, stop := context.WithCancel(context.Background())
	s := &Store{
		opts:    opts,
		pool:    pool,
		appends: make(chan *appendRequest, opts.MaxBatch),
		closing: make(chan struct{}),
		stop:    stop,
		changed: make(chan struct{}),

		background: loopCtx,
	}
	s.loops.Add(1)
	go s.writeLoop(loopCtx)
	s.listenConfig = cfg.ConnConfig
	return s, nil
}

// withCredentials sets cc's user and password from creds.
func withCredentials(ctx context.Context, creds func(context.Context) (string, string, error), cc *pgx.ConnConfig) error {
	user, password, err := creds(ctx)
	if err != nil {
		return fmt.Errorf("postgres event log credentials: %w", err)
	}
	cc.User, cc.Password = user, password
	return nil
}

// schemaDB is what createSchema runs on: a pool or one connection.
type schemaDB interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// createSchema makes the schema and table unless they exist. Only a role
// allowed to create them needs to be the first to open the log.
func createSchema(ctx context.Context, pool schemaDB) error {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('pickup_events.events') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("look for the events table: %w", err)
	}
	if exists {
		return nil
	}
	// Two processes opening a new database at once would race on CREATE
	// ... IF NOT EXISTS (it is not atomic): take turns.
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, appendLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, schema); err != nil {
			return fmt.Errorf("create schema %s (the role needs CREATE on the database, or an administrator to open the log once): %w", SchemaName, err)
		}
		return nil
	})
}

// enter registers a call in flight, or fails if the store is closed.
func (s *Store) enter() error {
	select {
	case <-s.closing:
		return eventlog.ErrClosed
	default:
	}
	s.running.Add(1)
	// Close may have begun between the check and Add; check again so that
	// Close's Wait never races with a late Add on a closed store.
	select {
	case <-s.closing:
		s.running.Done()
		return eventlog.ErrClosed
	default:
		return nil
	}
}

// Close stops the writer and the listener, waits for calls in flight, and
// closes the connections.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.stop()
		s.loops.Wait()
		s.running.Wait()
		s.pool.Close()
	})
	return nil
}

// notify wakes every subscriber waiting for new events.
func (s *Store) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// changes returns a channel closed at the next commit this Store makes or
// hears of.
func (s *Store) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// startListening starts the listener, once.
func (s *Store) startListening() {
	s.listening.Do(func() {
		if s.enter() != nil {
			return
		}
		go func() {
			defer s.running.Done()
			s.listen(s.background, s.listenConfig)
		}()
	})
}

// listen holds a connection that LISTENs for commits of other Stores, and
// wakes this Store's subscribers at each. When the connection fails it
// connects again; in between, subscribers poll.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	for ctx.Err() == nil {
		s.listenOnce(ctx, cfg.Copy())
		select {
		case <-ctx.Done():
		case <-time.After(s.opts.PollInterval):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig) {
	if s.opts.Credentials != nil && withCredentials(ctx, s.opts.Credentials, cfg) != nil {
		return
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		return
	}
	// Something may have been committed while no one listened.
	s.notify()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return
		}
		s.notify()
	}
}

// retried runs op, and once more on fresh connections when it failed
// because the server ended its connection (a failover, a restart, an
// administrator's pg_terminate_backend): such a connection fails only at
// its next use, and its idle siblings are as dead, so the pool is reset
// first. Every operation of the store may be done again: reads change
// nothing, and an append's events are found by their ids if the first try
// wrote them, not written twice.
func (s *Store) retried(ctx context.Context, op func() error) error {
	err := op()
	if err == nil || !connectionLost(err) || ctx.Err() != nil {
		return err
	}
	s.pool.Reset()
	return op()
}

// connectionLost reports whether err says the connection is gone, rather
// than that the statement failed: PostgreSQL's connection exceptions
// (class 08) and shutdowns (57P01-57P03), or the connection closed under
// the client.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var netErr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr) || pgconn.SafeToRetry(err)
}

// closedErr reports ErrClosed for an operation that failed because Close
// began while it ran.
func (s *Store) closedErr(err error) error {
	select {
	case <-s.closing:
		if !errors.Is(err, eventlog.ErrClosed) {
			return fmt.Errorf("%w (%v)", eventlog.ErrClosed, err)
		}
	default:
	}
	return err
}
