// Package postgres keeps pickup's views in PostgreSQL, for deployments
// where several gateways read the views and the embedded file will not do.
// It holds the same rows as the embedded store, computed by the same
// function (viewrow.Batch.Project), and passes the same conformance
// suite.
//
// Each batch of events is applied in one transaction that first locks the
// checkpoint row, so two runners on one database apply every batch once.
// Text columns use the "C" collation: comparisons are bytewise, as in the
// embedded store, whatever the database's locale.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the views in a PostgreSQL database. It is safe for concurrent
// use.
type Store struct {
	pool      *pgxpool.Pool
	closeOnce sync.Once
}

// schemaLock is the advisory lock that serializes schema creation between
// processes opening one database at once.
const schemaLock = 0x7069636b7570 // "pickup"

const schema = `
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE IF NOT EXISTS pins (
	request_id  uuid PRIMARY KEY,
	tenant      text COLLATE "C" NOT NULL,
	seq         bigint NOT NULL,
	created     bigint NOT NULL,
	cid         text COLLATE "C" NOT NULL,
	cid_key     text COLLATE "C" NOT NULL,
	name        text COLLATE "C" NOT NULL,
	name_fold   text COLLATE "C" NOT NULL,
	list_status text COLLATE "C",
	hidden      boolean NOT NULL,
	phase       text COLLATE "C" NOT NULL,
	due_at      bigint,
	lease_until bigint,
	failed_at   bigint,
	car_bytes   bigint NOT NULL,
	state       bytea NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS pins_seq ON pins (tenant, seq);
CREATE INDEX IF NOT EXISTS pins_created ON pins (tenant, created, seq);
CREATE INDEX IF NOT EXISTS pins_status ON pins (tenant, list_status, seq) WHERE list_status IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_cid ON pins (tenant, cid_key, seq);
CREATE INDEX IF NOT EXISTS pins_name_fold ON pins (tenant, name_fold, seq);
CREATE INDEX IF NOT EXISTS pins_name_trigrams ON pins USING gin (name_fold gin_trgm_ops);
CREATE INDEX IF NOT EXISTS pins_due ON pins (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_root_due ON pins (cid_key, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_root_claimed ON pins (cid_key) WHERE lease_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_lease ON pins (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_failed ON pins (failed_at) WHERE failed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_car ON pins (cid_key) WHERE list_status = 'pinned';

CREATE TABLE IF NOT EXISTS pin_meta (
	tenant text COLLATE "C" NOT NULL,
	key    text COLLATE "C" NOT NULL,
	value  text COLLATE "C" NOT NULL,
	seq    bigint NOT NULL,
	PRIMARY KEY (tenant, key, value, seq)
);

CREATE TABLE IF NOT EXISTS tenants (
	tenant       text COLLATE "C" PRIMARY KEY,
	last_seq     bigint NOT NULL,
	last_created bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS tenant_blocks (
	tenant text COLLATE "C" NOT NULL,
	status text COLLATE "C" NOT NULL,
	block  bigint NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (tenant, status, block)
);

CREATE TABLE IF NOT EXISTS meta_blocks (
	tenant text COLLATE "C" NOT NULL,
	key    text COLLATE "C" NOT NULL,
	value  text COLLATE "C" NOT NULL,
	status text COLLATE "C" NOT NULL,
	block  bigint NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (tenant, key, value, status, block)
);

CREATE TABLE IF NOT EXISTS totals (
	name text COLLATE "C" PRIMARY KEY,
	n    bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS tokens (
	token_id uuid PRIMARY KEY,
	tenant   text COLLATE "C" NOT NULL,
	hash     bytea NOT NULL,
	label    text COLLATE "C" NOT NULL,
	created  bigint NOT NULL,
	revoked  boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_hash ON tokens (hash);
CREATE INDEX IF NOT EXISTS tokens_tenant ON tokens (tenant, created);

CREATE TABLE IF NOT EXISTS checkpoint (
	id       int PRIMARY KEY CHECK (id = 1),
	position bigint NOT NULL
);
INSERT INTO checkpoint (id, position) VALUES (1, 0) ON CONFLICT DO NOTHING;
`

// schemaVersion is the version of the tables above, kept in views_schema.
// Views of another version are dropped and rebuilt: they are a projection
// of the log, and the runner replays it from position zero.
const schemaVersion = 4

const dropAll = `DROP TABLE IF EXISTS pins, pin_meta, tenants, tenant_blocks, meta_blocks, totals, tokens, checkpoint`

// Options tune a Store. The zero value of each field means its default.
type Options struct {
	// MaxConns is the most connections open at once. Default: pgxpool's
	// (the larger of 4 and the number of CPUs).
	MaxConns int32
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.MaxConns < 0 {
		return fmt.Errorf("postgres views: negative connection count %d", o.MaxConns)
	}
	return nil
}

// Open connects to the database at url (postgres://...) and creates the
// tables if needed.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open views: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open views: %w", err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS views_schema (version int NOT NULL)`); err != nil {
			return err
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM views_schema`).Scan(&version)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case version != schemaVersion:
			if _, err := tx.Exec(ctx, dropAll); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, schema); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM views_schema; INSERT INTO views_schema (version) VALUES (`+strconv.Itoa(schemaVersion)+`)`)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open views: create tables: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the connections. Calls in flight must have returned.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// snapshot runs fn in a read-only transaction that sees one snapshot.
func (s *Store) snapshot(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}
