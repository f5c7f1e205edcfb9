package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/postgrestest"
	"github.com/pickup-ipfs/pickup/projections/embedded"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/postgres"
	"github.com/pickup-ipfs/pickup/projections/viewtest"
)

// pg is the test binary's PostgreSQL server, started on first use. Its
// connections over TCP authenticate with passwords, so that the tests of
// roles and rotated passwords prove the server checks them.
var pg = postgrestest.Shared{Options: postgrestest.Options{Passwords: true}}

// The suite runs as a deployment does: the views set up by an admin, the
// store connected as the least-privileged app role.
var backend = viewtest.Backend{
	Open: func(ctx context.Context, location string) (viewtest.Store, error) {
		return postgres.Open(ctx, location, postgres.Options{})
	},
	NewLocation: func(t testing.TB) string { _, app := setUp(t); return app },
}

func TestMain(m *testing.M) {
	code := viewtest.Main(m, backend)
	pg.Stop()
	os.Exit(code)
}

func TestConformance(t *testing.T) { viewtest.Run(t, backend) }

// The two stores hold the same rows for the same events: what one
// computes, the other does, so views can move between them and replay
// --verify can compare across them.
func TestSameViewsAsEmbedded(t *testing.T) {
	ctx := context.Background()
	evs := viewtest.Events(viewtest.History(viewtest.HistoryConfig{Events: 5000, Seed: 21, Junk: true}))
	pgStore, err := postgres.Open(ctx, pg.NewDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pgStore.Close()
	file, err := embedded.Open(ctx, filepath.Join(t.TempDir(), "views.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for i := 0; i < len(evs); i += 700 {
		if _, err := pgStore.Apply(ctx, evs[i].Position-1, viewrow.Prepare(evs[i:min(i+700, len(evs))])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := file.Apply(ctx, 0, viewrow.Prepare(evs)); err != nil {
		t.Fatal(err)
	}
	viewtest.SameViews(t, pgStore, file)
}
