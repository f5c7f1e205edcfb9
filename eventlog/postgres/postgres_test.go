package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/eventlogtest"
	"github.com/pickup-ipfs/pickup/eventlog/postgres"
	"github.com/pickup-ipfs/pickup/internal/postgrestest"
)

// pg is the test binary's PostgreSQL server, started on first use; each
// test gets a database of its own on it.
var pg postgrestest.Shared

var backend = eventlogtest.Backend{
	Open: func(ctx context.Context, location string) (eventlog.Store, error) {
		return postgres.Open(ctx, location, postgres.Options{})
	},
	NewLocation: func(t testing.TB) string { return pg.NewDatabase(t) },
}

func TestMain(m *testing.M) {
	code := eventlogtest.MainCode(m, backend)
	pg.Stop()
	durable.Stop()
	os.Exit(code)
}

func TestConformance(t *testing.T) { eventlogtest.Run(t, backend) }
