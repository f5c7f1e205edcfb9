package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// Several processes starting at once on one new file (pickup's roles on a
// fresh embedded log): one of them is writing the file before it is in WAL
// mode, and SQLite answers another's `PRAGMA journal_mode=WAL` "database is
// locked" at once, without waiting in its busy handler. Open waits for the
// lock and tries again. (The deployment test's roles failed so, now and
// then, before it did; here the first writer is held on purpose.)
func TestOpenWaitsForAWriterOfAFreshFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fresh.db")
	first, err := sqlite3.Open(path) // rollback journal: not yet WAL
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := first.Exec(`BEGIN IMMEDIATE; CREATE TABLE first (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	// The writer commits only once Open has tried and been refused: its
	// commit is what Open waits for.
	opened := make(chan error, 1)
	go func() {
		c, err := Open(context.Background(), path)
		if err == nil {
			err = c.Exec(`INSERT INTO first VALUES (1)`) // sees the writer's table
			c.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("Open returned (%v) while another connection held the write lock", err)
	case <-time.After(200 * time.Millisecond): // Open is waiting, as it should
	}
	if err := first.Exec(`COMMIT`); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Fatalf("Open after the writer committed: %v", err)
	}
}

// A file opened by many connections of one process at once is opened by
// all of them.
func TestConcurrentConnections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fresh.db")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(context.Background(), path)
			if err == nil {
				err = c.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A cached statement whose last step was interrupted (its read's context
// ended while SQLite ran it) serves the next read on the connection: the
// interruption was that read's, not the connection's. (Before, every later
// use of the statement failed with "interrupted", in the event log and the
// views alike.)
func TestStatementAfterAnInterruptedStep(t *testing.T) {
	c, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Counting to ? takes SQLite seconds for a large ?, a moment for 3.
	const query = `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) SELECT count(*) FROM n`
	q, err := c.Stmt(query)
	if err != nil {
		t.Fatal(err)
	}
	q.BindInt64(1, 1<<40)
	ctx, cancel := context.WithCancel(context.Background())
	old := c.SetInterrupt(ctx)
	stop := time.AfterFunc(20*time.Millisecond, cancel) // while the count runs
	defer stop.Stop()
	if q.Step() || !errors.Is(q.Err(), sqlite3.INTERRUPT) {
		t.Fatalf("a step whose context ended: %v, want interrupted", q.Err())
	}
	c.SetInterrupt(old)

	q, err = c.Stmt(query)
	if err != nil {
		t.Fatalf("the statement after an interrupted step: %v", err)
	}
	q.BindInt64(1, 3)
	if !q.Step() || q.ColumnInt(0) != 3 {
		t.Fatalf("the statement's next use: %v", q.Err())
	}
}
