package carstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
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
	Name: "s3",
	// The location is the store's configuration, as JSON.
	Open: func(ctx context.Context, location string) (carstoretest.Store, error) {
		var cfg carstore.S3Config
		if err := json.Unmarshal([]byte(location), &cfg); err != nil {
			return nil, err
		}
		return carstore.NewS3(ctx, cfg, nil)
	},
	New: func(t *testing.T, tune carstoretest.Tuning) carstoretest.Instance {
		srv := s3test.Start(t)
		cfg := carstore.S3Config{
			StagingBucket:   srv.CreateBucket(t, "staging"),
			CarparkBucket:   srv.CreateBucket(t, "carpark"),
			StagingPrefix:   "staging/",
			Endpoint:        srv.Endpoint,
			Region:          srv.Region,
			AccessKeyID:     srv.AccessKey,
			SecretAccessKey: srv.SecretKey,
			PartSize:        tune.PartSize,
			Concurrency:     tune.Concurrency,
		}
		return s3Instance(t, srv, cfg)
	},
}

func s3Instance(t *testing.T, srv *s3test.Server, cfg carstore.S3Config) carstoretest.Instance {
	store, err := carstore.NewS3(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	location, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return carstoretest.Instance{
		Store:    store,
		Location: string(location),
		Keys: func(t *testing.T, area carstore.Area) []string {
			if area == carstore.AreaCarpark {
				return objectKeys(t, srv.Client, cfg.CarparkBucket, "")
			}
			// Staged CARs: the markers Complete has written its checksum in.
			var staged []string
			for _, key := range objectKeys(t, srv.Client, cfg.StagingBucket, cfg.StagingPrefix) {
				if m := readMarker(t, srv.Client, cfg.StagingBucket, cfg.StagingPrefix+key); m.Checksum != "" {
					staged = append(staged, key)
				}
			}
			return staged
		},
		// A stray writer puts other bytes as the first part of the upload
		// the marker names, with their own (right) SHA-256.
		Overwrite: func(t *testing.T, key string, data []byte) {
			m := readMarker(t, srv.Client, cfg.StagingBucket, cfg.StagingPrefix+key)
			sum := sha256.Sum256(data)
			_, err := srv.Client.UploadPart(context.Background(), &s3.UploadPartInput{
				Bucket: aws.String(cfg.CarparkBucket), Key: aws.String(m.Key), UploadId: aws.String(m.UploadID),
				PartNumber: aws.Int32(1), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
				ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
			})
			if err != nil {
				t.Fatalf("overwrite %s: %v", key, err)
			}
		},
	}
}

func TestS3Conformance(t *testing.T) { carstoretest.Run(t, s3Backend) }

// stagingMarker is what the S3 store keeps at a staging key.
type stagingMarker struct {
	Key      string `json:"key"`
	UploadID string `json:"upload_id"`
	Bytes    int64  `json:"bytes"`
	Checksum string `json:"checksum"`
}

func readMarker(t *testing.T, c *s3.Client, bucket, key string) stagingMarker {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("read marker %s: %v", key, err)
	}
	defer out.Body.Close()
	var m stagingMarker
	if err := json.NewDecoder(out.Body).Decode(&m); err != nil {
		t.Fatalf("read marker %s: %v", key, err)
	}
	return m
}

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

