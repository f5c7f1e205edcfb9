package bitswap_test

import (
	"context"
	"os"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/servetest"
)

// tcpOnly keeps the TCP addresses.
func tcpOnly(addrs []multiaddr.Multiaddr) []multiaddr.Multiaddr {
	var out []multiaddr.Multiaddr
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(multiaddr.P_TCP); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// BenchmarkServe measures the server alone: a 64 MiB DAG pinned into a
// carpark directory, or with PICKUP_BENCH_S3 a bucket of versitygw (lookup
// in SQLite, every block a range read of its CAR and a check), fetched by boxo's client 32 blocks ahead, beside a
// bitswap peer with kubo's server settings over an in-memory blockstore
// holding the same blocks, in alternating rounds. tests/
// (BenchmarkBitswapAgainstKubo) runs the whole role against kubo itself.
func BenchmarkServe(b *testing.B) {
	park := servetest.New(b)
	if os.Getenv("PICKUP_BENCH_S3") != "" {
		park = servetest.NewS3(b)
	}
	dag := park.Pin(b, 64<<20, 9)
	mem := ipfstest.NewMemBlockstore()
	var ks = cids(dag.Blocks)
	var total int64
	for _, blk := range dag.Blocks {
		bb, _ := blocks.NewBlockWithCid(blk.Data, blk.CID)
		if err := mem.Put(context.Background(), bb); err != nil {
			b.Fatal(err)
		}
		total += int64(len(blk.Data))
	}
	key, _, err := newKey()
	if err != nil {
		b.Fatal(err)
	}
	s := startServer(b, key, park.Blocks)
	ref := ipfstest.NewBitswapPeer(b, mem)
	for b.Loop() {
		var pick, kubo []map[string]float64
		for round := range ipfstest.BenchRounds() {
			for _, which := range []int{round % 2, 1 - round%2} {
				c := servetest.NewClient(b)
				// TCP to both: the reference peer has no QUIC.
				addrs := tcpOnly(s.P2pAddrs())
				if which == 1 {
					addrs = ref.Addrs()
				}
				if _, err := c.Connect(servetest.Within(b, 10*time.Second), addrs); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				n, err := c.FetchBytes(servetest.Within(b, 5*time.Minute), ks, 32)
				if err != nil || n != total {
					b.Fatalf("%d of %d bytes: %v", n, total, err)
				}
				m := map[string]float64{"MiB/s": float64(n) / (1 << 20) / time.Since(start).Seconds()}
				if which == 0 {
					pick = append(pick, m)
				} else {
					kubo = append(kubo, m)
				}
			}
		}
		p, k := ipfstest.Medians(pick), ipfstest.Medians(kubo)
		b.ReportMetric(p["MiB/s"], "carpark-MiB/s")
		b.ReportMetric(k["MiB/s"], "memory-MiB/s")
		b.ReportMetric(p["MiB/s"]/k["MiB/s"], "carpark/memory")
		b.ReportMetric(0, "ns/op")
	}
}
