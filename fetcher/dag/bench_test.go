package dag_test

import (
	"context"
	"fmt"
	"strconv"
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
	start, err := ipfstest.RSS()
	if err != nil {
		t.Fatal(err)
	}
	f := newFetcher(t, dag.Limits{}, gatewaySource(t, params["url"]))
	cpu0 := ipfstest.CPUTime()
	began := time.Now()
	res, _, err := f.Fetch(context.Background(), dag.Request{Root: root}, func(context.Context) (dag.Sink, error) { return discard{}, nil }, nil)
	elapsed := time.Since(began)
	cpu := ipfstest.CPUTime() - cpu0
	if err != nil {
		t.Fatal(err)
	}
	peak, err := ipfstest.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	ipfstest.ReportToParent(map[string]float64{
		"MB/s":          float64(res.Bytes) / elapsed.Seconds() / 1e6,
		"MB/CPU-s":      float64(res.Bytes) / cpu.Seconds() / 1e6,
		"seconds":       elapsed.Seconds(),
		"bytes":         float64(res.Bytes),
		"peak-RSS-MiB":  float64(peak) / (1 << 20),
		"start-RSS-MiB": float64(start) / (1 << 20),
	})
	t.Log("fetched", res.Bytes, "bytes in", elapsed, "peak RSS", strconv.FormatInt(peak>>20, 10), "MiB")
}
