package sqlite_test

import (
	"context"
	"os"
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

func BenchmarkLocate(b *testing.B) {
	path := filepath.Join(b.TempDir(), "locate.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	locatetest.BenchLocate(b, s, func() (int64, error) {
		var total int64
		for _, p := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(p); err == nil {
				total += fi.Size()
			}
		}
		return total, nil
	})
}

func BenchmarkAdd(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "locate.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	locatetest.BenchAdd(b, s)
}

// A writer killed (SIGKILL) inside an Add leaves its CAR whole or absent.
func TestKilledWriter(t *testing.T) {
	if path := os.Getenv("LOCATETEST_CHILD_DB"); path != "" {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		locatetest.WriteUntilKilled(t, s)
		return
	}
	open := fresh(t)
	s := open(t).(*sqlite.Store) // creates the file
	locatetest.KilledWriter(t, "TestKilledWriter", []string{"LOCATETEST_CHILD_DB=" + s.Path()}, open)
}
