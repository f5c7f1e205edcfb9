package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pickup-ipfs/pickup/serve/locate"
	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
	"github.com/pickup-ipfs/pickup/serve/locate/sqlite"
)

// fresh is the suite's opener: a new file in the test's directory.
func fresh(t *testing.T) func(t *testing.T) locate.Store {
	path := filepath.Join(t.TempDir(), "locate.db")
	return func(t *testing.T) locate.Store {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func TestConformance(t *testing.T) { locatetest.Run(t, fresh) }
