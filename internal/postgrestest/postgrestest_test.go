package postgrestest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pickup-ipfs/pickup/internal/postgrestest"
)

var pg postgrestest.Shared

func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }

// Each test gets a database of its own on one server: what one writes, the
// other does not see.
func TestDatabasesAreSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := pg.NewDatabase(t), pg.NewDatabase(t)
	if a == b {
		t.Fatalf("two databases with one URL %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, `CREATE TABLE t (x int); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 't'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the second database sees %d tables named t (%v)", n, err)
	}
}

// A server stopped is gone: its port refuses connections and its directory
// is removed.
func TestStartAndStop(t *testing.T) {
	ctx := context.Background()
	s, err := postgrestest.Start(ctx, postgrestest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateDatabase(ctx)
	if err != nil {
		s.Stop()
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		s.Stop()
		t.Fatal(err)
	}
	var v string
	if err := c.QueryRow(ctx, `SHOW server_version`).Scan(&v); err != nil {
		t.Error(err)
	}
	t.Logf("PostgreSQL %s", v)
	c.Close(ctx)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := pgx.Connect(ctx, u); err == nil {
		c.Close(ctx)
		t.Error("connected to a stopped server")
	}
}
