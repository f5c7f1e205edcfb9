package carstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/fetcher/carstore/carstoretest"
	"github.com/pickup-ipfs/pickup/internal/s3test"
)

// s3Backend runs the suite on versitygw: a real S3-compatible server on
// loopback, one per test, with the staging area under a prefix of its
// bucket, as a deployment may have it.
var s3Backend = carstoretest.Backend{
	New: func(t *testing.T, tune carstoretest.Tuning) carstoretest.Instance {
		srv := s3test.Start(t)
		cfg := carstore.S3Config{
			StagingBucket:          srv.CreateBucket(t, "staging"),
			CarparkBucket:          srv.CreateBucket(t, "carpark"),
			StagingPrefix:          "staging/",
			Endpoint:               srv.Endpoint,
			Region:                 srv.Region,
			AccessKeyID:            srv.AccessKey,
			SecretAccessKey:        srv.SecretKey,
			PartSize:               tune.PartSize,
			Concurrency:            tune.Concurrency,
			MultipartCopyThreshold: tune.MultipartCopyThreshold,
			CopyPartSize:           tune.CopyPartSize,
		}
		return s3Instance(t, srv, cfg)
	},
}

func s3Instance(t *testing.T, srv *s3test.Server, cfg carstore.S3Config) carstoretest.Instance {
	store, err := carstore.NewS3(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return carstoretest.Instance{
		Store: store,
		Keys: func(t *testing.T, area carstore.Area) []string {
			if area == carstore.AreaStaging {
				return objectKeys(t, srv.Client, cfg.StagingBucket, cfg.StagingPrefix)
			}
			return objectKeys(t, srv.Client, cfg.CarparkBucket, "")
		},
		Overwrite: func(t *testing.T, key string, data []byte) {
			_, err := srv.Client.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(cfg.StagingBucket), Key: aws.String(cfg.StagingPrefix + key),
				Body: bytes.NewReader(data),
			})
			if err != nil {
				t.Fatalf("overwrite %s: %v", key, err)
			}
		},
	}
}

func TestS3Conformance(t *testing.T) { carstoretest.Run(t, s3Backend) }

// objectKeys lists a bucket's keys under prefix, with the prefix cut.
func objectKeys(t *testing.T, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, strings.TrimPrefix(aws.ToString(o.Key), prefix))
		}
	}
	slices.Sort(keys)
	return keys
}

// recorder is an HTTP client that notes each request's method and path, to
// show which S3 calls a step made.
type recorder struct {
	mu   sync.Mutex
	reqs []string
	next *http.Client
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.Path+"?"+req.URL.RawQuery)
	r.mu.Unlock()
	return r.next.Do(req)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// testCar is random bytes with what a fetcher records of them.
func testCar(t testing.TB, size int) ([]byte, carstore.Metadata, cid.Cid) {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	root, _ := mh.Sum([]byte(t.Name()), mh.SHA2_256, -1)
	return data, carstore.Metadata{Root: cid.NewCidV1(cid.DagProtobuf, root), RequestID: "req-" + strconv.Itoa(size)}, carstore.CarCID(sum[:])
}

type s3Fixture struct {
	srv   *s3test.Server
	cfg   carstore.S3Config
	store *carstore.S3
	rec   *recorder
}

