package embedded_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/eventlog/eventlogtest"
)

// The benchmarks are eventlogtest's, shared with the other backends
// (eventlog/postgres runs them against this log and its own side by side).

func openBench(tb testing.TB) eventlog.Store {
	s, err := embedded.Open(context.Background(), filepath.Join(tb.TempDir(), "events.db"), embedded.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkDurableAppend measures durable appends per second from 1 and
// from 64 goroutines at once.
//
//	go test -run '^$' -bench DurableAppend -benchtime 1x ./eventlog/embedded
func BenchmarkDurableAppend(b *testing.B) { eventlogtest.BenchmarkDurableAppend(b, openBench) }

// BenchmarkReadAll measures reading a log of one million events back in
// order, the cost of a full replay.
//
//	go test -run '^$' -bench ReadAll -benchtime 1x ./eventlog/embedded
func BenchmarkReadAll(b *testing.B) { eventlogtest.BenchmarkReadAll(b, openBench, 1_000_000) }
