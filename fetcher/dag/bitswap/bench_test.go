package bitswap_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/bitswap"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

// BenchmarkBitswap measures a fetch over bitswap from one origin on
// loopback: a boxo bitswap server with kubo's settings, serving a UnixFS
// DAG (CIDv1, 256 KiB raw leaves) from a blockstore on disk. The fetcher
// runs in a child process, so that its peak resident memory is its own.
// kubo fetching the same DAG from kubo does 134 to 181 MB/s on these
// machines (FACTS.md).
func BenchmarkBitswap(b *testing.B) {
	ctx := context.Background()
	for _, size := range ipfstest.BenchSizes() {
		fx := ipfstest.NewFixture(b, size)
		root := fx.Root
		origin := ipfstest.NewBitswapPeer(b, fx.Blocks)
		b.Run(fmt.Sprintf("dag=%dMiB", size>>20), func(b *testing.B) {
			for b.Loop() {
				m, err := ipfstest.RunChild(ctx, "TestBenchChildBitswap", map[string]string{
					"root": root.String(), "origin": origin.Addrs()[0].String(), "window": os.Getenv("PICKUP_BENCH_WINDOW"),
				})
				if err != nil {
					b.Fatal(err)
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

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Abort(context.Context) error { return nil }

// TestBenchChildBitswap is BenchmarkBitswap's child: one bitswap fetch,
// reported.
func TestBenchChildBitswap(t *testing.T) {
	params, ok := ipfstest.ChildParams()
	if !ok {
		t.Skip("run by BenchmarkBitswap in a child process")
	}
	root, err := cid.Decode(params["root"])
	if err != nil {
		t.Fatal(err)
	}
	origin, err := multiaddr.NewMultiaddr(params["origin"])
	if err != nil {
		t.Fatal(err)
	}
	measure := ipfstest.StartFetch(t)
	cfg := bitswap.Config{AllowPrivate: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}
	if w := params["window"]; w != "" {
		cfg.WindowBytes, _ = strconv.Atoi(w)
	}
	src, err := bitswap.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := dag.New([]dag.Source{src}, dag.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	measure.Begin()
	res, _, err := f.Fetch(context.Background(), dag.Request{Root: root, Origins: []multiaddr.Multiaddr{origin}},
		func(context.Context) (dag.Sink, error) { return discard{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	measure.Report(t, res.Bytes, nil)
}
