// Package postgres keeps pickup's views in PostgreSQL, for deployments
// where several gateways read the views and the embedded file will not do.
// It holds the same rows as the embedded store, computed by the same
// function (viewrow.Batch.Project), and passes the same conformance
// suite.
//
// # Versions side by side
//
// Each version of the tables (SchemaVersion) lives in a PostgreSQL schema
// of its own, pickup_views_v<N>, beside the others in one database. A
// process of version N reads and writes only that schema: every statement
// names it, so no session state (a search_path, which a proxy such as RDS
// Proxy could share between clients of two versions) decides where a
// statement goes. Its projector builds it from the log, from position
// zero, while processes of other versions keep serving theirs. A rolling
// deploy that changes the tables therefore never drops the views the old
// processes read; the new version's readers answer 503 with Retry-After
// (or from the log) until its views catch up (cmd/pickup). Nothing drops a
// version at start: Drop does, as an explicit operator step (`pickup views
// drop --version N`), and refuses the binary's own version. Versions up to
// 4 kept their tables unversioned in the schema public; they are left
// alone too, and Drop removes them.
//
// # Roles
//
// Setup, run with a role that may create schemas (`pickup views setup`,
// once per version and harmless to repeat), creates this version's schema
// and tables and creates or updates the application role: LOGIN with its
// password, USAGE on the schema and SELECT, INSERT, UPDATE, DELETE and
// TRUNCATE (Reset empties the tables) on its tables, and no CREATE on the
// database or any schema. Open never creates anything as a role that
// lacks the right: it fails with ErrNotSetUp, naming `pickup views setup`.
// A role that may create schemas in the database (its owner, as on a
// developer's PostgreSQL) gets the views created by Open itself.
//
// # Passwords
//
// With Options.Credentials, every new connection asks for the user name and
// password (cached for Options.CredentialsTTL), and asks again at once
// after the server refused them, retrying the operation that connected
// once: a rotated password is picked up by the open pool, without a
// restart.
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
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the views in a PostgreSQL database. It is safe for concurrent
// use.
type Store struct {
	pool      db
	schema    string
	closeOnce sync.Once
}

// SchemaVersion is the version of this binary's tables (schema.go). A
// change of the tables or of what the projection writes into them takes a
// new version, which is built beside the old ones. Version 6 added the
// roots view (the garbage collector's candidates).
const SchemaVersion = 6

// SchemaName is the PostgreSQL schema holding the views of a version.
func SchemaName(version int) string { return fmt.Sprintf("pickup_views_v%d", version) }

// ErrNotSetUp is returned by Open when this version's views do not exist
// and the role cannot create them, or when the role holds no rights on
// them: `pickup views setup` (Setup) must run first.
var ErrNotSetUp = errors.New("views not set up")

// DefaultCredentialsTTL is how long the credentials Options.Credentials
// gives are used for new connections before they are asked for again. A
// rotation is seen sooner: credentials the server refuses are asked for
// again at once.
const DefaultCredentialsTTL = time.Minute

// Credentials returns the user name and password of a new connection.
// It is called from many goroutines, once per new connection at most.
type Credentials func(ctx context.Context) (user, password string, err error)

// Options tune a Store. The zero value of each field means its default.
type Options struct {
	// MaxConns is the most connections open at once. Default: pgxpool's
	// (the larger of 4 and the number of CPUs).
	MaxConns int32
	// Credentials, if set, gives the user name and password of every new
	// connection, instead of the URL's (a Secrets Manager secret, read
	// again when it may have been rotated).
	Credentials Credentials
	// CredentialsTTL is how long Credentials' answer is reused. Default
	// DefaultCredentialsTTL.
	CredentialsTTL time.Duration

	// version is the tables' version; 0 means SchemaVersion. Only tests
	// set it (export_test.go), to run two versions side by side.
	version int
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.MaxConns < 0 {
		return fmt.Errorf("postgres views: negative connection count %d", o.MaxConns)
	}
	if o.CredentialsTTL < 0 {
		return fmt.Errorf("postgres views: negative credentials TTL %v", o.CredentialsTTL)
	}
	return nil
}

func (o Options) schemaVersion() int {
	if o.version == 0 {
		return SchemaVersion
	}
	return o.version
}

// Open connects to the database at url (postgres://...) and opens this
// version's views there. When they do not exist yet, Open creates them if
// the role may create schemas in the database, and otherwise fails with
// ErrNotSetUp. It never touches another version's views.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	version := opts.schemaVersion()
	schema := SchemaName(version)
	cfg, err := poolConfig(url, opts)
	if err != nil {
		return nil, fmt.Errorf("open views: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open views: %w", err)
	}
	s := &Store{pool: db{pool: pool, retryAuth: opts.Credentials != nil, prefix: schemaPrefix(schema)}, schema: schema}
	if err := s.ready(ctx, version); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open views %s: %w", schema, err)
	}
	return s, nil
}

// poolConfig is the pool's configuration: its credentials come from
// opts.Credentials when set.
func poolConfig(url string, opts Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.Credentials != nil {
		ttl := opts.CredentialsTTL
		if ttl == 0 {
			ttl = DefaultCredentialsTTL
		}
		cfg.BeforeConnect = (&credentialCache{get: opts.Credentials, ttl: ttl, now: time.Now}).beforeConnect
	}
	return cfg, nil
}

// ready checks that the views of version exist and that the role may use
// them, creating them first when they do not exist and the role may.
func (s *Store) ready(ctx context.Context, version int) error {
	var exists, usable, mayCreate bool
	var role string
	err := s.pool.QueryRow(ctx, `SELECT current_user,
		EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
		CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) THEN has_schema_privilege($1, 'USAGE') ELSE false END,
		has_database_privilege(current_database(), 'CREATE')`, s.schema).Scan(&role, &exists, &usable, &mayCreate)
	if err != nil {
		return err
	}
	switch {
	case !exists && !mayCreate:
		return fmt.Errorf("%w: schema %s does not exist and role %q may not create it: run `pickup views setup` (as a role that may, once per version)", ErrNotSetUp, s.schema, role)
	case !exists:
		if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return create(ctx, tx, version) }); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
	case !usable:
		return fmt.Errorf("%w: role %q has no rights on schema %s: run `pickup views setup` with this role as the app role", ErrNotSetUp, role, s.schema)
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "42501" || pgErr.Code == "42P01") {
			return fmt.Errorf("%w: role %q cannot read the views of schema %s (%s): run `pickup views setup` with this role as the app role", ErrNotSetUp, role, s.schema, strings.TrimSpace(pgErr.Message))
		}
		return err
	}
	return nil
}

// Close closes the connections. Calls in flight must have returned.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.pool.Close)
	return nil
}

// snapshot runs fn in a read-only transaction that sees one snapshot.
func (s *Store) snapshot(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}
