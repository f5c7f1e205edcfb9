package embedded_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
