package dag_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

// BenchmarkPipeline measures the fetcher alone: a CAR from a trustless
// gateway origin on loopback, verified block by block, written as a CAR
// (with its CAR CID computed) into a sink that discards. Each run is a
// child process, so that its peak resident memory is the fetcher's. Two
// origins: a CAR file sent as it is (the cheapest origin, so the figure is
// the pipeline's), and boxo's gateway handler over the blockstore (what a
// real gateway costs, on the same two cores).
func BenchmarkPipeline(b *testing.B) {
	for _, size := range ipfstest.BenchSizes() {
		fx := ipfstest.NewFixture(b, size)
		origins := []struct{ name, url string }{
			{"car-file", ipfstest.NewCARFileGateway(b, fx.CAR).URL()},
			{"boxo-gateway", mustGateway(b, fx).URL()},
		}
		for _, o := range origins {
			b.Run(fmt.Sprintf("origin=%s/dag=%dMiB", o.name, size>>20), func(b *testing.B) {
				for b.Loop() {
					m, err := ipfstest.RunChild(context.Background(), "TestBenchChildFetch", map[string]string{
						"url": o.url, "root": fx.Root.String(),
					})
					if err != nil {
						b.Fatal(err)
					}
					if int64(m["bytes"]) != fx.Size {
						b.Fatalf("fetched %v bytes, the CAR has %d", m["bytes"], fx.Size)
					}
					b.ReportMetric(m["MB/s"], "MB/s")
					b.ReportMetric(m["MB/CPU-s"], "MB/CPU-s")
					b.ReportMetric(m["peak-RSS-MiB"], "peak-RSS-MiB")
					b.ReportMetric(m["start-RSS-MiB"], "start-RSS-MiB")
					b.ReportMetric(m["seconds"]*1e9, "ns/op")
				}
			})
		}
	}
}

func mustGateway(b *testing.B, fx ipfstest.Fixture) *ipfstest.Gateway {
	return ipfstest.NewGateway(b, fx.Blocks, ipfstest.GatewayOptions{})
}

// discard is a Sink that keeps nothing.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Abort(context.Context) error { return nil }

// TestBenchChildFetch is BenchmarkPipeline's child: it fetches one DAG
// from a gateway and reports speed and memory.
func TestBenchChildFetch(t *testing.T) {
	params, ok := ipfstest.ChildParams()
	if !ok {
		t.Skip("run by BenchmarkPipeline in a child process")
	}
	root, err := cid.Decode(params["root"])
	if err != nil {
		t.Fatal(err)
	}
	measure := ipfstest.StartFetch(t)
	f := newFetcher(t, dag.Limits{}, gatewaySource(t, params["url"]))
	measure.Begin()
	res, _, err := f.Fetch(context.Background(), dag.Request{Root: root}, func(context.Context) (dag.Sink, error) { return discard{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	measure.Report(t, res.Bytes, nil)
}

// BenchmarkIndexOverhead measures what recording the block index costs a
// fetch: the same DAG fetched with and without it, alternately, in one
// process and one run, the difference printed as a percentage of the fetch
// without it (index-overhead-%). Two DAGs: the benchmark fixture (256 KiB
// raw leaves, from a gateway serving its CAR file, the pipeline of
// BenchmarkPipeline) and a DAG of 1 KiB blocks served from memory, the
// most blocks per byte and no network to hide the cost behind.
func BenchmarkIndexOverhead(b *testing.B) {
	ctx := context.Background()
	type shape struct {
		name   string
		root   cid.Cid
		size   int64
		source dag.Source
	}
	var shapes []shape
	for _, size := range ipfstest.BenchSizes() {
		fx := ipfstest.NewFixture(b, size)
		shapes = append(shapes, shape{fmt.Sprintf("dag=%dMiB/blocks=256KiB/origin=car-file", size>>20), fx.Root, fx.Size,
			gatewaySource(b, ipfstest.NewCARFileGateway(b, fx.CAR).URL())})
	}
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 32 << 20, Seed: 7, ChunkSize: 1 << 10, CIDv1: true})
	if err != nil {
		b.Fatal(err)
	}
	small := export(b, bs, root)
	shapes = append(shapes, shape{"dag=32MiB/blocks=1KiB/origin=memory", root, int64(len(small)), carSource{name: "memory", car: small}})

	for _, sh := range shapes {
		b.Run(sh.name, func(b *testing.B) {
			with := newFetcher(b, dag.Limits{}, sh.source)
			without := newFetcher(b, dag.Limits{}, sh.source)
			dag.WithoutIndex(without)
			open := func(context.Context) (dag.Sink, error) { return discard{}, nil }
			// run returns the wall-clock and the CPU time (the whole
			// process's, the origin's too, the same on both sides) of one
			// fetch.
			run := func(f *dag.Fetcher) (wall, cpu time.Duration, res dag.Result) {
				start, cpu0 := time.Now(), ipfstest.CPUTime()
				res, _, err := f.Fetch(ctx, dag.Request{Root: sh.root}, open, nil)
				if err != nil {
					b.Fatal(err)
				}
				if res.Bytes != sh.size {
					b.Fatalf("fetched %d bytes, the CAR has %d", res.Bytes, sh.size)
				}
				return time.Since(start), ipfstest.CPUTime() - cpu0, res
			}
			var tWith, tWithout, cWith, cWithout time.Duration
			var res dag.Result
			var ratios, cpuRatios []float64
			i := 0
			for b.Loop() {
				// Alternate which goes first, so that neither gets the
				// warmer caches.
				var dWith, dWithout, uWith, uWithout time.Duration
				for k := range 2 {
					if (i+k)%2 == 0 {
						dWith, uWith, res = run(with)
					} else {
						dWithout, uWithout, _ = run(without)
					}
				}
				tWith, tWithout, cWith, cWithout = tWith+dWith, tWithout+dWithout, cWith+uWith, cWithout+uWithout
				ratios = append(ratios, float64(dWith)/float64(dWithout))
				cpuRatios = append(cpuRatios, float64(uWith)/float64(uWithout))
				i++
			}
			n := float64(i)
			slices.Sort(ratios)
			slices.Sort(cpuRatios)
			b.ReportMetric(float64(tWith.Nanoseconds())/n, "ns-with-index/op")
			b.ReportMetric(float64(tWithout.Nanoseconds())/n, "ns-without-index/op")
			// The medians of the pairs' ratios: a burst of load from the
			// machine's other tenants skews one pair, not the figure.
			overhead, cpu := 100*(ratios[len(ratios)/2]-1), 100*(cpuRatios[len(cpuRatios)/2]-1)
			b.ReportMetric(overhead, "index-overhead-%")
			b.ReportMetric(cpu, "index-overhead-cpu-%")
			fmt.Printf("%s: index overhead %.2f %% wall-clock, %.2f %% CPU (medians of %d pairs; totals %.2f %% and %.2f %%)\n",
				b.Name(), overhead, cpu, len(ratios),
				100*(float64(tWith)-float64(tWithout))/float64(tWithout), 100*(float64(cWith)-float64(cWithout))/float64(cWithout))
			b.ReportMetric(float64(len(res.Index))/float64(res.Blocks), "index-B/block")
			b.ReportMetric(float64(res.Blocks), "blocks")
		})
	}
}
