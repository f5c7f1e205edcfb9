package postgres_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/eventlog/eventlogtest"
	"github.com/pickup-ipfs/pickup/eventlog/postgres"
	"github.com/pickup-ipfs/pickup/internal/postgrestest"
)

// durable is a server that syncs every commit, as a deployment's does; the
// conformance suite's server does not, to keep the tests quick.
var durable = postgrestest.Shared{Options: postgrestest.Options{Durable: true}}

// The benchmarks run against both the embedded log and this one, side by
// side in one run, through the same code (eventlogtest's benchmarks). The
// whole run, a million events filled and read back on each, takes about 30
// to 50 s here, so it needs no shorter form:
//
//	go test -run '^$' -bench . -benchtime 1x ./eventlog/postgres
var benchBackends = []struct {
	name string
	open func(testing.TB) eventlog.Store
}{
	{"embedded", func(tb testing.TB) eventlog.Store {
		s, err := embedded.Open(context.Background(), filepath.Join(tb.TempDir(), "events.db"), embedded.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}},
	{"postgres", func(tb testing.TB) eventlog.Store {
		s, err := postgres.Open(context.Background(), durable.NewDatabase(tb), postgres.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}},
}

func BenchmarkDurableAppend(b *testing.B) {
	for _, be := range benchBackends {
		b.Run("backend="+be.name, func(b *testing.B) { eventlogtest.BenchmarkDurableAppend(b, be.open) })
	}
}

func BenchmarkReadAll(b *testing.B) {
	for _, be := range benchBackends {
		b.Run("backend="+be.name, func(b *testing.B) { eventlogtest.BenchmarkReadAll(b, be.open, 1_000_000) })
	}
}
