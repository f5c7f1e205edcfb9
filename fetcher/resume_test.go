package fetcher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/s3test"
	"github.com/pickup-ipfs/pickup/pin"
)

// s3Store is a CAR store on a real S3 server (versitygw), with its two
// buckets and a client to look into them.
type s3Store struct {
	*carstore.S3
	client           *s3.Client
	staging, carpark string
}

func newS3Store(t *testing.T) *s3Store {
	t.Helper()
	srv := s3test.Start(t)
	st := &s3Store{client: srv.NewClient(), staging: srv.CreateBucket(t, "staging"), carpark: srv.CreateBucket(t, "carpark")}
	var err error
	st.S3, err = carstore.NewS3WithClient(st.client, carstore.S3Config{
		StagingBucket: st.staging, CarparkBucket: st.carpark, PartSize: 5 << 20, Concurrency: 2,
	}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (st *s3Store) object(t *testing.T, bucket, key string) []byte {
	t.Helper()
	out, err := st.client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// left is what the staging bucket holds and the uploads left open.
func (st *s3Store) left(t *testing.T) (objects, uploads int) {
	t.Helper()
	ctx := context.Background()
	objs, err := st.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(st.staging)})
	if err != nil {
		t.Fatal(err)
	}
	ups, err := st.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(st.carpark)})
	if err != nil {
		t.Fatal(err)
	}
	return len(objs.Contents), len(ups.Uploads)
}

// A source that stalls two thirds of the way through a DAG does not cost
// the attempt what it fetched: its try keeps the CAR it checkpointed in
// the S3 upload, and the next source goes on from there, asked only for
// the sub-DAGs left (one request each), and the CAR pinned is byte for
// byte `ipfs dag export`'s; nothing is left in staging.
func TestNextSourceGoesOnFromWhatAStalledOneKept(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	st := newS3Store(t)
	root := w.file(40<<20, 2) // 160 leaves of 256 KiB under one root
	stalling := ipfstest.NewGateway(t, w.bs, ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{StallAt: 110}})
	w.startPool(poolOptions{name: "f1", cars: st, origins: []string{stalling.URL(), w.gw.URL()}, limits: dag.Limits{ChunkTimeout: time.Second}})
	id := w.request(root)
	s := w.waitFor(id, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned || s.Final() })
	if s.Phase != pin.PhasePinned {
		t.Fatalf("pin ended %s: %+v", s.Phase, s.LastFailure)
	}
	if got, want := st.object(t, st.carpark, s.Car.Key), w.exported(root); !bytes.Equal(got, want) {
		t.Fatalf("carpark CAR (%d bytes) differs from `dag export` of the DAG (%d bytes)", len(got), len(want))
	}
	if s.Staged.ResumedFrom < 20<<20 {
		t.Errorf("CarUploaded says the try went on from %d bytes kept; the stalled source had sent over 26 MiB", s.Staged.ResumedFrom)
	}
	// Sub-DAG requests: the leaves left, each a request of its own, and
	// none for the whole DAG again (that would be one request).
	if n := w.gw.Requests(); n < 20 {
		t.Errorf("the second gateway had %d requests; the try did not ask for the sub-DAGs left", n)
	}
	var resumed bool
	for _, e := range w.events(id) {
		if e.Type != pin.TypeFetchProgress {
			continue
		}
		var p pin.FetchProgress
		if err := json.Unmarshal(e.Data, &p); err != nil {
			t.Fatal(err)
		}
		resumed = resumed || p.ResumedFrom > 0
	}
	if !resumed {
		t.Error("no FetchProgress says the attempt went on from a kept CAR")
	}
	if objects, uploads := st.left(t); objects != 0 || uploads != 0 {
		t.Errorf("left behind: %d staging objects, %d open uploads", objects, uploads)
	}
}