// The CAR is written once, where it stays: staged, it is an open multipart
// upload at its RootKey in the carpark bucket, with its metadata, invisible
// there, and a marker at its staging key names the upload; Promote reads
// nothing back and writes nothing but a tag (no GET of a CAR, no PUT of
// bytes or copy), and completes the upload, which the server confirms with
// the composite SHA-256 that the staged checksum holds.
func TestS3WritesEachByteOnce(t *testing.T) {
	f := newS3Fixture(t, carstore.S3Config{PartSize: 5 * carstore.MiB})
	ctx := context.Background()
	data, meta, carCID := testCar(t, 11*carstore.MiB)
	key := carstore.StagingKey(meta.RequestID, 1)
	st := f.stage(t, key, data, meta)
	if st.Checksum == "" || st.CarCID != carCID || st.Bytes != int64(len(data)) {
		t.Fatalf("staged %+v, want a checksum, CAR CID %s, %d bytes", st, carCID, len(data))
	}
	if keys := objectKeys(t, f.srv.Client, f.cfg.CarparkBucket, ""); len(keys) != 0 {
		t.Fatalf("a staged CAR is visible in the carpark: %v", keys)
	}
	uploads, err := f.srv.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(f.cfg.CarparkBucket)})
	if err != nil {
		t.Fatal(err)
	}
	root := carstore.RootKey(meta.Root)
	if len(uploads.Uploads) != 1 || aws.ToString(uploads.Uploads[0].Key) != root {
		t.Fatalf("open uploads in the carpark bucket %+v, want one at %s", uploads.Uploads, root)
	}
	if m := readMarker(t, f.srv.Client, f.cfg.StagingBucket, key); m.Key != root || m.UploadID != aws.ToString(uploads.Uploads[0].UploadId) || m.Checksum != st.Checksum || m.Bytes != st.Bytes {
		t.Fatalf("marker %+v, want upload %s at %s, %d bytes, checksum %s", m, aws.ToString(uploads.Uploads[0].UploadId), root, st.Bytes, st.Checksum)
	}

	f.rec.take()
	stored, err := f.store.Promote(ctx, key, carstore.Expected{Bytes: st.Bytes, CarCID: carCID, Metadata: meta, Checksum: st.Checksum})
	if err != nil {
		t.Fatal(err)
	}
	if stored.Key != root {
		t.Fatalf("promoted to %s, want %s", stored.Key, root)
	}
	for _, r := range f.rec.take() {
		if readsBack(f.cfg.CarparkBucket, root)(r) || strings.HasPrefix(r, "PUT /"+f.cfg.CarparkBucket+"/") && !strings.HasSuffix(r, "?tagging=") {
			t.Errorf("promote read back or wrote CAR bytes: %s", r)
		}
	}
	head, err := f.srv.Client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(f.cfg.CarparkBucket), Key: aws.String(root), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(head.ChecksumSHA256); !strings.HasSuffix(st.Checksum, ":"+got) || !strings.HasSuffix(got, "-3") {
		t.Errorf("server's checksum %q is not the staged one %q (3 parts)", got, st.Checksum)
	}
	if head.Metadata[carstore.MetaRoot] != meta.Root.String() || head.Metadata[carstore.MetaRequestID] != meta.RequestID ||
		head.Metadata[carstore.MetaStructure] != carstore.StructureComplete || aws.ToString(head.ContentType) != "application/vnd.ipld.car" {
		t.Errorf("carpark object's metadata %v, type %q", head.Metadata, aws.ToString(head.ContentType))
	}
}

