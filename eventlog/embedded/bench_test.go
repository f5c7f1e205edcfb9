package embedded_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
)

// A PinRequested-sized body, so that the figures speak of pickup's events.
var benchData = json.RawMessage(`{"request_id":"5f1f6b8e-0d36-4a7e-9d7c-2b8f5f2c1e11","tenant":"alice","cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","name":"PreciousData.pdf","created":"2026-11-25T12:00:00.000001Z"}`)

func benchEvent() eventlog.Proposed {
	return eventlog.Proposed{ID: uuid.New(), Type: "PinRequested", Version: 1, Data: benchData, Meta: eventlog.Metadata{Actor: "gateway"}}
}

// BenchmarkDurableAppend measures durable appends per second, one event per
// append to a stream of its own, from 1 and from 64 goroutines at once
// (group commit lets the 64 share syncs).
//
//	go test -run '^$' -bench DurableAppend -benchtime 1x ./eventlog/embedded
func BenchmarkDurableAppend(b *testing.B) {
	for _, c := range []struct{ appenders, perAppender int }{{1, 2000}, {64, 500}} {
		b.Run(fmt.Sprintf("appenders=%d", c.appenders), func(b *testing.B) {
			s, err := embedded.Open(context.Background(), filepath.Join(b.TempDir(), "events.db"), embedded.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var elapsed time.Duration
			total := 0
			for i := 0; i < b.N; i++ {
				start := time.Now()
				var wg sync.WaitGroup
				for g := range c.appenders {
					wg.Go(func() {
						for n := range c.perAppender {
							stream := fmt.Sprintf("pin-%d-%d-%d", i, g, n)
							if _, err := s.Append(context.Background(), stream, eventlog.NoStream, benchEvent()); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed += time.Since(start)
				total += c.appenders * c.perAppender
			}
			b.ReportMetric(float64(total)/elapsed.Seconds(), "appends/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkReadAll measures reading the whole log back in order, the cost
// of a full replay, over a log of one million events.
//
//	go test -run '^$' -bench ReadAll -benchtime 1x ./eventlog/embedded
func BenchmarkReadAll(b *testing.B) {
	const events = 1_000_000
	ctx := context.Background()
	s, err := embedded.Open(ctx, filepath.Join(b.TempDir(), "events.db"), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([]eventlog.Proposed, 1000)
	for i := 0; i < events/len(batch); i++ {
		for j := range batch {
			batch[j] = benchEvent()
		}
		if _, err := s.Append(ctx, fmt.Sprintf("pin-%d", i), eventlog.NoStream, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var elapsed time.Duration
	read := 0
	for i := 0; i < b.N; i++ {
		start := time.Now()
		var pos eventlog.Position
		for {
			evs, err := s.ReadAll(ctx, pos, 1000)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			read += len(evs)
			pos = evs[len(evs)-1].Position
		}
		elapsed += time.Since(start)
	}
	if read != events*b.N {
		b.Fatalf("read %d events, want %d", read, events*b.N)
	}
	b.ReportMetric(float64(read)/elapsed.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}
