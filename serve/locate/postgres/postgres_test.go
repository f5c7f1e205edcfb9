package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/postgrestest"
	"github.com/pickup-ipfs/pickup/serve/locate"
	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
	"github.com/pickup-ipfs/pickup/serve/locate/postgres"
)

var pg = postgrestest.Shared{Options: postgrestest.Options{Passwords: true}}

func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }

const appRole, appPassword = "pickup_locate_app", "app-password"

// roles numbers the app roles of setUp: roles are the server's, not a
// database's, and two setups altering one role at once fail ("tuple
// concurrently updated"), so each database has its own.
var roles atomic.Int64

// setUp makes a new database with the lookup set up in it, and returns
// its admin URL and the app role's.
func setUp(t testing.TB) (admin, app string) {
	t.Helper()
	admin = pg.NewDatabase(t)
	role := fmt.Sprintf("%s_%d", appRole, roles.Add(1))
	if err := postgres.Setup(context.Background(), admin, postgres.SetupOptions{AppRole: role, AppPassword: appPassword}); err != nil {
		t.Fatal(err)
	}
	app, err := postgrestest.WithUser(admin, role, appPassword)
	if err != nil {
		t.Fatal(err)
	}
	return admin, app
}

func open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fresh is the suite's opener: a new database, set up, used as the app
// role: what the app role was granted is what the suite needs.
func fresh(t *testing.T) func(t *testing.T) locate.Store {
	_, app := setUp(t)
	return func(t *testing.T) locate.Store { return open(t, app) }
}

func TestConformance(t *testing.T) { locatetest.Run(t, fresh) }

// Setup twice is setup once; Open before Setup is ErrNotSetUp.
func TestSetup(t *testing.T) {
	ctx := context.Background()
	bare := pg.NewDatabase(t)
	app, err := postgrestest.WithUser(bare, appRole, appPassword)
	if err != nil {
		t.Fatal(err)
	}
	// The role may exist (another test's setup) but not the schema.
	if _, err := postgres.Open(ctx, bare, postgres.Options{}); !errors.Is(err, postgres.ErrNotSetUp) {
		t.Fatalf("Open before Setup: %v, want ErrNotSetUp", err)
	}
	for range 2 {
		if err := postgres.Setup(ctx, bare, postgres.SetupOptions{AppRole: appRole, AppPassword: appPassword}); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, app)
	car := locatetest.NewCar(t, 1, 10)
	if err := s.Add(ctx, car.CAR, car.Entries(t)); err != nil {
		t.Fatal(err)
	}
	locatetest.CheckCar(t, s, car)
	if err := postgres.Setup(ctx, bare, postgres.SetupOptions{AppRole: appRole}); err == nil {
		t.Fatal("Setup of an app role without a password succeeded")
	}
}

// A writer killed (SIGKILL) inside an Add leaves its CAR whole or absent.
func TestKilledWriter(t *testing.T) {
	if url := os.Getenv("LOCATETEST_CHILD_URL"); url != "" {
		s, err := postgres.Open(context.Background(), url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		locatetest.WriteUntilKilled(t, s)
		return
	}
	_, app := setUp(t)
	locatetest.KilledWriter(t, "TestKilledWriter", []string{"LOCATETEST_CHILD_URL=" + app}, func(t *testing.T) locate.Store { return open(t, app) })
}