// A CAR in the carpark is never replaced: the same CAR staged with parts
// of another size (another composite SHA-256) is read back once and found
// the same, and promotes to the CAR there; other bytes for the same root
// fail validation and leave the carpark's CAR as it was.
func TestS3CarparkCARNeverReplaced(t *testing.T) {
	f := newS3Fixture(t, carstore.S3Config{PartSize: 5 * carstore.MiB})
	ctx := context.Background()
	data, meta, carCID := testCar(t, 13*carstore.MiB)
	key := carstore.StagingKey(meta.RequestID, 1)
	first, err := f.store.Promote(ctx, key, expected(f.stage(t, key, data, meta), meta))
	if err != nil {
		t.Fatal(err)
	}
	// A second store on the same buckets, with 6 MiB parts.
	rec := &recorder{next: &http.Client{}}
	store, err := carstore.NewS3WithClient(f.srv.NewClient(func(o *s3.Options) { o.HTTPClient = rec }), carstore.S3Config{
		StagingBucket: f.cfg.StagingBucket, CarparkBucket: f.cfg.CarparkBucket, PartSize: 6 * carstore.MiB,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	meta2 := carstore.Metadata{Root: meta.Root, RequestID: "another"}
	key2 := carstore.StagingKey(meta2.RequestID, 1)
	st2 := stageWith(t, store, key2, data, meta2)
	if st2.CarCID != carCID {
		t.Fatalf("staged %+v, want CAR CID %s", st2, carCID)
	}
	rec.take()
	again, err := store.Promote(ctx, key2, expected(st2, meta2))
	if err != nil {
		t.Fatal(err)
	}
	if again.RequestID != meta.RequestID || again.Key != first.Key {
		t.Fatalf("promoted %+v, want the first request's CAR %+v", again, first)
	}
	// The carpark's CAR is tagged with its CAR CID: that tells, without
	// reading it back.
	if reqs := rec.take(); slices.ContainsFunc(reqs, readsBack(f.cfg.CarparkBucket, first.Key)) {
		t.Errorf("the carpark's CAR was read back: %v", reqs)
	}
	// Untagged (tagged by no one yet: a Promote stopped between completing
	// and tagging), it is read back, found the same, and tagged.
	if _, err := f.srv.Client.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: aws.String(f.cfg.CarparkBucket), Key: aws.String(first.Key)}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := store.Stat(ctx, meta.Root, carCID); ok || err != nil {
		t.Fatalf("stat of an untagged CAR: %v, %v; want absent", ok, err)
	}
	st2 = stageWith(t, store, key2, data, meta2)
	rec.take()
	if _, err := store.Promote(ctx, key2, expected(st2, meta2)); err != nil {
		t.Fatal(err)
	}
	if reqs := rec.take(); !slices.ContainsFunc(reqs, readsBack(f.cfg.CarparkBucket, first.Key)) {
		t.Errorf("an untagged CAR in parts of another size was not read back: %v", reqs)
	}
	if st, ok, err := store.Stat(ctx, meta.Root, carCID); !ok || err != nil || st.Key != first.Key {
		t.Fatalf("stat after promote: %+v, %v, %v", st, ok, err)
	}

	spoilt := bytes.Clone(data)
	spoilt[len(spoilt)-1] ^= 1
	key3 := carstore.StagingKey("spoilt", 1)
	meta3 := carstore.Metadata{Root: meta.Root, RequestID: "spoilt"}
	st3 := stageWith(t, f.store, key3, spoilt, meta3)
	if _, err := f.store.Promote(ctx, key3, expected(st3, meta3)); !errors.Is(err, carstore.ErrValidation) {
		t.Fatalf("promote of other bytes for the root: %v, want ErrValidation", err)
	}
	r, err := f.store.Open(ctx, first.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, _ := io.ReadAll(r); !bytes.Equal(got, data) {
		t.Fatal("the carpark's CAR changed")
	}
	if keys := objectKeys(t, f.srv.Client, f.cfg.StagingBucket, ""); len(keys) != 0 {
		t.Errorf("staging holds %v", keys)
	}
	if open, err := f.store.OpenUploads(ctx); err != nil || len(open) != 0 {
		t.Errorf("open uploads %+v, %v", open, err)
	}
}

// readsBack tells a recorded GET of the object's bytes.
func readsBack(bucket, key string) func(string) bool {
	return func(r string) bool {
		path, query, _ := strings.Cut(r, "?")
		return path == "GET /"+bucket+"/"+key && (query == "" || query == "x-id=GetObject")
	}
}

func expected(st carstore.Staged, meta carstore.Metadata) carstore.Expected {
	return carstore.Expected{Bytes: st.Bytes, CarCID: st.CarCID, Metadata: meta, Checksum: st.Checksum}
}

func stageWith(t *testing.T, store *carstore.S3, key string, data []byte, meta carstore.Metadata) carstore.Staged {
	t.Helper()
	up, err := store.Stage(context.Background(), key, meta)
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
	if len(open) != 1 || open[0].Key != carstore.RootKey(meta.Root) || open[0].Area != carstore.AreaCarpark {
		t.Fatalf("open uploads after the outage: %+v, want one at %s in the carpark", open, carstore.RootKey(meta.Root))
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
	if d.PartSize != 8*carstore.MiB || d.Concurrency != 2 {
		t.Errorf("defaults %+v", d)
	}
}

// An upload's memory does not grow with the CAR: streaming 60 MiB through
// 5 MiB parts, two at once, allocates three part buffers and the requests'
// overhead (the buffers are recycled), where buffering the CAR would
// allocate all of it; a second upload on the same store allocates no new
// buffers.
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
	// Three 5 MiB buffers (the one being filled, two in flight), and the
	// SDK's requests: about 16 MiB, with or without the race detector.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/3 {
		t.Errorf("uploading %d MiB allocated %d MiB", size>>20, alloc>>20)
	}
	up, err = f.store.Stage(context.Background(), "mem/2.car", meta)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&before)
	for range size / len(block) {
		if _, err := up.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := up.Complete(context.Background()); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 5*carstore.MiB {
		t.Errorf("a second upload of %d MiB allocated %d MiB: its part buffers were not reused", size>>20, alloc>>20)
	}
}

// What versions that copied staged CARs into the carpark left still works:
// a CAR at <carCid>/<carCid>.car is found by Stat and read by Open (so a
// new request for its root completes from it); a whole CAR staged as an
// object fails validation and goes, and a staging upload is discarded with
// its request's other leftovers.
func TestS3EarlierLayout(t *testing.T) {
	f := newS3Fixture(t, carstore.S3Config{PartSize: 5 * carstore.MiB})
	ctx := context.Background()
	data, meta, carCID := testCar(t, 3*carstore.MiB)
	old := carstore.CarKey(carCID)
	if _, err := f.srv.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(f.cfg.CarparkBucket), Key: aws.String(old), Body: bytes.NewReader(data),
		Metadata: map[string]string{carstore.MetaRoot: meta.Root.String(), carstore.MetaRequestID: "old", carstore.MetaCarCID: carCID.String(), carstore.MetaStructure: carstore.StructureComplete},
	}); err != nil {
		t.Fatal(err)
	}
	st, ok, err := f.store.Stat(ctx, meta.Root, carCID)
	if err != nil || !ok || st.Key != old || st.CarCID != carCID || st.Root != meta.Root || st.RequestID != "old" || st.Bytes != int64(len(data)) {
		t.Fatalf("stat of an earlier CAR: %+v, %v, %v", st, ok, err)
	}
	r, err := f.store.Open(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("open of an earlier CAR: other bytes")
	}

	// Leftovers of an earlier version's attempts: a staged CAR object and a
	// staging upload.
	key1, key2 := carstore.StagingKey(meta.RequestID, 1), carstore.StagingKey(meta.RequestID, 2)
	if _, err := f.srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(f.cfg.StagingBucket), Key: aws.String(key1), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(f.cfg.StagingBucket), Key: aws.String(key2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Promote(ctx, key1, carstore.Expected{Bytes: int64(len(data)), CarCID: carCID, Metadata: meta}); !errors.Is(err, carstore.ErrValidation) {
		t.Errorf("promote of a CAR staged by an earlier version: %v, want ErrValidation (the fetch runs again)", err)
	}
	if n, err := f.store.Discard(ctx, meta.RequestID); err != nil || n != 1 {
		t.Errorf("discard: %d, %v; want the staging upload (the staged object went with the failed promote)", n, err)
	}
	if keys := objectKeys(t, f.srv.Client, f.cfg.StagingBucket, ""); len(keys) != 0 {
		t.Errorf("staging holds %v", keys)
	}
	if open, err := f.store.OpenUploads(ctx); err != nil || len(open) != 0 {
		t.Errorf("open uploads %+v, %v", open, err)
	}
}

