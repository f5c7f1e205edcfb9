package esdb_test

import (
	"context"
	"fmt"
	"io"
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

func TestMain(m *testing.M) {
	if os.Getenv("PICKUP_ESDB_URL") == "" {
		fmt.Fprintln(goCommandStderr(), "eventlog/esdb: SKIPPED, the EventStoreDB conformance suite did not run: "+skipped)
	}
	eventlogtest.Main(m, backend)
}

// goCommandStderr returns where a line reaches whoever ran `go test`
// (make test) even when the package passes: go test keeps a passing
// package's output to itself unless -v is given, so the line goes to the
// go command's own stderr (its parent's file descriptor 2, on Linux) when
// that is a terminal or a pipe. Elsewhere (a regular file, which a second
// writer would overwrite, or no /proc) it is this binary's stderr, shown
// with -v. A cached pass prints nothing: go test reports it "(cached)".
func goCommandStderr() io.Writer {
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/2", os.Getppid()), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return os.Stderr
	}
	if info, err := f.Stat(); err != nil || info.Mode().IsRegular() {
		f.Close()
		return os.Stderr
	}
	return f
}

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
