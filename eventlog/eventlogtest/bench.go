package eventlogtest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// The benchmarks below are written once and called by each backend's
// package, so that their figures compare like with like:
//
//	go test -run '^$' -bench . -benchtime 1x ./eventlog/embedded ./eventlog/postgres

// benchData is a PinRequested-sized body, so that the figures speak of
// pickup's events.
var benchData = json.RawMessage(`{"request_id":"5f1f6b8e-0d36-4a7e-9d7c-2b8f5f2c1e11","tenant":"alice","cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","name":"PreciousData.pdf","created":"2026-11-25T12:00:00.000001Z"}`)

func benchEvent() eventlog.Proposed {
	return eventlog.Proposed{ID: uuid.New(), Type: "PinRequested", Version: 1, Data: benchData, Meta: eventlog.Metadata{Actor: "gateway"}}
}

// BenchmarkDurableAppend measures durable appends per second, one event
// per append to a stream of its own, from 1 and from 64 goroutines at once
// (group commit lets the 64 share syncs). open returns an empty log whose
// commits are synced to disk.
func BenchmarkDurableAppend(b *testing.B, open func(testing.TB) eventlog.Store) {
	for _, c := range []struct{ appenders, perAppender int }{{1, 2000}, {64, 500}} {
		b.Run(fmt.Sprintf("appenders=%d", c.appenders), func(b *testing.B) {
			s := open(b)
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
// of a full replay, over a log of events events, in pages of 1,000 as the
// projections runner reads. open returns an empty log.
func BenchmarkReadAll(b *testing.B, open func(testing.TB) eventlog.Store, events int) {
	b.Run(fmt.Sprintf("events=%d", events), func(b *testing.B) {
		ctx := context.Background()
		s := open(b)
		defer s.Close()
		fill(b, s, events)
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
	})
}

// fill appends events events in appends of 1,000 to streams of their own,
// from a few goroutines so that a server backend's group commit helps.
func fill(b *testing.B, s eventlog.Store, events int) {
	const perAppend, fillers = 1000, 4
	appends := make(chan int)
	var wg sync.WaitGroup
	for range fillers {
		wg.Go(func() {
			batch := make([]eventlog.Proposed, perAppend)
			for i := range appends {
				for j := range batch {
					batch[j] = benchEvent()
				}
				if _, err := s.Append(context.Background(), fmt.Sprintf("pin-%d", i), eventlog.NoStream, batch...); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := 0; i < events/perAppend; i++ {
		appends <- i
	}
	close(appends)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}
