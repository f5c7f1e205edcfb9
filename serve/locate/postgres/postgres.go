// Package postgres is the block-location lookup in PostgreSQL (Aurora on
// AWS), in a schema of its own (SchemaName) beside the views, created by
// Setup (`pickup views setup`) and used by a least-privileged app role.
//
// A CAR is a row of cars, named in each of its blocks' rows by a 4-byte
// id; a block row holds its multihash, that id, its section's offset and
// length, and nothing else. The lookup is one query: the hash index on
// the multihash, joined to the CAR's row by its primary key. A hash index
// rather than a B-tree: its entries hold a 4-byte hash of the multihash,
// not the 34 bytes, and a lookup is equality only (README.md, "Block-
// location lookup", has the sizes measured). A CAR's blocks are found for
// Remove through a BRIN index on the CAR id: the blocks of a CAR are
// written together, in one COPY, so the heap is ordered by CAR and the
// BRIN index is a few pages for millions of rows.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/pgrole"
	"github.com/pickup-ipfs/pickup/serve/locate"
)

// SchemaName is the PostgreSQL schema of this version's tables. A change
// of the tables takes a new version, built beside the old.
const SchemaName = "pickup_locate_v1"

// setupLock is the advisory lock serializing setups of the lookup on one
// database.
const setupLock = 0x6c6f63617465 // "locate"

// tables are the lookup's; "locate." stands for the schema.
const tables = `
CREATE TABLE IF NOT EXISTS locate.cars (
	id      integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	car_cid bytea NOT NULL UNIQUE,
	root    bytea NOT NULL,
	key     text COLLATE "C" NOT NULL,
	bytes   bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS locate.blocks (
	off bigint NOT NULL,
	car integer NOT NULL,
	len integer NOT NULL,
	mh  bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_mh ON locate.blocks USING hash (mh);
CREATE INDEX IF NOT EXISTS blocks_car ON locate.blocks USING brin (car);
CREATE TABLE IF NOT EXISTS locate.checkpoint (
	id       int PRIMARY KEY CHECK (id = 1),
	position bigint NOT NULL
);
INSERT INTO locate.checkpoint (id, position) VALUES (1, 0) ON CONFLICT DO NOTHING;
`

// qualify puts the schema in place of "locate." in sql.
func qualify(sql string) string {
	return strings.ReplaceAll(sql, "locate.", pgx.Identifier{SchemaName}.Sanitize()+".")
}

// SetupOptions say what Setup makes besides the tables.
type SetupOptions struct {
	// AppRole is the role the application connects as: created if it
	// does not exist, its password set to AppPassword, and granted the use
	// of the lookup's tables and nothing more (pgrole.Grant). Empty: no
	// role is made.
	AppRole, AppPassword string
}

// appPrivileges are what the application does to the tables.
const appPrivileges = "SELECT, INSERT, UPDATE, DELETE"

// Setup creates the lookup's schema and tables in the database at url, if
// they do not exist, and creates or updates the app role, in one
// transaction. The URL's role must be allowed to create schemas and roles
// (on Amazon RDS, the master user). Running it again changes nothing but
// the role's password.
func Setup(ctx context.Context, url string, so SetupOptions) error {
	if so.AppRole != "" && so.AppPassword == "" {
		return fmt.Errorf("block lookup setup: app role %q has no password", so.AppRole)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("block lookup setup: %w", err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(setupLock)); err != nil {
			return err
		}
		s := pgx.Identifier{SchemaName}.Sanitize()
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		if _, err := tx.Exec(ctx, qualify(tables)); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
		if so.AppRole == "" {
			return nil
		}
		r := pgx.Identifier{so.AppRole}.Sanitize()
		return pgrole.Grant(ctx, tx, SchemaName, so.AppRole, so.AppPassword,
			`GRANT `+appPrivileges+` ON ALL TABLES IN SCHEMA `+s+` TO `+r,
			`GRANT USAGE ON ALL SEQUENCES IN SCHEMA `+s+` TO `+r)
	})
	if err != nil {
		return fmt.Errorf("block lookup setup %s: %w", SchemaName, err)
	}
	return nil
}

// ErrNotSetUp: the schema does not exist, or the role may not use it:
// `pickup views setup` (Setup) must run first.
var ErrNotSetUp = errors.New("block lookup not set up")

// Credentials returns the user name and password of a new connection;
// it is called from many goroutines, once per new connection.
type Credentials func(ctx context.Context) (user, password string, err error)

// Options tune a Store. The zero value of each field means its default.
type Options struct {
	// MaxConns is the most connections open at once. Default: pgxpool's.
	MaxConns int32
	// Credentials, if set, gives every new connection's user and password
	// instead of the URL's.
	Credentials Credentials
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.MaxConns < 0 {
		return fmt.Errorf("postgres block lookup: negative connection count %d", o.MaxConns)
	}
	return nil
}

// Store is the lookup in PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool      *pgxpool.Pool
	closeOnce sync.Once
}

var _ locate.Store = (*Store)(nil)

