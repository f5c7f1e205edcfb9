package esdb_test

import (
	"context"
	"os"
	"testing"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/esdb"
	"github.com/pickup-ipfs/pickup/eventlog/eventlogtest"
)

// The suite needs a running EventStoreDB/KurrentDB. None can be installed on
// the machines pickup is built on (no package, no Docker engine), so it runs
// only where PICKUP_ESDB_URL names one, e.g.
//
//	PICKUP_ESDB_URL='esdb://127.0.0.1:2113?tls=false' go test ./eventlog/esdb
var backend = eventlogtest.Backend{
	Open: func(ctx context.Context, location string) (eventlog.Store, error) {
		return esdb.Open(ctx, location)
	},
	NewLocation: func(t testing.TB) string { return os.Getenv("PICKUP_ESDB_URL") },
}

const skipped = "no EventStoreDB server: set PICKUP_ESDB_URL (e.g. esdb://127.0.0.1:2113?tls=false) to run the eventlog conformance suite against one"

// TestMain lets the conformance suite start its killed writer; make test
// prints the one line that says the suite was skipped (go test shows a
// passing package's skips only with -v).
func TestMain(m *testing.M) { eventlogtest.Main(m, backend) }

func TestConformance(t *testing.T) {
	if os.Getenv("PICKUP_ESDB_URL") == "" {
		t.Skip(skipped)
	}
	eventlogtest.Run(t, backend)
}

func TestOpenRefusesBadConnectionStrings(t *testing.T) {
	for _, bad := range []string{"", "http://127.0.0.1:2113", "esdb://"} {
		if s, err := esdb.Open(context.Background(), bad); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}
