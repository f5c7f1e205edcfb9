package fetcher_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/trustless"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/s3test"
)

// BenchmarkFetchIntoS3 measures the whole byte path, side by side with its
// ceiling (with the CPU of each process, the fetcher's, the S3 server's and
// the origin's, to show where the time goes): a DAG fetched from a
// trustless gateway on loopback, verified, and streamed as a CAR into
// versitygw (staged, completed), against uploading the same CAR's bytes
// from a file through the same store with no fetch at all. Each run is a
// child process, so its peak resident memory is its own; the two alternate
// for PICKUP_BENCH_ROUNDS rounds (5) and the figures are the medians.
//
//	make tools && go test -run '^$' -bench FetchIntoS3 -benchtime 1x ./fetcher/
func BenchmarkFetchIntoS3(b *testing.B) {
	for _, size := range ipfstest.BenchSizes() {
		fx := ipfstest.NewFixture(b, size)
		root, car := fx.Root, fx.CAR
		origin := ipfstest.NewCARFileGateway(b, car)
		// The defaults (8 MiB × 2) beside bigger parts, for what memory
		// buys; and behind a link slower than the CPU, as S3 is from a
		// fetcher in a cloud, where the wire, not the processor, sets
		// the pace.
		for _, c := range []struct{ partMiB, concurrency, wireMBps int }{{8, 2, 0}, {16, 4, 0}, {8, 2, 100}} {
			name := fmt.Sprintf("dag=%dMiB/parts=%dMiBx%d", size>>20, c.partMiB, c.concurrency)
			if c.wireMBps > 0 {
				name += fmt.Sprintf("/wire=%dMBps", c.wireMBps)
			}
			b.Run(name, func(b *testing.B) {
				srv := s3test.Start(b)
				endpoint := srv.Endpoint
				if c.wireMBps > 0 {
					endpoint = srv.Link(b, c.wireMBps*1e6)
				}
				params := map[string]string{
					"endpoint": endpoint, "access": srv.AccessKey, "secret": srv.SecretKey, "region": srv.Region,
					"staging": srv.CreateBucket(b, "staging"), "carpark": srv.CreateBucket(b, "carpark"),
					"part": strconv.Itoa(c.partMiB), "concurrency": strconv.Itoa(c.concurrency),
					"root": root.String(), "car": car, "origin": origin.URL(),
				}
				client := srv.NewClient()
				run := func(mode string) map[string]float64 {
					params["mode"] = mode
					// This process only waits for the child and serves the
					// origin (and the link, if any): its CPU is theirs.
					server, origin := srv.CPUTime(), ipfstest.CPUTime()
					m, err := ipfstest.RunChild(context.Background(), "TestBenchChildTransfer", params)
					if err != nil {
						b.Fatal(err)
					}
					m["server-CPU-s"] = (srv.CPUTime() - server).Seconds()
					m["origin-CPU-s"] = (ipfstest.CPUTime() - origin).Seconds()
					// Every run starts alike: no CAR of the last one left
					// for the kernel to write back meanwhile.
					deleteAll(b, client, params["staging"])
					syscall.Sync()
					return m
				}
				for b.Loop() {
					// One run of each is at the mercy of two shared cores:
					// alternate them for several rounds, compare medians.
					var ups, fetches []map[string]float64
					for round := range ipfstest.BenchRounds() {
						if round%2 == 0 {
							ups = append(ups, run("upload"))
							fetches = append(fetches, run("fetch"))
						} else {
							fetches = append(fetches, run("fetch"))
							ups = append(ups, run("upload"))
						}
					}
					for i := range ups {
						b.Logf("round %d: upload %.1f MB/s (tail %.2f s), fetch %.1f MB/s (tail %.2f s)", i, ups[i]["MB/s"], ups[i]["complete-s"], fetches[i]["MB/s"], fetches[i]["complete-s"])
					}
					up, fetch := ipfstest.Medians(ups), ipfstest.Medians(fetches)
					b.ReportMetric(up["MB/s"], "upload-only-MB/s")
					b.ReportMetric(fetch["MB/s"], "fetch-to-S3-MB/s")
					b.ReportMetric(100*fetch["MB/s"]/up["MB/s"], "%-of-upload")
					b.ReportMetric(fetch["peak-RSS-MiB"], "fetch-peak-RSS-MiB")
					b.ReportMetric(up["peak-RSS-MiB"], "upload-peak-RSS-MiB")
					b.ReportMetric(fetch["CPU-s"], "fetch-CPU-s")
					b.ReportMetric(up["CPU-s"], "upload-CPU-s")
					b.ReportMetric(fetch["server-CPU-s"], "fetch-server-CPU-s")
					b.ReportMetric(up["server-CPU-s"], "upload-server-CPU-s")
					b.ReportMetric(fetch["seconds"], "fetch-s")
					b.ReportMetric(up["seconds"], "upload-s")
					b.ReportMetric(fetch["origin-CPU-s"], "fetch-origin-CPU-s")
					b.ReportMetric(fetch["complete-s"], "fetch-complete-s")
					b.ReportMetric(up["complete-s"], "upload-complete-s")
					b.ReportMetric(0, "ns/op")
				}
			})
		}
	}
}

