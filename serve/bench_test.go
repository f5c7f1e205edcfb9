package serve_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
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
	n, err := io.Copy(io.Discard, resp.Body)
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
	n, err := io.Copy(io.Discard, out.Body)
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
// against the same.
//
//	go test -run '^$' -bench ServeWholeCAR -benchtime 1x ./serve
func BenchmarkServeWholeCAR(b *testing.B) {
	store, srv, bucket := s3Carpark(b)
	f := newFixtureIn(b, store, ipfstest.FileOptions{Size: 256 << 20, Seed: 6, CIDv1: true})
	client := &http.Client{}
	rate := func(fn func() int64) float64 {
		t0 := time.Now()
		n := fn()
		return float64(n) / time.Since(t0).Seconds() / (1 << 20)
	}
	median := func(xs []float64) float64 {
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	b.ResetTimer()
	for range b.N {
		// Five rounds, each reading the object three ways one after the
		// other, so that the ratios compare reads under the same load;
		// the medians are reported.
		var plains, cars, files, carRatios, fileRatios []float64
		for range 5 {
			plain := rate(func() int64 { return getObject(b, srv.Client, bucket, f.stored.Key) })
			car := rate(func() int64 { return drain(b, client, f.srv.URL+"/ipfs/"+f.root.String()+"?format=car") })
			file := rate(func() int64 { return drain(b, client, f.srv.URL+"/ipfs/"+f.root.String()) })
			plains, cars, files = append(plains, plain), append(cars, car), append(files, file)
			carRatios, fileRatios = append(carRatios, car/plain), append(fileRatios, file/plain)
		}
		b.ReportMetric(median(plains), "getobject-MiB/s")
		b.ReportMetric(median(cars), "car-MiB/s")
		b.ReportMetric(median(carRatios), "car/getobject")
		b.ReportMetric(median(files), "file-MiB/s")
		b.ReportMetric(median(fileRatios), "file/getobject")
	}
}