func newS3Fixture(t *testing.T, cfg carstore.S3Config, clientOpts ...func(*s3.Options)) s3Fixture {
	t.Helper()
	srv := s3test.Start(t)
	cfg.StagingBucket = srv.CreateBucket(t, "staging")
	cfg.CarparkBucket = srv.CreateBucket(t, "carpark")
	rec := &recorder{next: &http.Client{}}
	client := srv.NewClient(append([]func(*s3.Options){func(o *s3.Options) { o.HTTPClient = rec }}, clientOpts...)...)
	store, err := carstore.NewS3WithClient(client, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s3Fixture{srv: srv, cfg: cfg, store: store, rec: rec}
}

func (f s3Fixture) stage(t *testing.T, key string, data []byte, meta carstore.Metadata) carstore.Staged {
	t.Helper()
	up, err := f.store.Stage(context.Background(), key, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	st, err := up.Complete(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Promote takes the server's own checksums as proof where they are one, and
// reads the CAR back only where they are not: with the composite SHA-256 of
// pickup's multipart upload and the Checksum that Complete returned, or with
// a full-object SHA-256 (an object put in one request), nothing is read
// back; a checksum that contradicts the CAR CID fails validation.
func TestS3ValidationUsesServerChecksums(t *testing.T) {
	f := newS3Fixture(t, carstore.S3Config{PartSize: 5 * carstore.MiB})
	put := func(t *testing.T, key string, data []byte, algo types.ChecksumAlgorithm) {
		_, err := f.srv.Client.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(f.cfg.StagingBucket), Key: aws.String(key), Body: bytes.NewReader(data), ChecksumAlgorithm: algo,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		// store puts data at key and returns the Checksum to expect.
		store    func(t *testing.T, key string, data []byte, meta carstore.Metadata) string
		valid    bool
		readBack bool
	}{
		{"multipart upload with its checksum", func(t *testing.T, key string, data []byte, meta carstore.Metadata) string {
			return f.stage(t, key, data, meta).Checksum
		}, true, false},
		{"multipart upload without its checksum", func(t *testing.T, key string, data []byte, meta carstore.Metadata) string {
			f.stage(t, key, data, meta)
			return ""
		}, true, true},
		{"single put with SHA-256", func(t *testing.T, key string, data []byte, _ carstore.Metadata) string {
			put(t, key, data, types.ChecksumAlgorithmSha256)
			return ""
		}, true, false},
		{"single put with SHA-256 of other bytes", func(t *testing.T, key string, data []byte, _ carstore.Metadata) string {
			other := bytes.Clone(data)
			other[7] ^= 0x80
			put(t, key, other, types.ChecksumAlgorithmSha256)
			return ""
		}, false, false},
		{"single put without checksum", func(t *testing.T, key string, data []byte, _ carstore.Metadata) string {
			put(t, key, data, "")
			return ""
		}, true, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, meta, carCID := testCar(t, 11*carstore.MiB+i)
			key := carstore.StagingKey(meta.RequestID, 1)
			checksum := tc.store(t, key, data, meta)
			f.rec.take()
			_, err := f.store.Promote(context.Background(), key, carstore.Expected{Bytes: int64(len(data)), CarCID: carCID, Metadata: meta, Checksum: checksum})
			if tc.valid && err != nil || !tc.valid && !errors.Is(err, carstore.ErrValidation) {
				t.Fatalf("promote: %v, want valid %v", err, tc.valid)
			}
			readBack := slices.ContainsFunc(f.rec.take(), func(r string) bool {
				return strings.HasPrefix(r, "GET /"+f.cfg.StagingBucket+"/"+key)
			})
			if readBack != tc.readBack {
				t.Errorf("staged object read back: %v, want %v", readBack, tc.readBack)
			}
		})
	}
}

// The staged object of a multipart upload carries its metadata and the
// composite SHA-256 the uploader computed, as the server reports it.
func TestS3StagedObject(t *testing.T) {
	f := newS3Fixture(t, carstore.S3Config{PartSize: 5 * carstore.MiB})
	data, meta, carCID := testCar(t, 11*carstore.MiB)
	key := carstore.StagingKey(meta.RequestID, 1)
	st := f.stage(t, key, data, meta)
	if st.Checksum == "" || st.CarCID != carCID || st.Bytes != int64(len(data)) {
		t.Fatalf("staged %+v, want a checksum, CAR CID %s, %d bytes", st, carCID, len(data))
	}
	head, err := f.srv.Client.HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(f.cfg.StagingBucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(head.ChecksumSHA256); !strings.HasSuffix(st.Checksum, ":"+got) || !strings.HasSuffix(got, "-3") {
		t.Errorf("server's checksum %q is not the staged one %q (3 parts)", got, st.Checksum)
	}
	if head.Metadata[carstore.MetaRoot] != meta.Root.String() || head.Metadata[carstore.MetaRequestID] != meta.RequestID ||
		aws.ToString(head.ContentType) != "application/vnd.ipld.car" {
		t.Errorf("staged object's metadata %v, type %q", head.Metadata, aws.ToString(head.ContentType))
	}
}

// CARs over the threshold reach the carpark by a multipart copy (the
// object's ETag tells: "<md5>-<parts>"), smaller ones by one CopyObject.
func TestS3CopyPathByThreshold(t *testing.T) {
	f := newS3Fixture(t, carstore.S3Config{
		PartSize: 5 * carstore.MiB, MultipartCopyThreshold: 8 * carstore.MiB, CopyPartSize: 5 * carstore.MiB,
	})
	for _, tc := range []struct {
		size  int
		parts string
	}{
		{8 * carstore.MiB, ""},    // at the threshold: one CopyObject
		{13 * carstore.MiB, "-3"}, // above: 5 + 5 + 3 MiB
	} {
		data, meta, carCID := testCar(t, tc.size)
		key := carstore.StagingKey(meta.RequestID, 1)
		st := f.stage(t, key, data, meta)
		f.rec.take()
		if _, err := f.store.Promote(context.Background(), key, carstore.Expected{Bytes: int64(len(data)), CarCID: carCID, Metadata: meta, Checksum: st.Checksum}); err != nil {
			t.Fatal(err)
		}
		copies := 0
		for _, r := range f.rec.take() {
			if strings.Contains(r, "partNumber=") {
				copies++
			}
		}
		head, err := f.srv.Client.HeadObject(context.Background(), &s3.HeadObjectInput{
			Bucket: aws.String(f.cfg.CarparkBucket), Key: aws.String(carstore.CarKey(carCID)),
		})
		if err != nil {
			t.Fatal(err)
		}
		etag := strings.Trim(aws.ToString(head.ETag), `"`)
		_, suffix, _ := strings.Cut(etag, "-")
		if tc.parts == "" && (suffix != "" || copies != 0) || tc.parts != "" && ("-"+suffix != tc.parts || copies != 3) {
			t.Errorf("%d bytes: carpark ETag %s, %d part copies; want parts %q", tc.size, etag, copies, tc.parts)
		}
		if head.Metadata[carstore.MetaCarCID] != carCID.String() || head.Metadata[carstore.MetaStructure] != "Complete" {
			t.Errorf("%d bytes: carpark metadata %v", tc.size, head.Metadata)
		}
	}
}

// When S3 goes down mid-upload, the upload fails; Abort cannot reach the
// server either and says so; once S3 is back, the upload shows as open, and
// Abort, called again, leaves nothing behind.
func TestS3DownMidUpload(t *testing.T) {
	f := newS3Fixture(t, carstore.S3Config{PartSize: 5 * carstore.MiB, Concurrency: 2, CleanupTimeout: 5 * time.Second},
		func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	data, meta, _ := testCar(t, 6*carstore.MiB)
	key := carstore.StagingKey(meta.RequestID, 1)
	up, err := f.store.Stage(ctx, key, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	f.srv.Stop()
	if _, err := up.Complete(ctx); err == nil {
		t.Fatal("complete succeeded with the server down")
	}
	if err := up.Abort(ctx); err == nil {
		t.Fatal("abort reported success with the server down")
	}
	f.srv.Restart()
	open, err := f.store.OpenUploads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Key != key {
		t.Fatalf("open uploads after the outage: %+v, want %s", open, key)
	}
	if err := up.Abort(ctx); err != nil {
		t.Fatalf("abort after the outage: %v", err)
	}
	open, err = f.store.OpenUploads(ctx)
	if err != nil || len(open) != 0 {
		t.Fatalf("open uploads after abort: %+v, %v", open, err)
	}
	if keys := objectKeys(t, f.srv.Client, f.cfg.StagingBucket, ""); len(keys) != 0 {
		t.Fatalf("staging holds %v", keys)
	}
}

func TestS3ConfigValidate(t *testing.T) {
	ok := carstore.S3Config{StagingBucket: "s", CarparkBucket: "c"}
	cases := []struct {
		name  string
		edit  func(*carstore.S3Config)
		valid bool
	}{
		{"defaults", func(*carstore.S3Config) {}, true},
		{"one bucket with a prefix", func(c *carstore.S3Config) { c.CarparkBucket, c.StagingPrefix = "s", "staging/" }, true},
		{"one bucket without a prefix", func(c *carstore.S3Config) { c.CarparkBucket = "s" }, false},
		{"no staging bucket", func(c *carstore.S3Config) { c.StagingBucket = "" }, false},
		{"no carpark bucket", func(c *carstore.S3Config) { c.CarparkBucket = "" }, false},
		{"access key without secret", func(c *carstore.S3Config) { c.AccessKeyID = "k" }, false},
		{"static credentials", func(c *carstore.S3Config) { c.AccessKeyID, c.SecretAccessKey = "k", "s" }, true},
		{"part size under 5 MiB", func(c *carstore.S3Config) { c.PartSize = 5*carstore.MiB - 1 }, false},
		{"part size of 5 MiB", func(c *carstore.S3Config) { c.PartSize = 5 * carstore.MiB }, true},
		{"part size over 5 GiB", func(c *carstore.S3Config) { c.PartSize = 5*carstore.GiB + 1 }, false},
		{"negative concurrency", func(c *carstore.S3Config) { c.Concurrency = -1 }, false},
		{"copy threshold over 5 GiB", func(c *carstore.S3Config) { c.MultipartCopyThreshold = 5*carstore.GiB + 1 }, false},
		{"copy threshold of 1 byte", func(c *carstore.S3Config) { c.MultipartCopyThreshold = 1 }, true},
		{"copy part size under 5 MiB", func(c *carstore.S3Config) { c.CopyPartSize = 1 }, false},
		{"prefix with a space", func(c *carstore.S3Config) { c.StagingPrefix = "a b/" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.WithDefaults().Validate()
			if (err == nil) != tc.valid {
				t.Fatalf("validate: %v, want valid %v", err, tc.valid)
			}
			if err != nil && !errors.Is(err, carstore.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
		})
	}
	d := ok.WithDefaults()
	if d.PartSize != 8*carstore.MiB || d.Concurrency != 2 || d.MultipartCopyThreshold != 5*carstore.GiB {
		t.Errorf("defaults %+v", d)
	}
}

// An upload's memory does not grow with the CAR: streaming 60 MiB through
// 5 MiB parts, two at once, allocates a fraction of that (the part buffers
// are recycled), where buffering the CAR would allocate all of it.
func TestS3UploadMemoryDoesNotGrowWithCAR(t *testing.T) {
	f := newS3Fixture(t, carstore.S3Config{PartSize: 5 * carstore.MiB, Concurrency: 2})
	const size = 60 * carstore.MiB
	block := make([]byte, carstore.MiB)
	_, _ = rand.Read(block)
	_, meta, _ := testCar(t, 0)
	up, err := f.store.Stage(context.Background(), "mem/1.car", meta)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range size / len(block) {
		if _, err := up.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	st, err := up.Complete(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if st.Bytes != size {
		t.Fatalf("staged %d bytes, want %d", st.Bytes, size)
	}
	// About 16 MiB in a normal build; under the race detector, which makes
	// sync.Pool drop a quarter of what it is given, about 30.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size*3/4 {
		t.Errorf("uploading %d MiB allocated %d MiB", size>>20, alloc>>20)
	}
}
