package dag_test

import (
	"context"
	"fmt"
	"testing"

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