// interceptor runs before a request whose method and query match, once.
type interceptor struct {
	next   *http.Client
	method string
	query  string
	once   sync.Once
	before func()
}

func (i *interceptor) Do(req *http.Request) (*http.Response, error) {
	if i.before != nil && req.Method == i.method && strings.Contains(req.URL.RawQuery, i.query) {
		i.once.Do(i.before)
	}
	return i.next.Do(req)
}

// A part replaced after Promote listed and checked the parts, just before
// it completes the upload, fails the completion (the server holds another
// ETag and SHA-256 for it than the ones named): ErrValidation, nothing in
// the carpark, nothing left.
func TestS3PartReplacedBeforeCompletion(t *testing.T) {
	srv := s3test.Start(t)
	cfg := carstore.S3Config{StagingBucket: srv.CreateBucket(t, "staging"), CarparkBucket: srv.CreateBucket(t, "carpark"), PartSize: 5 * carstore.MiB}
	data, meta, carCID := testCar(t, 7*carstore.MiB)
	key := carstore.StagingKey(meta.RequestID, 1)
	hook := &interceptor{next: &http.Client{}, method: http.MethodPost, query: "uploadId="}
	store, err := carstore.NewS3WithClient(srv.NewClient(func(o *s3.Options) { o.HTTPClient = hook }), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := stageWith(t, store, key, data, meta)
	m := readMarker(t, srv.Client, cfg.StagingBucket, key)
	hook.before = func() {
		spoilt := bytes.Clone(data[:5*carstore.MiB])
		spoilt[0] ^= 1
		sum := sha256.Sum256(spoilt)
		if _, err := srv.Client.UploadPart(context.Background(), &s3.UploadPartInput{
			Bucket: aws.String(cfg.CarparkBucket), Key: aws.String(m.Key), UploadId: aws.String(m.UploadID),
			PartNumber: aws.Int32(1), Body: bytes.NewReader(spoilt), ContentLength: aws.Int64(int64(len(spoilt))),
			ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		}); err != nil {
			t.Errorf("replace part 1: %v", err)
		}
	}
	_, err = store.Promote(context.Background(), key, carstore.Expected{Bytes: st.Bytes, CarCID: carCID, Metadata: meta, Checksum: st.Checksum})
	if !errors.Is(err, carstore.ErrValidation) {
		t.Fatalf("promote after a part was replaced: %v, want ErrValidation", err)
	}
	t.Logf("refused: %v", err)
	if keys := objectKeys(t, srv.Client, cfg.CarparkBucket, ""); len(keys) != 0 {
		t.Errorf("the carpark holds %v", keys)
	}
	if keys := objectKeys(t, srv.Client, cfg.StagingBucket, ""); len(keys) != 0 {
		t.Errorf("staging holds %v", keys)
	}
	if open, err := store.OpenUploads(context.Background()); err != nil || len(open) != 0 {
		t.Errorf("open uploads %+v, %v", open, err)
	}
}
