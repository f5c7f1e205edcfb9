package carstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/s3test"
)

// benchBytes is how much each upload benchmark sends: 256 MiB, or
// PICKUP_BENCH_MIB MiB.
func benchBytes(b *testing.B) int64 {
	mib := int64(256)
	if v := os.Getenv("PICKUP_BENCH_MIB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("PICKUP_BENCH_MIB=%q: want a positive number of MiB", v)
		}
		mib = n
	}
	return mib * carstore.MiB
}

// source is an unseekable stream of size bytes, as a fetch delivers a CAR:
// a block of random bytes over and over (S3 neither compresses nor
// deduplicates, so repeating costs nothing in realism).
type source struct {
	block []byte
	left  int64
	off   int
}

func newSource(block []byte, size int64) *source { return &source{block: block, left: size} }

func (s *source) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.left)]
	n := 0
	for n < len(p) {
		c := copy(p[n:], s.block[s.off:])
		n += c
		s.off = (s.off + c) % len(s.block)
	}
	s.left -= int64(n)
	return n, nil
}

func randomBlock(b *testing.B) []byte {
	block := make([]byte, 4*carstore.MiB)
	if _, err := rand.Read(block); err != nil {
		b.Fatal(err)
	}
	return block
}

// copyBuffer is the size of the writes into an upload: about a DAG block or
// a network read.
const copyBuffer = 256 << 10

