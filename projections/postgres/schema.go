package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/pgrole"
)

// schemaLock is the advisory lock that serializes the creation of views
// (and of the app role's grants) between processes on one database.
const schemaLock = 0x7069636b7570 // "pickup"

// tables are the views of SchemaVersion; "pickup_views." stands for its
// schema (schemaMarker). {trgm} is the schema holding pg_trgm, whose
// operator class the trigram index names: the extension is the
// database's, shared by every version, so no version's schema owns it and
// dropping a version leaves it to the others.
const tables = `
CREATE TABLE IF NOT EXISTS pickup_views.pins (
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
CREATE UNIQUE INDEX IF NOT EXISTS pins_seq ON pickup_views.pins (tenant, seq);
CREATE INDEX IF NOT EXISTS pins_created ON pickup_views.pins (tenant, created, seq);
CREATE INDEX IF NOT EXISTS pins_status ON pickup_views.pins (tenant, list_status, seq) WHERE list_status IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_cid ON pickup_views.pins (tenant, cid_key, seq);
CREATE INDEX IF NOT EXISTS pins_name_fold ON pickup_views.pins (tenant, name_fold, seq);
CREATE INDEX IF NOT EXISTS pins_name_trigrams ON pickup_views.pins USING gin (name_fold {trgm}.gin_trgm_ops);
CREATE INDEX IF NOT EXISTS pins_due ON pickup_views.pins (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_root_due ON pickup_views.pins (cid_key, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_root_claimed ON pickup_views.pins (cid_key) WHERE lease_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_lease ON pickup_views.pins (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_failed ON pickup_views.pins (failed_at) WHERE failed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS pins_car ON pickup_views.pins (cid_key) WHERE list_status = 'pinned';

CREATE TABLE IF NOT EXISTS pickup_views.pin_meta (
	tenant text COLLATE "C" NOT NULL,
	key    text COLLATE "C" NOT NULL,
	value  text COLLATE "C" NOT NULL,
	seq    bigint NOT NULL,
	PRIMARY KEY (tenant, key, value, seq)
);

CREATE TABLE IF NOT EXISTS pickup_views.tenants (
	tenant       text COLLATE "C" PRIMARY KEY,
	last_seq     bigint NOT NULL,
	last_created bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS pickup_views.tenant_blocks (
	tenant text COLLATE "C" NOT NULL,
	status text COLLATE "C" NOT NULL,
	block  bigint NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (tenant, status, block)
);

CREATE TABLE IF NOT EXISTS pickup_views.meta_blocks (
	tenant text COLLATE "C" NOT NULL,
	key    text COLLATE "C" NOT NULL,
	value  text COLLATE "C" NOT NULL,
	status text COLLATE "C" NOT NULL,
	block  bigint NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (tenant, key, value, status, block)
);

CREATE TABLE IF NOT EXISTS pickup_views.totals (
	name text COLLATE "C" PRIMARY KEY,
	n    bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS pickup_views.tokens (
	token_id uuid PRIMARY KEY,
	tenant   text COLLATE "C" NOT NULL,
	hash     bytea NOT NULL,
	label    text COLLATE "C" NOT NULL,
	created  bigint NOT NULL,
	revoked  boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_hash ON pickup_views.tokens (hash);
CREATE INDEX IF NOT EXISTS tokens_tenant ON pickup_views.tokens (tenant, created);

CREATE TABLE IF NOT EXISTS pickup_views.roots (
	root           text COLLATE "C" PRIMARY KEY,
	live           bigint NOT NULL,
	has_car        boolean NOT NULL,
	released_at    bigint NOT NULL,
	deleting_until bigint NOT NULL,
	gc_at          bigint
);
CREATE INDEX IF NOT EXISTS roots_gc ON pickup_views.roots (gc_at, root) WHERE gc_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS pickup_views.checkpoint (
	id       int PRIMARY KEY CHECK (id = 1),
	position bigint NOT NULL
);
INSERT INTO pickup_views.checkpoint (id, position) VALUES (1, 0) ON CONFLICT DO NOTHING;
`

