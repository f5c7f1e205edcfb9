package serve_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/s3test"
)

// s3Carpark is the S3 store on a versitygw of its own.
func s3Carpark(b *testing.B) (*carstore.S3, *s3test.Server, string) {
	b.Helper()
	srv := s3test.Start(b)
	cfg := carstore.S3Config{StagingBucket: srv.CreateBucket(b, "staging"), CarparkBucket: srv.CreateBucket(b, "carpark")}
	store, err := carstore.NewS3WithClient(srv.Client, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	return store, srv, cfg.CarparkBucket
}

// discard reads r to its end in reads of up to 1 MiB, as a client that
// keeps what it reads would, and returns how many bytes it had. (io.Copy
// to io.Discard reads 8 KiB at a time: at a GiB a second, the client's
// own system calls would cost about as much processor time as the S3
// server's.)
func discard(r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// drain GETs url and returns how many bytes the body had.
func drain(b *testing.B, client *http.Client, url string, header ...string) int64 {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := discard(resp.Body)
	if err != nil || resp.StatusCode/100 != 2 {
		b.Fatalf("GET %s: %d, %v", url, resp.StatusCode, err)
	}
	return n
}

// getObject reads a whole object with a plain GetObject, as the baseline.
func getObject(b *testing.B, client *s3.Client, bucket, key string) int64 {
	b.Helper()
	out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		b.Fatal(err)
	}
	defer out.Body.Close()
	n, err := discard(out.Body)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkServeRawBlocks: raw-block latency over 100,000 requests for
// random blocks of a pinned DAG of about 100,000 blocks (a 100 MiB file
// in 1 KiB leaves) in S3 on versitygw, four clients at once: a lookup in
// SQLite and one range read each.
//
//	go test -run '^$' -bench ServeRawBlocks -benchtime 1x ./serve
func BenchmarkServeRawBlocks(b *testing.B) {
	store, _, _ := s3Carpark(b)
	f := newFixtureIn(b, store, ipfstest.FileOptions{Size: 100 << 20, ChunkSize: 1 << 10, Seed: 5, CIDv1: true})
	var cids []cid.Cid
	for _, blk := range blocks(b, f.car) {
		cids = append(cids, blk.cid)
	}
	const requests, clients = 100_000, 4
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	b.ResetTimer()
	for range b.N {
		lat := make([][]time.Duration, clients)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range clients {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), 1))
				for range requests / clients {
					c := cids[r.IntN(len(cids))]
					t0 := time.Now()
					drain(b, client, f.srv.URL+"/ipfs/"+c.String()+"?format=raw")
					lat[w] = append(lat[w], time.Since(t0))
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		all := slices.Concat(lat...)
		slices.Sort(all)
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(len(all))/took.Seconds(), "blocks/s")
		b.ReportMetric(float64(len(cids)), "dag-blocks")
	}
}

// BenchmarkServeWholeCAR: a pinned 256 MiB DAG's CAR through the serving
// role (read from S3, every block checked) against a plain GetObject of
// the same object from the same server, in the same run (target: the
// ratio of throughputs at least 0.9); and the file deserialized (boxo's
// UnixFS handler over the blockstore: one lookup and range read a block)
// against the same. It also reports what each way costs in processor
// time, this process's and the S3 server's together, per GiB read: on a
// machine of few cores, where the three ways compete for the same ones,
// that is what bounds the ratios.
//
//	go test -run '^$' -bench ServeWholeCAR -benchtime 1x ./serve
func BenchmarkServeWholeCAR(b *testing.B) {
	store, srv, bucket := s3Carpark(b)
	f := newFixtureIn(b, store, ipfstest.FileOptions{Size: 256 << 20, Seed: 6, CIDv1: true})
	client := &http.Client{}
	// way is one way of reading the object: its rates, and the processor
	// time and bytes of all its reads.
	type way struct {
		rates []float64
		cpu   time.Duration
		bytes int64
	}
	cpu := func() time.Duration { return s3test.ProcessCPU(os.Getpid()) + srv.CPUTime() }
	read := func(w *way, fn func() int64) float64 {
		c0, t0 := cpu(), time.Now()
		n := fn()
		rate := float64(n) / time.Since(t0).Seconds() / (1 << 20)
		w.cpu += cpu() - c0
		w.bytes += n
		w.rates = append(w.rates, rate)
		return rate
	}
	median := func(xs []float64) float64 {
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	perGiB := func(w *way) float64 { return w.cpu.Seconds() / (float64(w.bytes) / (1 << 30)) }
	b.ResetTimer()
	for range b.N {
		// Five rounds, each reading the object three ways one after the
		// other, so that the ratios compare reads under the same load;
		// the medians are reported.
		var plain, car, file way
		var carRatios, fileRatios []float64
		for range 5 {
			p := read(&plain, func() int64 { return getObject(b, srv.Client, bucket, f.stored.Key) })
			c := read(&car, func() int64 { return drain(b, client, f.srv.URL+"/ipfs/"+f.root.String()+"?format=car") })
			u := read(&file, func() int64 { return drain(b, client, f.srv.URL+"/ipfs/"+f.root.String()) })
			carRatios, fileRatios = append(carRatios, c/p), append(fileRatios, u/p)
		}
		b.ReportMetric(median(plain.rates), "getobject-MiB/s")
		b.ReportMetric(median(car.rates), "car-MiB/s")
		b.ReportMetric(median(carRatios), "car/getobject")
		b.ReportMetric(median(file.rates), "file-MiB/s")
		b.ReportMetric(median(fileRatios), "file/getobject")
		b.ReportMetric(perGiB(&plain), "getobject-cpu-s/GiB")
		b.ReportMetric(perGiB(&car), "car-cpu-s/GiB")
		b.ReportMetric(perGiB(&file), "file-cpu-s/GiB")
	}
}
