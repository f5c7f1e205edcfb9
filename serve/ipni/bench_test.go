package ipni_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-car/v2/index"

	"github.com/pickup-ipfs/pickup/serve/ipni"
	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
)

// syntheticCar is a CAR that exists as its index object only (what the
// publisher reads): n blocks of locatetest.Synthetic, indexed by go-car's
// MultihashIndexSorted as the carpark keeps it.
func syntheticCar(b testing.TB, car, n int) locatetest.Car {
	b.Helper()
	info, entries := locatetest.Synthetic(car, n)
	records := make([]index.Record, len(entries))
	for i, e := range entries {
		records[i] = index.Record{Cid: cid.NewCidV1(cid.Raw, e.Multihash), Offset: uint64(e.Offset)}
	}
	idx := index.NewMultihashSorted()
	if err := idx.Load(records); err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := index.WriteTo(idx, &buf); err != nil {
		b.Fatal(err)
	}
	return locatetest.Car{CAR: info, Index: buf.Bytes()}
}

// BenchmarkPublish1MBlocks: the rate at which one publisher turns a
// backlog of 100 validated CARs of 10,000 blocks each (1,000,000
// multihashes) into the chain: each index object read and decoded, its
// entry chunks built and hashed (16,384 multihashes each), each ad signed
// and appended to the embedded log in batches of 100 events. Then the
// rate at which it serves every entry chunk back, rebuilt from the index
// objects, as an indexer syncing the chain fetches them.
func BenchmarkPublish1MBlocks(b *testing.B) {
	const cars, blocks = 100, 10_000
	for range b.N {
		b.StopTimer()
		w := newWorld(b)
		for i := range cars {
			car := syntheticCar(b, i, blocks)
			w.cars.Put(car.CAR.Key+".idx", car.Index)
			w.pin(car)
		}
		srv := newServer(b)
		p := w.publisher(srv, nil, ipni.Config{})
		b.StartTimer()
		start := time.Now()
		stop := run(b, p)
		for {
			if _, n := p.Head(); n == cars {
				break
			}
			time.Sleep(time.Millisecond)
		}
		publish := time.Since(start)
		stop()
		b.StopTimer()
		if got := p.Stats().Multihashes; got != cars*blocks {
			b.Fatalf("%d multihashes advertised, want %d", got, cars*blocks)
		}
		// Serving needs the chain read: a second publisher reads it.
		reader := w.publisher(srv, nil, ipni.Config{})
		stopReader := run(b, reader)
		for {
			if _, n := reader.Head(); n == cars {
				break
			}
			time.Sleep(time.Millisecond)
		}
		start = time.Now()
		served, chunks := 0, 0
		for _, ad := range chainOf(b, w.log) {
			for _, ch := range ad.Chunks {
				chunks++
				body, err := reader.Block(context.Background(), cid.MustParse(ch))
				if err != nil {
					b.Fatal(err)
				}
				served += len(body)
			}
		}
		serve := time.Since(start)
		stopReader()
		b.ReportMetric(float64(cars*blocks)/publish.Seconds(), "published-multihashes/s")
		b.ReportMetric(float64(cars)/publish.Seconds(), "ads/s")
		b.ReportMetric(float64(cars*blocks)/serve.Seconds(), "served-multihashes/s")
		b.ReportMetric(float64(served)/serve.Seconds()/1e6, "served-MB/s")
		b.Logf("published %d multihashes in %v; served %d chunks' %d bytes in %v", cars*blocks, publish, chunks, served, serve)
	}
}

// BenchmarkChainMemory: the memory a serve task's fold of the chain takes
// per ad, for a chain of 100,000 ads of one entry chunk each (the heap
// after the chain is read, less the heap before, over the ads).
func BenchmarkChainMemory(b *testing.B) {
	const n = 100_000
	for range b.N {
		b.StopTimer()
		w := newWorld(b)
		ctx := context.Background()
		prev := ""
		var props []eventlog.Proposed
		for i := range n {
			info, _ := locatetest.Synthetic(i, 1)
			h, _ := multihash.Sum([]byte(fmt.Sprint("ad", i)), multihash.SHA2_256, -1)
			adCID := cid.NewCidV1(cid.DagJSON, h).String()
			ch, _ := multihash.Sum([]byte(fmt.Sprint("chunk", i)), multihash.SHA2_256, -1)
			ad := ipni.Advertised{CID: adCID, PreviousID: prev, Provider: "12D3KooWBdD3iy7LYSmfhzERUVqmZCxYNko4wnWQiVD4AZmedLu5",
				Addresses: []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/tcp/8080/http"}, Signature: make([]byte, 150),
				Entries: cid.NewCidV1(cid.DagJSON, ch).String(), ContextID: info.CarCID.Bytes(), Metadata: []byte{1, 2, 3},
				CarCID: info.CarCID.String(), Root: info.Root.String(), Index: info.Key + ".idx", IndexBytes: 1000, IndexSHA256: fmt.Sprintf("%064x", i), CarBytes: info.Bytes,
				Chunks: []string{cid.NewCidV1(cid.DagJSON, ch).String()}, ChunkSize: 16384, Multihashes: 10_000, Through: eventlog.Position(i)}
			prop, err := eventlog.NewCodec(ipni.SchemaVersion, ipni.Advertised{}).Propose(ad, uuid.New(), eventlog.Metadata{Actor: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			props = append(props, prop)
			prev = adCID
			if len(props) == 1000 {
				if _, err := w.log.Append(ctx, ipni.Stream, eventlog.Any, props...); err != nil {
					b.Fatal(err)
				}
				props = props[:0]
			}
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		p := w.publisher(newServer(b), nil, ipni.Config{})
		stop := run(b, p)
		for {
			if _, got := p.Head(); got == n {
				break
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		stop()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/ad")
		runtime.KeepAlive(p)
	}
}