// create creates the views of version in their schema, if they do not
// exist, in tx: all of it or nothing.
func create(ctx context.Context, tx pgx.Tx, version int) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLock)); err != nil {
		return err
	}
	var trgm string
	err := tx.QueryRow(ctx, `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'`).Scan(&trgm)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := tx.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public`); err != nil {
			return fmt.Errorf("create extension pg_trgm: %w", err)
		}
		trgm = "public"
	} else if err != nil {
		return err
	}
	schema := SchemaName(version)
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	ddl := qualify(strings.ReplaceAll(tables, "{trgm}", pgx.Identifier{trgm}.Sanitize()), schemaPrefix(schema))
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("create tables in %s: %w", schema, err)
	}
	return nil
}

// SetupOptions say what Setup makes besides the tables.
type SetupOptions struct {
	// AppRole is the role the application connects as, created when it
	// does not exist, its password set to AppPassword either way, and
	// granted what the application needs on this version's views and
	// nothing more. Empty: no role is made (the application connects as
	// the role that runs Setup).
	AppRole, AppPassword string

	// version is the tables' version; 0 means SchemaVersion. Only tests
	// set it (export_test.go).
	version int
}

// appPrivileges are the table privileges the application uses: reads,
// the projection's writes, and TRUNCATE for Reset (`pickup replay`).
const appPrivileges = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE"

// Setup creates this version's views in the database at url, if they do
// not exist, and creates or updates the app role (see SetupOptions), in
// one transaction. The URL's role must be allowed to create schemas and
// roles (on Amazon RDS, the master user). Running it again changes
// nothing but the role's password: deploys run it every time.
func Setup(ctx context.Context, url string, so SetupOptions) error {
	if so.AppRole != "" && so.AppPassword == "" {
		return fmt.Errorf("views setup: app role %q has no password", so.AppRole)
	}
	version := so.version
	if version == 0 {
		version = SchemaVersion
	}
	schema := SchemaName(version)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("views setup: %w", err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := create(ctx, tx, version); err != nil {
			return err
		}
		if so.AppRole == "" {
			return nil
		}
		return grantApp(ctx, tx, schema, so.AppRole, so.AppPassword)
	})
	if err != nil {
		return fmt.Errorf("views setup %s: %w", schema, err)
	}
	return nil
}

// grantApp creates or updates the app role and grants it the use of
// schema's tables, and takes from it any right to create (pgrole.Grant).
func grantApp(ctx context.Context, tx pgx.Tx, schema, role, password string) error {
	return pgrole.Grant(ctx, tx, schema, role, password,
		`GRANT `+appPrivileges+` ON ALL TABLES IN SCHEMA `+pgx.Identifier{schema}.Sanitize()+` TO `+pgx.Identifier{role}.Sanitize())
}

// legacyVersions are the versions that kept their tables in the schema
// public, recorded in public.views_schema; legacyTables are those tables.
const (
	legacyVersions = 4
	legacyTables   = `public.pins, public.pin_meta, public.tenants, public.tenant_blocks, public.meta_blocks, public.totals, public.tokens, public.checkpoint, public.views_schema`
)

// ErrNoVersion is returned by Drop for a version with no views in the
// database.
var ErrNoVersion = errors.New("no views of that version")

// Drop deletes the views of version from the database at url: its schema
// (pickup_views_v<N>), or for versions up to 4 their tables in public. It
// refuses SchemaVersion, this binary's own. Processes of that version must
// all be gone: their reads and writes fail from then on. The URL's role
// must own the views (the role that ran Setup).
func Drop(ctx context.Context, url string, version int) error {
	if version == SchemaVersion {
		return fmt.Errorf("drop views: version %d is this binary's own: drop it with a binary of another version, once no process of version %d runs", version, version)
	}
	if version < 1 {
		return fmt.Errorf("drop views: version %d: want a version from 1", version)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("drop views: %w", err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLock)); err != nil {
			return err
		}
		if version <= legacyVersions {
			legacy, err := legacyVersion(ctx, tx)
			if err != nil {
				return err
			}
			if legacy != version {
				return fmt.Errorf("%w: public holds views of version %d", ErrNoVersion, legacy)
			}
			_, err = tx.Exec(ctx, `DROP TABLE IF EXISTS `+legacyTables)
			return err
		}
		schema := SchemaName(version)
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%w: no schema %s", ErrNoVersion, schema)
		}
		_, err := tx.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
		return err
	})
	if err != nil {
		return fmt.Errorf("drop views of version %d: %w", version, err)
	}
	return nil
}

// legacyVersion is the version public.views_schema records, 0 for none.
func legacyVersion(ctx context.Context, tx pgx.Tx) (int, error) {
	var present bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('public.views_schema') IS NOT NULL`).Scan(&present); err != nil || !present {
		return 0, err
	}
	var v int
	err := tx.QueryRow(ctx, `SELECT version FROM public.views_schema`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// VersionInfo is one version of the views found in a database.
type VersionInfo struct {
	Version int
	// Schema holds its tables ("public" for versions up to 4).
	Schema string
	// Checkpoint is the log position its views reflect.
	Checkpoint eventlog.Position
}

var versionedSchema = regexp.MustCompile(`^pickup_views_v([0-9]+)$`)

// Versions lists the versions of the views in the database at url, oldest
// first, with their checkpoints: what an operator checks before Drop. The
// URL's role must be able to read every version's checkpoint.
func Versions(ctx context.Context, url string) ([]VersionInfo, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("list views versions: %w", err)
	}
	defer conn.Close(ctx)
	var out []VersionInfo
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		legacy, err := legacyVersion(ctx, tx)
		if err != nil {
			return err
		}
		if legacy != 0 {
			out = append(out, VersionInfo{Version: legacy, Schema: "public"})
		}
		rows, err := tx.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pickup\_views\_v%'`)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, n := range names {
			if m := versionedSchema.FindStringSubmatch(n); m != nil {
				v, _ := strconv.Atoi(m[1])
				out = append(out, VersionInfo{Version: v, Schema: n})
			}
		}
		for i := range out {
			var cp int64
			q := `SELECT position FROM ` + pgx.Identifier{out[i].Schema, "checkpoint"}.Sanitize() + ` WHERE id = 1`
			if err := tx.QueryRow(ctx, q).Scan(&cp); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("checkpoint of %s: %w", out[i].Schema, err)
			}
			out[i].Checkpoint = eventlog.Position(cp)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list views versions: %w", err)
	}
	slices.SortFunc(out, func(a, b VersionInfo) int { return a.Version - b.Version })
	return out, nil
}
