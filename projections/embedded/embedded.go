// Package embedded is pickup's default view store: the views in one local
// SQLite file, on the same pure-Go engine as the embedded event log
// (internal/sqlite), with real indexes for every listing filter.
//
// Every index costs a rebuild time, so there are no more than the queries
// need, as small as they can be: request ids, CIDs and names are indexed by
// a 64-bit hash (the id's first 8 bytes; viewrow.KeyHash of the
// canonical CID and folded name; queries compare the key itself too), names match exactly through the folded-name index
// (then compare the name itself), and rows are found from the other
// indexes by rowid, which the meta index keeps too. Substrings of names
// (partial, ipartial) of three characters or more are found through a
// trigram index of folded names (SQLite's FTS5), then checked against the
// name itself; shorter ones scan the tenant's pins.
//
// One writer (the runner) applies batches of events, each in one
// transaction with the checkpoint; any number of readers, in this process or
// others sharing the file, read consistent snapshots meanwhile (WAL mode).
//
// Commits are not synced to disk one by one (synchronous=NORMAL): the
// views are rebuilt from the log, so a commit lost in a power cut is applied
// again from the checkpoint that was lost with it. Atomicity is what counts,
// and WAL keeps it. The WAL is copied into the file (and the file synced)
// at two paces. While big batches are applied (a rebuild, a catch-up),
// every 8000 pages of 16 KiB: a page that many batches touch (an index page)
// is then copied once, not once per batch. While following the log, every
// 1000 pages: a copy of 128 MiB and its sync hold the disk long enough to
// stall the log's own syncs in the same process (POST /pins at 2,000/s with
// the views in the process: p99 71–82 ms, 18–23 ms at 1000 pages).
package embedded

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ncruces/go-sqlite3/ext/fts5"

	"github.com/pickup-ipfs/pickup/internal/sqlite"
)

// Options tune a Store. The zero value of each field means its default.
type Options struct {
	// Readers is the most connections reading at once. Default 8.
	Readers int
	// CacheMiB is each connection's page cache. Default 64.
	CacheMiB int
}

func (o *Options) setDefaults() {
	if o.Readers == 0 {
		o.Readers = 8
	}
	if o.CacheMiB == 0 {
		o.CacheMiB = 64
	}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	switch {
	case o.Readers < 0:
		return fmt.Errorf("embedded views: negative reader count %d", o.Readers)
	case o.CacheMiB < 0:
		return fmt.Errorf("embedded views: negative cache size %d MiB", o.CacheMiB)
	}
	return nil
}

// Store is the views in one SQLite file. It is safe for concurrent use.
type Store struct {
	path    string
	readers *sqlite.Pool
	// writer is the one connection that writes; holding the token in
	// writing is holding the connection.
	writer  *sqlite.Conn
	writing chan struct{}

	closeOnce sync.Once
	closeErr  error
}

const schema = `
CREATE TABLE IF NOT EXISTS pins (
	request_id  BLOB NOT NULL,
	req_hash    INTEGER NOT NULL,
	tenant      TEXT NOT NULL,
	seq         INTEGER NOT NULL,
	created     INTEGER NOT NULL,
	cid         TEXT NOT NULL,
	cid_key     TEXT NOT NULL,
	name        TEXT NOT NULL,
	name_fold   TEXT NOT NULL,
	cid_hash    INTEGER NOT NULL,
	name_hash   INTEGER NOT NULL,
	list_status TEXT,
	hidden      INTEGER NOT NULL,
	phase       TEXT NOT NULL,
	due_at      INTEGER,
	lease_until INTEGER,
	failed_at   INTEGER,
	car_bytes   INTEGER NOT NULL,
	state       BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS pins_req ON pins (req_hash);
CREATE INDEX IF NOT EXISTS pins_created ON pins (tenant, created, seq);
CREATE INDEX IF NOT EXISTS pins_status ON pins (tenant, list_status, seq) WHERE list_status IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_cid ON pins (tenant, cid_hash, seq);
CREATE INDEX IF NOT EXISTS pins_name ON pins (tenant, name_hash, seq);
CREATE INDEX IF NOT EXISTS pins_due ON pins (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_root_due ON pins (cid_hash, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_root_claimed ON pins (cid_hash) WHERE lease_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_lease ON pins (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_failed ON pins (failed_at) WHERE failed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_car ON pins (cid_hash) WHERE list_status = 'pinned';

-- The trigram index of folded names, for partial and ipartial matches of
-- three characters or more: contentless (rowid = the pin's), with no
-- column sizes, so that it costs a pin little more than its trigrams.
CREATE VIRTUAL TABLE IF NOT EXISTS pin_names USING fts5(
	name_fold, content='', columnsize=0, tokenize='trigram case_sensitive 1'
);

CREATE TABLE IF NOT EXISTS pin_meta (
	tenant TEXT NOT NULL,
	key    TEXT NOT NULL,
	value  TEXT NOT NULL,
	seq    INTEGER NOT NULL,
	pin    INTEGER NOT NULL,
	PRIMARY KEY (tenant, key, value, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tenants (
	tenant       TEXT PRIMARY KEY,
	last_seq     INTEGER NOT NULL,
	last_created INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tenant_blocks (
	tenant TEXT NOT NULL,
	status TEXT NOT NULL,
	block  INTEGER NOT NULL,
	n      INTEGER NOT NULL,
	PRIMARY KEY (tenant, status, block)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS meta_blocks (
	tenant TEXT NOT NULL,
	key    TEXT NOT NULL,
	value  TEXT NOT NULL,
	status TEXT NOT NULL,
	block  INTEGER NOT NULL,
	n      INTEGER NOT NULL,
	PRIMARY KEY (tenant, key, value, status, block)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS totals (
	name TEXT PRIMARY KEY,
	n    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tokens (
	token_id BLOB PRIMARY KEY,
	tenant   TEXT NOT NULL,
	hash     BLOB NOT NULL,
	label    TEXT NOT NULL,
	created  INTEGER NOT NULL,
	revoked  INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS tokens_hash ON tokens (hash);
CREATE INDEX IF NOT EXISTS tokens_tenant ON tokens (tenant, created);

-- The roots view (viewrow.RootRow): the garbage collector's candidates
-- are the rows with a gc_at, oldest first.
CREATE TABLE IF NOT EXISTS roots (
	root           TEXT PRIMARY KEY,
	live           INTEGER NOT NULL,
	has_car        INTEGER NOT NULL,
	released_at    INTEGER NOT NULL,
	deleting_until INTEGER NOT NULL,
	gc_at          INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS roots_gc ON roots (gc_at, root) WHERE gc_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS checkpoint (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	position INTEGER NOT NULL
) STRICT;
INSERT OR IGNORE INTO checkpoint (id, position) VALUES (1, 0);
`

