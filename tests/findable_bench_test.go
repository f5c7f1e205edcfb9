package tests

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/servetest"
)

// BenchmarkBitswapAgainstKubo measures bitswap throughput from pickup's
// serving role to boxo's bitswap client, beside kubo (.tools/bin/ipfs,
// online, no routing) serving the same DAG to the same client, in one
// run: a random file of 256 MiB (1 GiB with PICKUP_BENCH_LONG) pinned by
// pickup from the test origin (PostgreSQL views, the carpark on
// versitygw: every block a range read of S3) and imported into kubo from
// the same CAR (its flatfs blockstore on local disk). Each round a new
// client (a host of its own) connects to one of them and gets every block
// of the DAG in one session, in the CAR's order, 32 blocks wanted ahead
// (servetest.Client.FetchBytes), the two in alternating order, for PICKUP_BENCH_ROUNDS rounds (5); the figures are
// the medians, and the ratio pickup/kubo (target ≥ 1).
//
//	make bench   # or: go test -run '^$' -bench BitswapAgainstKubo -benchtime 1x ./tests
func BenchmarkBitswapAgainstKubo(b *testing.B) {
	bin := kuboBinary(b)
	size := int64(256 << 20)
	if os.Getenv("PICKUP_BENCH_LONG") != "" {
		size = 1 << 30
	}
	c := newCluster(b, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"})
	c.start("fetcher", []string{"fetcher"}, "PICKUP_LOG_LEVEL=info")
	srv := c.start("serve", []string{"serve"}, "PICKUP_LOG_LEVEL=info")
	cl := c.client(gw.api())
	root := c.file(size, 77)
	ps := cl.add(root.String(), "bench")
	if _, final := cl.waitStatus(ps.RequestID, 10*time.Minute); final.Status != "pinned" {
		b.Fatalf("pin ended %s: %v", final.Status, final.Info)
	}
	car := c.export(root)
	var ks []cid.Cid
	var dagBytes int64
	for _, blk := range blocksOf(b, car) {
		ks = append(ks, blk.cid)
		dagBytes += int64(len(blk.data))
	}
	c.bs = nil // the origin's copy is no longer needed
	waitUntil(b, time.Minute, "the DAG served", func() bool {
		resp, err := http.Head("http://" + srv.addrs["serve"] + "/ipfs/" + root.String() + "?format=raw")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// TCP to both (kubo's QUIC is not dialed either): the transport is
	// the client's choice, the server is what is measured.
	var pickupAddrs []multiaddr.Multiaddr
	for _, a := range srv.peerOf(b).Addrs {
		if _, err := a.ValueForProtocol(multiaddr.P_TCP); err == nil {
			pickupAddrs = append(pickupAddrs, a)
		}
	}

	k := &routedKubo{bin: bin, repo: filepath.Join(b.TempDir(), "ipfs")}
	k.run(b, "init", "--profile=test", "--empty-repo")
	k.run(b, "config", "Routing.Type", "none")
	carFile := filepath.Join(b.TempDir(), "dag.car")
	if err := os.WriteFile(carFile, car, 0o644); err != nil {
		b.Fatal(err)
	}
	car = nil
	k.run(b, "dag", "import", "--pin-roots", carFile)
	os.Remove(carFile)
	k.daemon(b)
	var kuboAddrs []multiaddr.Multiaddr
	for _, line := range strings.Fields(string(k.run(b, "swarm", "addrs", "local", "--id"))) {
		if strings.HasPrefix(line, "/ip4/127.0.0.1/tcp/") {
			kuboAddrs = append(kuboAddrs, multiaddr.StringCast(line))
		}
	}
	if len(kuboAddrs) == 0 {
		b.Fatal("kubo has no loopback TCP address")
	}

	// 32 blocks wanted ahead: 8 MiB of 256 KiB chunks, the window of
	// pickup's own bitswap fetcher.
	const window = 32
	fetch := func(addrs []multiaddr.Multiaddr) map[string]float64 {
		client := servetest.NewClient(b)
		if _, err := client.Connect(servetest.Within(b, 10*time.Second), addrs); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		n, err := client.FetchBytes(servetest.Within(b, 10*time.Minute), ks, window)
		secs := time.Since(start).Seconds()
		if err != nil || n != dagBytes {
			b.Fatalf("fetched %d of %d bytes: %v", n, dagBytes, err)
		}
		return map[string]float64{"seconds": secs, "MiB/s": float64(n) / (1 << 20) / secs}
	}
	for b.Loop() {
		var picks, kubos []map[string]float64
		for round := range ipfstest.BenchRounds() {
			if round%2 == 0 {
				picks = append(picks, fetch(pickupAddrs))
				kubos = append(kubos, fetch(kuboAddrs))
			} else {
				kubos = append(kubos, fetch(kuboAddrs))
				picks = append(picks, fetch(pickupAddrs))
			}
			b.Logf("round %d: pickup %.1f MiB/s, kubo %.1f MiB/s", round, picks[round]["MiB/s"], kubos[round]["MiB/s"])
		}
		pick, kubo := ipfstest.Medians(picks), ipfstest.Medians(kubos)
		b.ReportMetric(pick["MiB/s"], "pickup-MiB/s")
		b.ReportMetric(kubo["MiB/s"], "kubo-MiB/s")
		b.ReportMetric(pick["MiB/s"]/kubo["MiB/s"], "pickup/kubo")
		b.ReportMetric(float64(len(ks)), "blocks")
		b.ReportMetric(0, "ns/op")
	}
}