// BenchmarkUpload is the "no fetch at all" baseline: the same bytes, from
// an unseekable reader, into versitygw on loopback, through pickup's
// uploader and through the SDK's own ways. The end-to-end fetch benchmark
// is measured against "carstore". Every case uses 16 MiB parts, 4 at once.
// Besides MB/s, each case reports the processor time it cost this process
// and the server per GiB, figures that other load on the machine does not
// skew.
//
//	make tools && go test -run '^$' -bench Upload -benchtime 3x ./fetcher/carstore/
func BenchmarkUpload(b *testing.B) {
	size := benchBytes(b)
	block := randomBlock(b)
	const partSize, concurrency = 16 * carstore.MiB, 4

	cases := []struct {
		name string
		// setup returns the upload of the i-th object.
		setup func(b *testing.B, store *carstore.S3, srv *s3test.Server, bucket string) func(i int) error
	}{
		// pickup's uploader: SHA-256 per part (checked by the server) and
		// of the whole CAR (its CAR CID), then Complete.
		{"carstore", func(b *testing.B, store *carstore.S3, _ *s3test.Server, _ string) func(int) error {
			return func(i int) error {
				_, err := stageBench(b, store, "bench/"+strconv.Itoa(i)+".car", block, size)
				return err
			}
		}},
		// The same, then validation and the move to the carpark: what a pin
		// costs in storage from first byte to CarValidated.
		{"carstore+promote", func(b *testing.B, store *carstore.S3, _ *s3test.Server, _ string) func(int) error {
			return func(i int) error {
				key := "bench/" + strconv.Itoa(i) + ".car"
				st, err := stageBench(b, store, key, block, size)
				if err != nil {
					return err
				}
				_, err = store.Promote(b.Context(), key, carstore.Expected{Bytes: st.Bytes, CarCID: st.CarCID, Metadata: benchMeta(b), Checksum: st.Checksum})
				return err
			}
		}},
		// The SDK's transfer manager from the same stream, with its default
		// checksums (CRC32 per part, named on create).
		{"transfermanager", func(b *testing.B, _ *carstore.S3, srv *s3test.Server, bucket string) func(int) error {
			tm := transfermanager.New(srv.NewClient(), func(o *transfermanager.Options) {
				o.PartSizeBytes, o.Concurrency = partSize, concurrency
			})
			return func(i int) error {
				_, err := tm.UploadObject(b.Context(), &transfermanager.UploadObjectInput{
					Bucket: aws.String(bucket), Key: aws.String("tm/" + strconv.Itoa(i)), Body: newSource(block, size),
				})
				return err
			}
		}},
		// One PutObject from the stream, no checksum. Over plain HTTP SigV4
		// wants the payload's SHA-256 before sending, which an unseekable
		// body cannot give, so the payload goes unsigned.
		{"putobject-stream", func(b *testing.B, _ *carstore.S3, srv *s3test.Server, bucket string) func(int) error {
			client := srv.NewClient()
			return func(i int) error {
				_, err := client.PutObject(b.Context(), &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String("put/" + strconv.Itoa(i)),
					Body: io.NopCloser(newSource(block, size)), ContentLength: aws.Int64(size),
				}, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
				return err
			}
		}},
		// One PutObject of the whole blob held in memory (what a streaming
		// fetcher cannot do; the best case for one request): the SDK hashes
		// it to sign it, then sends it.
		{"putobject-memory", func(b *testing.B, _ *carstore.S3, srv *s3test.Server, bucket string) func(int) error {
			client := srv.NewClient()
			blob := make([]byte, size)
			if _, err := io.ReadFull(newSource(block, size), blob); err != nil {
				b.Fatal(err)
			}
			return func(i int) error {
				_, err := client.PutObject(b.Context(), &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String("put/" + strconv.Itoa(i)),
					Body: bytes.NewReader(blob),
				})
				return err
			}
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			store, srv, bucket := benchStore(b, partSize, concurrency)
			upload := c.setup(b, store, srv, bucket)
			b.SetBytes(size)
			client, server := processCPU(), srv.CPUTime()
			i := 0
			for b.Loop() {
				if err := upload(i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			gib := float64(size) * float64(i) / carstore.GiB
			b.ReportMetric((processCPU()-client).Seconds()/gib, "client-cpu-s/GiB")
			b.ReportMetric((srv.CPUTime()-server).Seconds()/gib, "server-cpu-s/GiB")
		})
	}
}

// stageBench uploads size bytes of block to key through the store.
func stageBench(b *testing.B, store *carstore.S3, key string, block []byte, size int64) (carstore.Staged, error) {
	up, err := store.Stage(b.Context(), key, benchMeta(b))
	if err != nil {
		return carstore.Staged{}, err
	}
	if _, err := io.CopyBuffer(up, newSource(block, size), make([]byte, copyBuffer)); err != nil {
		return carstore.Staged{}, errors.Join(err, up.Abort(b.Context()))
	}
	return up.Complete(b.Context())
}

// processCPU is the processor time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchStore starts versitygw and returns an S3 store on it, the server,
// and the staging bucket.
func benchStore(b *testing.B, partSize int64, concurrency int) (*carstore.S3, *s3test.Server, string) {
	srv := s3test.Start(b)
	cfg := carstore.S3Config{
		StagingBucket: srv.CreateBucket(b, "staging"), CarparkBucket: srv.CreateBucket(b, "carpark"),
		Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
		PartSize: partSize, Concurrency: concurrency,
	}
	store, err := carstore.NewS3(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	return store, srv, cfg.StagingBucket
}

func benchMeta(b *testing.B) carstore.Metadata {
	_, meta, _ := testCar(b, 0)
	return meta
}

// BenchmarkPromote measures what the move from staging to the carpark
// costs, by itself: a CAR staged (untimed), then Promote (timed), with the
// server's processor time per GiB. Promote completes the multipart upload
// the CAR was written into at its carpark key: on versitygw's posix
// backend that assembles the parts into one file (copy_file_range), a cost
// web3-storage/pickup's upload pays too, in its last step. (Until 3 Dec
// 2026 Promote copied the staged object: 256 MiB took 0.68 s with one
// CopyObject, 0.47 s with a multipart copy of 64 MiB ranges 4 at once;
// 2.5-2.9 server CPU-s per GiB, the server hashing what it wrote anew.)
//
//	make tools && go test -run '^$' -bench Promote -benchtime 3x ./fetcher/carstore/
func BenchmarkPromote(b *testing.B) {
	size := benchBytes(b)
	block := randomBlock(b)
	srv := s3test.Start(b)
	cfg := carstore.S3Config{
		StagingBucket: srv.CreateBucket(b, "staging"), CarparkBucket: srv.CreateBucket(b, "carpark"),
		Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
	}
	store, err := carstore.NewS3(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	var promote, server time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		key := "bench/" + strconv.Itoa(i) + ".car"
		st, err := stageBench(b, store, key, block, size)
		if err != nil {
			b.Fatal(err)
		}
		syscall.Sync()
		b.StartTimer()
		began, cpu := time.Now(), srv.CPUTime()
		stored, err := store.Promote(b.Context(), key, carstore.Expected{Bytes: st.Bytes, CarCID: st.CarCID, Metadata: benchMeta(b), Checksum: st.Checksum})
		if err != nil {
			b.Fatal(err)
		}
		promote += time.Since(began)
		server += srv.CPUTime() - cpu
		b.StopTimer()
		if _, err := srv.Client.DeleteObject(b.Context(), &s3.DeleteObjectInput{Bucket: aws.String(cfg.CarparkBucket), Key: aws.String(stored.Key)}); err != nil {
			b.Fatal(err)
		}
		syscall.Sync()
		b.StartTimer()
		i++
	}
	b.ReportMetric(promote.Seconds()/float64(i), "promote-s")
	b.ReportMetric(float64(size)/1e6/(promote.Seconds()/float64(i)), "promote-MB/s")
	b.ReportMetric(server.Seconds()/(float64(size)*float64(i)/carstore.GiB), "server-cpu-s/GiB")
}