// schemaVersion is the version of the tables above, kept in SQLite's
// user_version. Views of another version are dropped and rebuilt: they are
// a projection of the log, and the runner replays it from position zero.
const schemaVersion = 8

const dropAll = `
DROP TABLE IF EXISTS pins; DROP TABLE IF EXISTS pin_meta; DROP TABLE IF EXISTS tenants;
DROP TABLE IF EXISTS tenant_blocks; DROP TABLE IF EXISTS meta_blocks; DROP TABLE IF EXISTS totals; DROP TABLE IF EXISTS tokens;
DROP TABLE IF EXISTS checkpoint; DROP TABLE IF EXISTS pin_names; DROP TABLE IF EXISTS roots;
`

// Open opens the views in the file at path, creating the file, its
// directory and the tables if needed.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open views: %w", err)
		}
	}
	setup := func(c *sqlite.Conn) error {
		if err := fts5.Register(c.Conn); err != nil {
			return fmt.Errorf("register fts5: %w", err)
		}
		return c.Exec(fmt.Sprintf(`PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=%d; PRAGMA cache_size=-%d; PRAGMA temp_store=MEMORY`, walFollowingPages, opts.CacheMiB*1024))
	}
	// Views are written in batches of thousands of events: 16 KiB pages
	// write a rebuild with a quarter of the writes (1M events: 167,000 →
	// 200,000 events/s).
	w, err := sqlite.OpenPaged(ctx, path, 16<<10)
	if err == nil {
		if err = setup(w); err == nil {
			err = createSchema(w)
		}
		if err != nil {
			w.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open views %s: %w", path, err)
	}
	s := &Store{
		path:    path,
		readers: sqlite.NewPool(path, opts.Readers, setup),
		writer:  w,
		writing: make(chan struct{}, 1),
	}
	return s, nil
}

func createSchema(c *sqlite.Conn) (err error) {
	tx, err := c.BeginImmediate()
	if err != nil {
		return err
	}
	defer tx.End(&err)
	q, err := c.Stmt(`PRAGMA user_version`)
	if err != nil {
		return err
	}
	var version int64
	if q.Step() {
		version = q.ColumnInt64(0)
	}
	if err := q.Reset(); err != nil {
		return err
	}
	if version != 0 && version != schemaVersion {
		if err := c.Exec(dropAll); err != nil {
			return err
		}
	}
	return c.Exec(schema + fmt.Sprintf("PRAGMA user_version = %d;", schemaVersion))
}

// Path returns the file the views are kept in.
func (s *Store) Path() string { return s.path }

// Close closes the store. Calls in flight must have returned.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.writing <- struct{}{}
		err := s.writer.Close()
		if rerr := s.readers.Close(); err == nil {
			err = rerr
		}
		s.closeErr = err
	})
	return s.closeErr
}

// write runs fn on the writer connection inside an immediate transaction,
// committed if fn returns nil.
func (s *Store) write(ctx context.Context, fn func(*sqlite.Conn) error) (err error) {
	select {
	case s.writing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writing }()
	c := s.writer
	old := c.SetInterrupt(ctx)
	defer c.SetInterrupt(old)
	tx, err := c.BeginImmediate()
	if err != nil {
		return err
	}
	defer func() {
		tx.End(&err)
		if err != nil && ctx.Err() != nil {
			err = ctx.Err()
		}
	}()
	return fn(c)
}

// The two paces of WAL checkpoints (see the package doc), in pages, and
// the batch from which a batch is applied at the bulk pace.
const (
	walBulkPages      = 8000
	walFollowingPages = 1000
	bulkBatch         = 4096
)

// pace sets how often the writer c copies its WAL into the file, for a
// batch of events.
func pace(c *sqlite.Conn, events int) error {
	pages := walFollowingPages
	if events >= bulkBatch {
		pages = walBulkPages
	}
	if err := c.Exec(fmt.Sprintf(`PRAGMA wal_autocheckpoint=%d`, pages)); err != nil {
		return fmt.Errorf("set the WAL checkpoint pace: %w", err)
	}
	return nil
}

// read runs fn with a reader connection inside a read transaction, so that
// everything fn reads is one snapshot.
func (s *Store) read(ctx context.Context, fn func(*sqlite.Conn) error) error {
	c, err := s.readers.Get(ctx)
	if err != nil {
		return err
	}
	defer s.readers.Put(c)
	old := c.SetInterrupt(ctx)
	defer c.SetInterrupt(old)
	if err := c.Exec(`BEGIN`); err != nil {
		return err
	}
	err = fn(c)
	if rerr := c.Exec(`ROLLBACK`); err == nil {
		err = rerr
	}
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
