package carstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
)

// resumable is what the fetcher's dag.ResumableSink asks of an upload.
type resumable interface {
	carstore.Upload
	Durable() int64
	Checkpoint(ctx context.Context, at int64, note []byte) error
	Settle(ctx context.Context) error
	Suspend(ctx context.Context) error
}

// begin stages key and writes data into it, settled: every full part sent
// is taken.
func (f s3Fixture) begin(t *testing.T, key string, data []byte, meta carstore.Metadata) resumable {
	t.Helper()
	up, err := f.store.Stage(context.Background(), key, meta)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := up.(resumable)
	if !ok {
		t.Fatalf("the S3 store's upload is a %T, not resumable", up)
	}
	if _, err := r.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := r.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// otherStore is another S3 store on f's buckets: another fetcher, after
// the first was killed.
func (f s3Fixture) otherStore(t *testing.T, partSize int64) *carstore.S3 {
	t.Helper()
	cfg := f.cfg
	cfg.PartSize = partSize
	store, err := carstore.NewS3WithClient(f.srv.NewClient(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// finish writes the rest of data into an upload resumed at from, completes
// and promotes it, and returns the carpark's CAR.
func (f s3Fixture) finish(t *testing.T, store *carstore.S3, up carstore.Upload, key string, data []byte, from int64, meta carstore.Metadata) []byte {
	t.Helper()
	ctx := context.Background()
	if _, err := up.Write(data[from:]); err != nil {
		t.Fatal(err)
	}
	st, err := up.Complete(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if st.CarCID != carstore.CarCID(sum[:]) || st.Bytes != int64(len(data)) {
		t.Fatalf("the resumed upload says %d bytes with CAR CID %s; want %d with %s: its hash did not go on from the kept one",
			st.Bytes, st.CarCID, len(data), carstore.CarCID(sum[:]))
	}
	stored, err := store.Promote(ctx, key, expected(st, meta))
	if err != nil {
		t.Fatalf("promote: %v", err)
	}
	out, err := f.srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(f.cfg.CarparkBucket), Key: aws.String(stored.Key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// openUploads counts the multipart uploads open in the carpark bucket.
func (f s3Fixture) openUploads(t *testing.T) int {
	t.Helper()
	out, err := f.srv.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(f.cfg.CarparkBucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

// A writer killed after its checkpoints (after it sent parts past the
// last, too) is gone on from by another store, for the next attempt's key:
// Resume gives back the point and the notes, in order, and an upload that
// writes on after the kept parts with the whole stream's hash restored,
// so the CAR promoted is the bytes written; the parts the killed writer
// sent past its checkpoint are not in it, though the new writer's parts
// are bigger and fewer; the old attempt's key holds nothing after the
// move, and the new one's nothing once discarded.
func TestS3ResumeGoesOnFromTheLastCheckpoint(t *testing.T) {
	const part = 5 * carstore.MiB
	f := newS3Fixture(t, carstore.S3Config{PartSize: part, Concurrency: 2})
	ctx := context.Background()
	data, meta, _ := testCar(t, 31*carstore.MiB)
	first, second := carstore.StagingKey(meta.RequestID, 1), carstore.StagingKey(meta.RequestID, 2)
	up := f.begin(t, first, data, meta)
	if got := up.Durable(); got != 6*part {
		t.Fatalf("durable %d bytes after 6 parts were taken, want %d", got, 6*part)
	}
	if err := up.Checkpoint(ctx, 3*part/2, []byte("a")); err == nil {
		t.Error("a checkpoint inside a part was taken")
	}
	for i, at := range []int64{part, 2 * part} {
		if err := up.Checkpoint(ctx, at, []byte{'a' + byte(i)}); err != nil {
			t.Fatalf("checkpoint at %d: %v", at, err)
		}
	}
	if err := up.Checkpoint(ctx, part, []byte("c")); err == nil {
		t.Error("a checkpoint behind the last was taken")
	}
	// Killed here: parts 3 to 6 are on the server, past the checkpoint.

	store := f.otherStore(t, 10*carstore.MiB)
	got, kept, err := store.Resume(ctx, first, second, meta)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if kept.Bytes != 2*part || kept.Parts != 2 || !slices.EqualFunc(kept.Notes, [][]byte{[]byte("a"), []byte("b")}, bytes.Equal) {
		t.Fatalf("resumed %d bytes in %d parts with notes %q; want %d in 2 with [a b]", kept.Bytes, kept.Parts, kept.Notes, 2*part)
	}
	if left := objectKeys(t, f.srv.Client, f.cfg.StagingBucket, first); len(left) != 0 {
		t.Errorf("the first attempt's key still holds %q after the move", left)
	}
	if car := f.finish(t, store, got, second, data, kept.Bytes, meta); !bytes.Equal(car, data) {
		t.Fatalf("the carpark holds %d bytes, not the %d written", len(car), len(data))
	}
	if _, err := store.DiscardThrough(ctx, meta.RequestID, 2); err != nil {
		t.Fatal(err)
	}
	if left := objectKeys(t, f.srv.Client, f.cfg.StagingBucket, ""); len(left) != 0 {
		t.Errorf("staging holds %q after the CAR was promoted and the attempts discarded", left)
	}
	if n := f.openUploads(t); n != 0 {
		t.Errorf("%d uploads left open", n)
	}
}

// A try that suspends its upload is gone on from at the same key (the next
// try of the attempt), and a resumed upload's own checkpoints are gone on
// from again, at a third key: the CAR is still the bytes written.
func TestS3ResumeOfAResumedUpload(t *testing.T) {
	const part = 5 * carstore.MiB
	f := newS3Fixture(t, carstore.S3Config{PartSize: part, Concurrency: 2})
	ctx := context.Background()
	data, meta, _ := testCar(t, 27*carstore.MiB)
	k1, k3 := carstore.StagingKey(meta.RequestID, 1), carstore.StagingKey(meta.RequestID, 3)
	up := f.begin(t, k1, data[:12*carstore.MiB], meta)
	if err := up.Checkpoint(ctx, 2*part, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := up.Suspend(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte("x")); !errors.Is(err, carstore.ErrClosed) {
		t.Fatalf("a write to a suspended upload: %v, want ErrClosed", err)
	}
	again, kept, err := f.store.Resume(ctx, k1, k1, meta)
	if err != nil || kept.Bytes != 2*part {
		t.Fatalf("resume at the same key: %v (%d bytes kept)", err, kept.Bytes)
	}
	r := again.(resumable)
	if _, err := r.Write(data[kept.Bytes : 21*carstore.MiB]); err != nil {
		t.Fatal(err)
	}
	if err := r.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Checkpoint(ctx, 4*part, []byte("two")); err != nil {
		t.Fatal(err)
	}
	store := f.otherStore(t, part)
	last, kept, err := store.Resume(ctx, k1, k3, meta)
	if err != nil {
		t.Fatalf("resume of the resumed upload: %v", err)
	}
	if kept.Bytes != 4*part || !slices.EqualFunc(kept.Notes, [][]byte{[]byte("one"), []byte("two")}, bytes.Equal) {
		t.Fatalf("resumed %d bytes with notes %q; want %d with [one two]", kept.Bytes, kept.Notes, 4*part)
	}
	if car := f.finish(t, store, last, k3, data, kept.Bytes, meta); !bytes.Equal(car, data) {
		t.Fatalf("the carpark holds %d bytes, not the %d written", len(car), len(data))
	}
}

// What no longer matches the server is never gone on from: an upload
// aborted behind the store's back, a part replaced since its checkpoint,
// an upload with no checkpoint, another root's upload. Resume says
// ErrNoCheckpoint and discards what was kept, upload included.
func TestS3ResumeRefusesWhatNoLongerMatches(t *testing.T) {
	const part = 5 * carstore.MiB
	data, meta, _ := testCar(t, 16*carstore.MiB)
	for _, c := range []struct {
		name  string
		spoil func(t *testing.T, f s3Fixture, up resumable, m stagingMarker)
		meta  func(carstore.Metadata) carstore.Metadata
	}{
		{name: "upload aborted", spoil: func(t *testing.T, f s3Fixture, _ resumable, m stagingMarker) {
			if _, err := f.srv.Client.AbortMultipartUpload(context.Background(), &s3.AbortMultipartUploadInput{
				Bucket: aws.String(f.cfg.CarparkBucket), Key: aws.String(m.Key), UploadId: aws.String(m.UploadID),
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "part replaced", spoil: func(t *testing.T, f s3Fixture, _ resumable, m stagingMarker) {
			other := bytes.Repeat([]byte{7}, part)
			sum := sha256.Sum256(other)
			if _, err := f.srv.Client.UploadPart(context.Background(), &s3.UploadPartInput{
				Bucket: aws.String(f.cfg.CarparkBucket), Key: aws.String(m.Key), UploadId: aws.String(m.UploadID),
				PartNumber: aws.Int32(2), Body: bytes.NewReader(other), ContentLength: aws.Int64(part),
				ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "no checkpoint", spoil: func(t *testing.T, f s3Fixture, _ resumable, m stagingMarker) {
			for _, k := range objectKeys(t, f.srv.Client, f.cfg.StagingBucket, "") {
				if strings.Contains(k, ".ck/") {
					if _, err := f.srv.Client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(f.cfg.StagingBucket), Key: aws.String(k)}); err != nil {
						t.Fatal(err)
					}
				}
			}
		}},
		{name: "another root", meta: func(m carstore.Metadata) carstore.Metadata {
			other, _ := mh.Sum([]byte("another root"), mh.SHA2_256, -1)
			m.Root = cid.NewCidV1(cid.DagProtobuf, other)
			return m
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newS3Fixture(t, carstore.S3Config{PartSize: part, Concurrency: 2})
			ctx := context.Background()
			k1, k2 := carstore.StagingKey(meta.RequestID, 1), carstore.StagingKey(meta.RequestID, 2)
			up := f.begin(t, k1, data, meta)
			if err := up.Checkpoint(ctx, 3*part, []byte("n")); err != nil {
				t.Fatal(err)
			}
			if c.spoil != nil {
				c.spoil(t, f, up, readMarker(t, f.srv.Client, f.cfg.StagingBucket, k1))
			}
			want := meta
			if c.meta != nil {
				want = c.meta(meta)
			}
			got, kept, err := f.store.Resume(ctx, k1, k2, want)
			if !errors.Is(err, carstore.ErrNoCheckpoint) || got != nil || kept.Bytes != 0 {
				t.Fatalf("resume: %v, %d bytes kept; want ErrNoCheckpoint and nothing", err, kept.Bytes)
			}
			if left := objectKeys(t, f.srv.Client, f.cfg.StagingBucket, ""); len(left) != 0 {
				t.Errorf("staging holds %q after a refused resume", left)
			}
			if n := f.openUploads(t); n != 0 {
				t.Errorf("%d uploads left open after a refused resume", n)
			}
		})
	}
}

// Discarding and sweeping keep the attempt a later one goes on from: its
// marker, checkpoints and open upload stay, the others' go.
func TestS3DiscardKeepsTheKeptAttempt(t *testing.T) {
	const part = 5 * carstore.MiB
	f := newS3Fixture(t, carstore.S3Config{PartSize: part, Concurrency: 2})
	ctx := context.Background()
	data, meta, _ := testCar(t, 11*carstore.MiB)
	for n := 1; n <= 3; n++ {
		up := f.begin(t, carstore.StagingKey(meta.RequestID, n), data, meta)
		if err := up.Checkpoint(ctx, 2*part, []byte("n")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.DiscardThroughKeeping(ctx, meta.RequestID, 1, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.SweepKeeping(ctx, func(_ context.Context, id string) (int, int, error) {
		if id != meta.RequestID {
			t.Errorf("swept request %q", id)
		}
		return 3, 2, nil
	}); err != nil {
		t.Fatal(err)
	}
	left := objectKeys(t, f.srv.Client, f.cfg.StagingBucket, meta.RequestID+"/")
	if want := []string{"2.car", "2.car.ck/00002"}; !slices.Equal(left, want) {
		t.Errorf("staging holds %q, want %q", left, want)
	}
	if n := f.openUploads(t); n != 1 {
		t.Errorf("%d uploads open, want the kept one", n)
	}
	got, kept, err := f.store.Resume(ctx, carstore.StagingKey(meta.RequestID, 2), carstore.StagingKey(meta.RequestID, 4), meta)
	if err != nil || kept.Bytes != 2*part {
		t.Fatalf("resume of the kept attempt: %v (%d bytes)", err, kept.Bytes)
	}
	if car := f.finish(t, f.store, got, carstore.StagingKey(meta.RequestID, 4), data, kept.Bytes, meta); !bytes.Equal(car, data) {
		t.Fatal("the kept attempt's CAR is not the bytes written")
	}
}

// A new upload staged at a key that holds a kept one (a try that could not
// read it, and starts over) replaces it: the kept upload is aborted and
// its checkpoints deleted, so none is taken for the new upload's.
func TestS3StageReplacesAKeptUpload(t *testing.T) {
	const part = 5 * carstore.MiB
	f := newS3Fixture(t, carstore.S3Config{PartSize: part, Concurrency: 2})
	ctx := context.Background()
	data, meta, _ := testCar(t, 11*carstore.MiB)
	key := carstore.StagingKey(meta.RequestID, 1)
	up := f.begin(t, key, data, meta)
	if err := up.Checkpoint(ctx, 2*part, []byte("old")); err != nil {
		t.Fatal(err)
	}
	again, err := f.store.Stage(ctx, key, meta)
	if err != nil {
		t.Fatal(err)
	}
	if left := objectKeys(t, f.srv.Client, f.cfg.StagingBucket, ""); !slices.Equal(left, []string{key}) {
		t.Errorf("staging holds %q after a new upload was staged at the key, want its marker only", left)
	}
	if n := f.openUploads(t); n != 1 {
		t.Errorf("%d uploads open, want the new one only", n)
	}
	if car := f.finish(t, f.store, again, key, data, 0, meta); !bytes.Equal(car, data) {
		t.Fatal("the new upload's CAR is not the bytes written")
	}
}