// Open connects to the database at url and checks that the lookup is set
// up there and usable by the role (ErrNotSetUp otherwise). It creates
// nothing.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open block lookup: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if get := opts.Credentials; get != nil {
		cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
			var err error
			cc.User, cc.Password, err = get(ctx)
			return err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open block lookup: %w", err)
	}
	s := &Store{pool: pool}
	if _, err := s.Checkpoint(ctx); err != nil {
		pool.Close()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "42501" || pgErr.Code == "42P01" || pgErr.Code == "3F000") {
			return nil, fmt.Errorf("open block lookup: %w: %s: run `pickup views setup` with this role as the app role", ErrNotSetUp, strings.TrimSpace(pgErr.Message))
		}
		return nil, fmt.Errorf("open block lookup: %w", err)
	}
	return s, nil
}

// Close closes the connections. Calls in flight must have returned.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// Locate is one query.
func (s *Store) Locate(ctx context.Context, mh multihash.Multihash) ([]locate.Location, error) {
	rows, err := s.pool.Query(ctx, qualify(`SELECT c.car_cid, c.root, c.key, b.off, b.len FROM locate.blocks b JOIN locate.cars c ON c.id = b.car WHERE b.mh = $1`), []byte(mh))
	if err != nil {
		return nil, fmt.Errorf("locate %s: %w", mh.B58String(), err)
	}
	defer rows.Close()
	var out []locate.Location
	for rows.Next() {
		var carCID, root []byte
		var l locate.Location
		var length int32
		if err := rows.Scan(&carCID, &root, &l.Key, &l.Offset, &length); err != nil {
			return nil, fmt.Errorf("locate %s: %w", mh.B58String(), err)
		}
		if l.CarCID, err = cid.Cast(carCID); err != nil {
			return nil, fmt.Errorf("locate %s: CAR CID: %w", mh.B58String(), err)
		}
		if l.Root, err = cid.Cast(root); err != nil {
			return nil, fmt.Errorf("locate %s: root: %w", mh.B58String(), err)
		}
		l.Length = int64(length)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("locate %s: %w", mh.B58String(), err)
	}
	return out, nil
}

// copyBatch is how many block rows one COPY message batch holds; the
// whole CAR is one COPY in one transaction.
const copyBatch = 8192

// Add writes the CAR's row and, if it is new, its blocks with one COPY, in
// one transaction. Two Adds of one CAR at once: the second waits on the
// first's row (the unique CAR CID) and finds it recorded.
func (s *Store) Add(ctx context.Context, car locate.CAR, entries []locate.Entry) error {
	entries, err := locate.Check(car, entries)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Length > 1<<31-1 {
			return fmt.Errorf("add CAR %s: %w: a section of %d bytes", car.CarCID, locate.ErrInvalid, e.Length)
		}
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int32
		err := tx.QueryRow(ctx, qualify(`INSERT INTO locate.cars (car_cid, root, key, bytes) VALUES ($1, $2, $3, $4) ON CONFLICT (car_cid) DO NOTHING RETURNING id`),
			car.CarCID.Bytes(), car.Root.Bytes(), car.Key, car.Bytes).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // recorded before
		}
		if err != nil {
			return err
		}
		i := 0
		_, err = tx.CopyFrom(ctx, pgx.Identifier{SchemaName, "blocks"}, []string{"off", "car", "len", "mh"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == len(entries) {
					return nil, nil
				}
				if i%copyBatch == 0 && ctx.Err() != nil {
					return nil, ctx.Err()
				}
				e := entries[i]
				i++
				return []any{e.Offset, id, int32(e.Length), []byte(e.Multihash)}, nil
			}))
		return err
	})
	if err != nil {
		return fmt.Errorf("add CAR %s: %w", car.CarCID, err)
	}
	return nil
}

// Remove deletes the CAR's blocks and its row in one transaction.
func (s *Store) Remove(ctx context.Context, carCID cid.Cid) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int32
		err := tx.QueryRow(ctx, qualify(`DELETE FROM locate.cars WHERE car_cid = $1 RETURNING id`), carCID.Bytes()).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, qualify(`DELETE FROM locate.blocks WHERE car = $1`), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove CAR %s: %w", carCID, err)
	}
	return nil
}

// Has reports whether the CAR is recorded.
func (s *Store) Has(ctx context.Context, carCID cid.Cid) (bool, error) {
	var has bool
	if err := s.pool.QueryRow(ctx, qualify(`SELECT EXISTS (SELECT 1 FROM locate.cars WHERE car_cid = $1)`), carCID.Bytes()).Scan(&has); err != nil {
		return false, fmt.Errorf("has CAR %s: %w", carCID, err)
	}
	return has, nil
}

// Checkpoint is the loader's position.
func (s *Store) Checkpoint(ctx context.Context) (eventlog.Position, error) {
	var pos int64
	if err := s.pool.QueryRow(ctx, qualify(`SELECT position FROM locate.checkpoint WHERE id = 1`)).Scan(&pos); err != nil {
		return 0, fmt.Errorf("block lookup checkpoint: %w", err)
	}
	return eventlog.Position(pos), nil
}

// SetCheckpoint moves the loader's position forwards.
func (s *Store) SetCheckpoint(ctx context.Context, pos eventlog.Position) error {
	if _, err := s.pool.Exec(ctx, qualify(`UPDATE locate.checkpoint SET position = greatest(position, $1) WHERE id = 1`), int64(pos)); err != nil {
		return fmt.Errorf("set block lookup checkpoint: %w", err)
	}
	return nil
}
