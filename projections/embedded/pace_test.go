package embedded

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/sqlite"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/viewtest"
)

// The writer copies its WAL into the file rarely while it applies big
// batches (a rebuild) and often while it follows the log in small ones, and
// switches back and forth as the batches change (see the package doc).
func TestWALPaceFollowsTheBatches(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "views.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := viewtest.Events(viewtest.History(viewtest.HistoryConfig{Events: bulkBatch + 20, Seed: 5}))
	pace := func() int {
		var pages int
		err := s.write(ctx, func(c *sqlite.Conn) error {
			q, err := c.Stmt(`PRAGMA wal_autocheckpoint`)
			if err != nil {
				return err
			}
			defer q.Reset()
			if q.Step() {
				pages = q.ColumnInt(0)
			}
			return q.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		return pages
	}
	if got := pace(); got != walFollowingPages {
		t.Fatalf("a new store checkpoints every %d pages, want %d", got, walFollowingPages)
	}
	cp := 0
	for _, step := range []struct {
		events, want int
	}{{10, walFollowingPages}, {bulkBatch, walBulkPages}, {10, walFollowingPages}} {
		batch := evs[cp : cp+step.events]
		if _, err := s.Apply(ctx, batch[0].Position-1, viewrow.Prepare(batch)); err != nil {
			t.Fatal(err)
		}
		cp += step.events
		if got := pace(); got != step.want {
			t.Errorf("after a batch of %d events the writer checkpoints every %d pages, want %d", step.events, got, step.want)
		}
	}
}