// deleteAll deletes every object in bucket.
func deleteAll(b *testing.B, client *s3.Client, bucket string) {
	b.Helper()
	list, err := client.ListObjectsV2(b.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range list.Contents {
		if _, err := client.DeleteObject(b.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBenchChildTransfer is BenchmarkFetchIntoS3's child: it moves one CAR
// into the staging bucket, by fetching the DAG or by uploading the file.
func TestBenchChildTransfer(t *testing.T) {
	p, ok := ipfstest.ChildParams()
	if !ok {
		t.Skip("run by BenchmarkFetchIntoS3 in a child process")
	}
	ctx := context.Background()
	part, _ := strconv.Atoi(p["part"])
	concurrency, _ := strconv.Atoi(p["concurrency"])
	store, err := carstore.NewS3(ctx, carstore.S3Config{
		StagingBucket: p["staging"], CarparkBucket: p["carpark"], Endpoint: p["endpoint"], Region: p["region"],
		AccessKeyID: p["access"], SecretAccessKey: p["secret"], PartSize: int64(part) << 20, Concurrency: concurrency,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := cid.MustParse(p["root"])
	meta := carstore.Metadata{Root: root, RequestID: "bench"}
	// PICKUP_BENCH_CPUPROFILE=prefix writes prefix-<mode>.pprof.
	if prefix := os.Getenv("PICKUP_BENCH_CPUPROFILE"); prefix != "" {
		f, err := os.Create(prefix + "-" + p["mode"] + ".pprof")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	key := carstore.StagingKey("bench", int(time.Now().UnixNano()%1e6))
	measure := ipfstest.StartFetch(t)
	measure.Begin()
	var upload carstore.Upload
	switch p["mode"] {
	case "upload":
		f, err := os.Open(p["car"])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if upload, err = store.Stage(ctx, key, meta); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyBuffer(upload, f, make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
	case "fetch":
		src, err := trustless.New(trustless.Config{URL: p["origin"]})
		if err != nil {
			t.Fatal(err)
		}
		d, err := dag.New([]dag.Source{src}, dag.Limits{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, sink, err := d.Fetch(ctx, dag.Request{Root: root}, func(ctx context.Context) (dag.Sink, error) { return store.Stage(ctx, key, meta) }, nil)
		if err != nil {
			t.Fatal(err)
		}
		upload = sink.(carstore.Upload)
	}
	// Complete sends the last part and waits while the server assembles
	// the object: a tail the same for both ways.
	completing := time.Now()
	staged, err := upload.Complete(ctx)
	tail := time.Since(completing)
	if err != nil {
		t.Fatal(err)
	}
	measure.Report(t, staged.Bytes, map[string]float64{"complete-s": tail.Seconds()})
	// The S3 store leaves a staged CAR as an open upload in the carpark
	// bucket until it is promoted: none is, so none may stay.
	if err := upload.Abort(ctx); err != nil {
		t.Fatal(err)
	}
}
