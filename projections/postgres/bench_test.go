package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pickup-ipfs/pickup/projections/postgres"
	"github.com/pickup-ipfs/pickup/projections/viewtest"
)

// BenchmarkList: listings with every filter over a million pins of one
// tenant (PICKUP_BENCH_PINS), on PostgreSQL 15 started for the test.
// Target: p99 under 20 ms.
func BenchmarkList(b *testing.B) {
	ctx := context.Background()
	url := pg.NewDatabase(b)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	viewtest.BenchmarkList(b, s, func() {
		// What autovacuum would do soon after a load this size.
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `VACUUM ANALYZE`); err != nil {
			b.Fatal(err)
		}
	})
}
