package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/postgrestest"
	"github.com/pickup-ipfs/pickup/projections/embedded"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/postgres"
	"github.com/pickup-ipfs/pickup/projections/viewtest"
)

const appPassword = "app password, first of its name"

// appRole names the app role of a test database: roles belong to the
// whole server, so each database gets its own.
func appRole(t testing.TB, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return "app_" + strings.TrimPrefix(u.Path, "/")
}

func withUser(t testing.TB, dbURL, user, password string) string {
	t.Helper()
	u, err := postgrestest.WithUser(dbURL, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// setUp makes a database with this version's views set up and an app
// role, and returns the admin's URL and the app role's.
func setUp(t testing.TB, versions ...int) (admin, app string) {
	t.Helper()
	admin = pg.NewDatabase(t)
	role := appRole(t, admin)
	if len(versions) == 0 {
		versions = []int{postgres.SchemaVersion}
	}
	for _, v := range versions {
		so := postgres.SetupVersion(postgres.SetupOptions{AppRole: role, AppPassword: appPassword}, v)
		if err := postgres.Setup(context.Background(), admin, so); err != nil {
			t.Fatal(err)
		}
	}
	return admin, withUser(t, admin, role, appPassword)
}

func open(t testing.TB, location string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), location, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// applyAll applies the events to the store in batches of n, as a runner
// catching up does.
func applyAll(t testing.TB, s *postgres.Store, evs []eventlog.Event, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < len(evs); i += n {
		if _, err := s.Apply(ctx, evs[i].Position-1, viewrow.Prepare(evs[i:min(i+n, len(evs))])); err != nil {
			t.Fatal(err)
		}
	}
}

// reference is the embedded store's views of the events: what every
// version must answer.
func reference(t testing.TB, evs []eventlog.Event) *embedded.Store {
	t.Helper()
	file, err := embedded.Open(context.Background(), filepath.Join(t.TempDir(), "views.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { file.Close() })
	if _, err := file.Apply(context.Background(), 0, viewrow.Prepare(evs)); err != nil {
		t.Fatal(err)
	}
	return file
}

func exec(t testing.TB, location, sql string) error {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, location)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// A rolling deploy: the old version's processes keep reading and writing
// their views while the new version's projector builds its own from the
// log in the same database. Both follow one log, both answer as the
// embedded store does, and opening either (a restart) leaves the other's
// views as they were.
func TestTwoVersionsFollowOneLog(t *testing.T) {
	ctx := context.Background()
	const older, newer = postgres.SchemaVersion, postgres.SchemaVersion + 1
	_, app := setUp(t, older, newer)
	evs := viewtest.Events(viewtest.History(viewtest.HistoryConfig{Events: 3000, Seed: 5, Junk: true}))
	half := len(evs) / 2

	old := open(t, app, postgres.WithVersion(postgres.Options{}, older))
	applyAll(t, old, evs[:half], 500)
	// The new version starts while the old one is half way: empty views,
	// checkpoint zero, whatever the old version holds.
	fresh := open(t, app, postgres.WithVersion(postgres.Options{}, newer))
	if cp, err := fresh.Checkpoint(ctx); err != nil || cp != 0 {
		t.Fatalf("new version's checkpoint = %d, %v; want 0: it builds its views from the log", cp, err)
	}
	if cp, err := old.Checkpoint(ctx); err != nil || cp != evs[half-1].Position {
		t.Fatalf("old version's checkpoint = %d, %v after the new one opened; want %d", cp, err, evs[half-1].Position)
	}
	// Both follow the log from there, batches interleaved.
	for i := 0; i < len(evs); i += 400 {
		end := min(i+400, len(evs))
		if end > half {
			applyAll(t, old, evs[max(i, half):end], 400)
		}
		applyAll(t, fresh, evs[i:end], 400)
	}
	// A restart of each, the other running.
	fresh.Close()
	fresh = open(t, app, postgres.WithVersion(postgres.Options{}, newer))
	old.Close()
	old = open(t, app, postgres.WithVersion(postgres.Options{}, older))

	want := reference(t, evs)
	viewtest.SameViews(t, old, want)
	viewtest.SameViews(t, fresh, want)
	if old.Schema() == fresh.Schema() {
		t.Fatalf("both versions in schema %s", old.Schema())
	}
}

// Dropping a version is the operator's step, and touches no other version.
func TestDropLeavesOtherVersions(t *testing.T) {
	ctx := context.Background()
	const current, other = postgres.SchemaVersion, postgres.SchemaVersion + 1
	admin, app := setUp(t, current, other)
	evs := viewtest.Events(viewtest.History(viewtest.HistoryConfig{Events: 500, Seed: 9}))
	s := open(t, app, postgres.Options{})
	applyAll(t, s, evs, 100)

	err := postgres.Drop(ctx, admin, current)
	if err == nil || !strings.Contains(err.Error(), "this binary's own") {
		t.Fatalf("Drop of the running version = %v, want a refusal", err)
	}
	if err := postgres.Drop(ctx, admin, other); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Drop(ctx, admin, other); !errors.Is(err, postgres.ErrNoVersion) {
		t.Fatalf("Drop of a dropped version = %v, want ErrNoVersion", err)
	}
	versions, err := postgres.Versions(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1 || versions[0].Version != current || versions[0].Checkpoint != evs[len(evs)-1].Position {
		t.Fatalf("versions after the drop = %+v, want only %d at %d", versions, current, evs[len(evs)-1].Position)
	}
	viewtest.SameViews(t, s, reference(t, evs))
}

// A database that the last unversioned binaries (version 4, tables in
// public) still use: this version builds beside them and never drops
// them; `pickup views drop --version 4` does, once they are gone.
func TestLegacyTablesSurviveUntilDropped(t *testing.T) {
	ctx := context.Background()
	admin := pg.NewDatabase(t)
	fixture, err := os.ReadFile("testdata/v4.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := exec(t, admin, string(fixture)); err != nil {
		t.Fatal(err)
	}
	role := appRole(t, admin)
	if err := postgres.Setup(ctx, admin, postgres.SetupOptions{AppRole: role, AppPassword: appPassword}); err != nil {
		t.Fatal(err)
	}
	s := open(t, withUser(t, admin, role, appPassword), postgres.Options{})
	evs := viewtest.Events(viewtest.History(viewtest.HistoryConfig{Events: 300, Seed: 3}))
	applyAll(t, s, evs, 100)
	viewtest.SameViews(t, s, reference(t, evs))

	legacyCheckpoint := func() (int64, error) {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return 0, err
		}
		defer c.Close(ctx)
		var cp int64
		err = c.QueryRow(ctx, `SELECT position FROM public.checkpoint`).Scan(&cp)
		return cp, err
	}
	if cp, err := legacyCheckpoint(); err != nil || cp != 42 {
		t.Fatalf("version 4's checkpoint = %d, %v; want 42, untouched", cp, err)
	}
	versions, err := postgres.Versions(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 || versions[0] != (postgres.VersionInfo{Version: 4, Schema: "public", Checkpoint: 42}) || versions[1].Version != postgres.SchemaVersion {
		t.Fatalf("versions = %+v, want 4 in public at 42 and %d", versions, postgres.SchemaVersion)
	}
	if err := postgres.Drop(ctx, admin, 3); !errors.Is(err, postgres.ErrNoVersion) {
		t.Fatalf("Drop of version 3 with version 4 in public = %v, want ErrNoVersion", err)
	}
	if err := postgres.Drop(ctx, admin, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := legacyCheckpoint(); sqlState(err) != "42P01" {
		t.Fatalf("version 4's checkpoint after the drop: %v, want no such table", err)
	}
	viewtest.SameViews(t, s, reference(t, evs))
}

// The app role gets what the application uses and nothing more; without
// setup it cannot make the views itself, and says what to run.
func TestLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	admin := pg.NewDatabase(t)
	role := appRole(t, admin)
	app := withUser(t, admin, role, appPassword)
	if err := exec(t, admin, `CREATE ROLE `+role+` LOGIN PASSWORD '`+appPassword+`'`); err != nil {
		t.Fatal(err)
	}

	_, err := postgres.Open(ctx, app, postgres.Options{})
	if !errors.Is(err, postgres.ErrNotSetUp) || !strings.Contains(err.Error(), "pickup views setup") {
		t.Fatalf("Open as the app role before setup = %v, want ErrNotSetUp naming `pickup views setup`", err)
	}
	versions, err := postgres.Versions(ctx, admin)
	if err != nil || len(versions) != 0 {
		t.Fatalf("views after a refused Open: %+v, %v; want none", versions, err)
	}

	if err := postgres.Setup(ctx, admin, postgres.SetupOptions{AppRole: role, AppPassword: appPassword}); err != nil {
		t.Fatal(err)
	}
	s := open(t, app, postgres.Options{})
	evs := viewtest.Events(viewtest.History(viewtest.HistoryConfig{Events: 300, Seed: 4}))
	applyAll(t, s, evs, 100)
	if err := s.Reset(ctx); err != nil {
		t.Fatalf("Reset as the app role: %v", err)
	}
	applyAll(t, s, evs, 300)
	viewtest.SameViews(t, s, reference(t, evs))

	schema := postgres.SchemaName(postgres.SchemaVersion)
	for _, sql := range []string{
		`CREATE SCHEMA intruder`,
		`CREATE TABLE ` + schema + `.intruder (x int)`,
		`CREATE TABLE public.intruder (x int)`,
		`DROP TABLE ` + schema + `.pins`,
		`ALTER TABLE ` + schema + `.pins ADD COLUMN x int`,
		`DROP SCHEMA ` + schema + ` CASCADE`,
	} {
		if err := exec(t, app, sql); sqlState(err) != "42501" {
			t.Errorf("as the app role, %s: %v; want permission denied (42501)", sql, err)
		}
	}
	if _, err := pgx.Connect(ctx, withUser(t, admin, role, "not the password")); sqlState(err) != "28P01" {
		t.Fatalf("the app role with a wrong password: %v, want it refused (28P01)", err)
	}

	if err := postgres.Setup(ctx, admin, postgres.SetupOptions{AppRole: "postgres", AppPassword: "x"}); err == nil {
		t.Fatal("Setup made the admin role the app role")
	}
}

// Setup runs on every deploy: again, it changes nothing but the role's
// password, and the views it made keep their rows.
func TestSetupIsIdempotent(t *testing.T) {
	ctx := context.Background()
	admin, app := setUp(t)
	role := appRole(t, admin)
	s := open(t, app, postgres.Options{})
	evs := viewtest.Events(viewtest.History(viewtest.HistoryConfig{Events: 400, Seed: 8}))
	applyAll(t, s, evs, 100)

	for range 2 {
		if err := postgres.Setup(ctx, admin, postgres.SetupOptions{AppRole: role, AppPassword: appPassword}); err != nil {
			t.Fatal(err)
		}
	}
	viewtest.SameViews(t, s, reference(t, evs))
	if err := postgres.Setup(ctx, admin, postgres.SetupOptions{AppRole: role, AppPassword: "the next password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, app, postgres.Options{}); sqlState(err) != "28P01" {
		t.Fatalf("Open with the password setup replaced: %v, want it refused", err)
	}
	again := open(t, withUser(t, admin, role, "the next password"), postgres.Options{})
	viewtest.SameViews(t, again, reference(t, evs))
	versions, err := postgres.Versions(ctx, admin)
	if err != nil || len(versions) != 1 {
		t.Fatalf("versions after three setups: %+v, %v; want one", versions, err)
	}
}

// A rotated password reaches the open store: the role's password and the
// credentials' answer change, the pool's connections go, and the next
// query connects with the new password, without reopening the store.
func TestRotatedPasswordWithoutReopening(t *testing.T) {
	ctx := context.Background()
	admin, _ := setUp(t)
	role := appRole(t, admin)
	var current atomic.Value
	current.Store(appPassword)
	var asked atomic.Int64
	s := open(t, withUser(t, admin, "nobody", ""), postgres.Options{
		// A long TTL: the store must not wait for it after a refusal.
		CredentialsTTL: 24 * 365 * 3600e9,
		Credentials: func(context.Context) (string, string, error) {
			asked.Add(1)
			return role, current.Load().(string), nil
		},
	})
	evs := viewtest.Events(viewtest.History(viewtest.HistoryConfig{Events: 200, Seed: 6}))
	applyAll(t, s, evs[:100], 100)

	if err := exec(t, admin, `ALTER ROLE `+role+` PASSWORD 'rotated'`); err != nil {
		t.Fatal(err)
	}
	current.Store("rotated")
	before := asked.Load()
	s.CloseConnections()
	if cp, err := s.Checkpoint(ctx); err != nil || cp != evs[99].Position {
		t.Fatalf("checkpoint after the rotation = %d, %v; want %d", cp, err, evs[99].Position)
	}
	if asked.Load() == before {
		t.Fatal("the credentials were not asked for again after the server refused them")
	}
	applyAll(t, s, evs[100:], 100)
	viewtest.SameViews(t, s, reference(t, evs))
}
