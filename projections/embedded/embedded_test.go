package embedded_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/sqlite"
	"github.com/pickup-ipfs/pickup/projections/embedded"
	"github.com/pickup-ipfs/pickup/projections/viewtest"
)

var backend = viewtest.Backend{
	Open: func(ctx context.Context, location string) (viewtest.Store, error) {
		return embedded.Open(ctx, location, embedded.Options{})
	},
	NewLocation: func(t testing.TB) string { return filepath.Join(t.TempDir(), "views.db") },
}

func TestMain(m *testing.M) { os.Exit(viewtest.Main(m, backend)) }

func TestConformance(t *testing.T) { viewtest.Run(t, backend) }

// Views written by another version of the tables are dropped on open, and
// the checkpoint with them: the runner rebuilds them from the log.
func TestOtherSchemaVersionIsRebuilt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "views.db")
	c, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(`CREATE TABLE pins (request_id BLOB); CREATE TABLE checkpoint (id INTEGER, position INTEGER);
		INSERT INTO checkpoint VALUES (1, 99); PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	c.Close()
	s, err := embedded.Open(ctx, path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if cp, err := s.Checkpoint(ctx); err != nil || cp != 0 {
		t.Errorf("checkpoint %d, %v after opening old views, want 0: a rebuild", cp, err)
	}
}
