package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
	"github.com/pickup-ipfs/pickup/serve/locate/postgres"
)

// sizes measures, as the admin, the lookup's relations after VACUUM
// ANALYZE: the block table's heap, each of its indexes, and its total
// (pg_total_relation_size: heap, indexes, TOAST, free space and
// visibility maps).
type sizes struct {
	heap, hash, brin, blocksTotal, carsTotal int64
}

func measure(tb testing.TB, admin string) sizes {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	s := postgres.SchemaName
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE `+s+`.blocks, `+s+`.cars`); err != nil {
		tb.Fatal(err)
	}
	var z sizes
	err = conn.QueryRow(ctx, `SELECT pg_relation_size($1), pg_relation_size($2), pg_relation_size($3), pg_total_relation_size($4), pg_total_relation_size($5)`,
		s+".blocks", s+".blocks_mh", s+".blocks_car", s+".blocks", s+".cars").Scan(&z.heap, &z.hash, &z.brin, &z.blocksTotal, &z.carsTotal)
	if err != nil {
		tb.Fatal(err)
	}
	return z
}

// TestStorageBytesPerBlock measures what a block costs in PostgreSQL
// (README.md, "Block-location lookup"), with a B-tree on the multihash
// beside for comparison. It prints figures and asserts nothing on them.
func TestStorageBytesPerBlock(t *testing.T) {
	if testing.Short() {
		t.Skip("adds 200,000 blocks")
	}
	admin, app := setUp(t)
	s := open(t, app)
	const cars, per = 20, 10_000
	locatetest.Fill(t, s, 0, cars, per)
	z := measure(t, admin)
	n := float64(cars * per)
	t.Logf("%d blocks in %d CARs: heap %.1f B/block, hash index on mh %.1f, BRIN on car %.3f, blocks total %.1f, cars total %d bytes (%.1f B/CAR)",
		cars*per, cars, float64(z.heap)/n, float64(z.hash)/n, float64(z.brin)/n, float64(z.blocksTotal)/n, z.carsTotal, float64(z.carsTotal)/cars)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE INDEX blocks_mh_btree ON `+postgres.SchemaName+`.blocks (mh)`); err != nil {
		t.Fatal(err)
	}
	var btree int64
	if err := conn.QueryRow(ctx, `SELECT pg_relation_size($1)`, postgres.SchemaName+".blocks_mh_btree").Scan(&btree); err != nil {
		t.Fatal(err)
	}
	t.Logf("a B-tree on mh instead (built at once, fill factor 90): %.1f B/block", float64(btree)/n)
	if _, err := conn.Exec(ctx, `DROP INDEX `+postgres.SchemaName+`.blocks_mh_btree`); err != nil {
		t.Fatal(err)
	}

	// The lookup is one query through the hash index.
	car, es := locatetest.Synthetic(7, per)
	rows, err := conn.Query(ctx, `EXPLAIN SELECT c.car_cid, c.root, c.key, b.off, b.len FROM `+postgres.SchemaName+`.blocks b JOIN `+postgres.SchemaName+`.cars c ON c.id = b.car WHERE b.mh = $1`, []byte(es[5].Multihash))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan of a lookup (CAR %s):\n%s", car.CarCID, strings.Join(plan, "\n"))
	if joined := strings.Join(plan, "\n"); !strings.Contains(joined, "blocks_mh") || strings.Contains(joined, "Seq Scan on blocks") {
		t.Fatalf("a lookup does not go through the hash index on mh:\n%s", joined)
	}
}

// BenchmarkLocate: Locate over 1,000,000 blocks, the store's bytes per
// block reported beside (pg_total_relation_size of blocks).
func BenchmarkLocate(b *testing.B) {
	admin, app := setUp(b)
	s := open(b, app)
	locatetest.BenchLocate(b, s, func() (int64, error) { return measure(b, admin).blocksTotal, nil })
}

func BenchmarkAdd(b *testing.B) {
	_, app := setUp(b)
	locatetest.BenchAdd(b, open(b, app))
}
