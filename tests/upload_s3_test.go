package tests

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pickup-ipfs/pickup/api"
	psaclient "github.com/pickup-ipfs/pickup/api/client"
	"github.com/pickup-ipfs/pickup/internal/caruploadtest"
)

// TestCARUploadThroughS3: a `pickup gateway` and a `pickup fetcher` that
// share no directory (each its own --car-dir, no --uploads-dir) and share
// the uploads area in S3 instead (PICKUP_UPLOADS_BUCKET, the staging
// bucket under its default prefix uploads/, as the deployment wires it),
// on versitygw: a CAR sent to the gateway with its blocks in another
// order, over several multipart parts, is pinned by the fetcher from the
// upload alone (the DAG is on no origin), the carpark's CAR is `ipfs dag
// export`'s byte for byte, and the uploads area is empty afterwards (no
// object, no unfinished multipart upload). A corrupted upload fails for
// good (block_mismatch) and is deleted too.
func TestCARUploadThroughS3(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	uploads := []string{"PICKUP_UPLOADS_BUCKET=" + c.staging}
	own := func(name string) string {
		dir := filepath.Join(c.dir, name+"-cars")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return "PICKUP_CAR_DIR=" + dir
	}
	gw := c.start("gateway", []string{"gateway"}, append(uploads, own("gateway"))...)
	c.start("projector", []string{"projector"})
	c.start("fetcher", []string{"fetcher"}, append(uploads, own("fetcher"))...)
	cl, err := psaclient.New(psaclient.Config{BaseURL: gw.api(), Token: c.token, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	area := func() []string {
		var left []string
		for _, k := range c.keys(c.staging) {
			if strings.HasPrefix(k, "uploads/") {
				left = append(left, k)
			}
		}
		out, err := c.s3.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &c.staging})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range out.Uploads {
			left = append(left, "unfinished "+*u.Key)
		}
		return left
	}

	// 20 MiB: three parts of 8 MiB.
	d := caruploadtest.NewDAG(t, 20<<20, 41)
	ps, err := cl.AddCAR(ctx, api.Pin{CID: d.Root.String(), Name: "sent"}, bytes.NewReader(d.Reversed(t)), "")
	if err != nil {
		t.Fatal(err)
	}
	final, err := cl.Wait(ctx, ps, nil)
	if err != nil || final.Status != api.StatusPinned {
		t.Fatalf("the upload's pin ended %+v, %v; want pinned", final, err)
	}
	if final.Info[api.InfoSource] != "" && final.Info[api.InfoSource] != "upload" {
		t.Errorf("pinned from %q, want the upload", final.Info[api.InfoSource])
	}
	key := d.Root.String() + "/" + d.Root.String() + ".car"
	if got := c.object(c.carpark, key); !bytes.Equal(got, d.Canonical) {
		t.Fatalf("the carpark's CAR (%d bytes) is not ipfs dag export's (%d bytes)", len(got), len(d.Canonical))
	}
	waitUntil(t, 10*time.Second, "the uploads area empty after the pin", func() bool { return len(area()) == 0 })

	bad := caruploadtest.NewDAG(t, 2<<20, 42)
	ps, err = cl.AddCAR(ctx, api.Pin{CID: bad.Root.String()}, bytes.NewReader(bad.Corrupted(t, 1)), "")
	if err != nil {
		t.Fatal(err)
	}
	final, err = cl.Wait(ctx, ps, nil)
	if err != nil || final.Status != api.StatusFailed || final.Info[api.InfoFailureReason] != "block_mismatch" {
		t.Fatalf("a corrupted upload ended %+v, %v; want failed, block_mismatch", final, err)
	}
	waitUntil(t, 10*time.Second, "the uploads area empty after the failure", func() bool { return len(area()) == 0 })
	for _, name := range []string{"gateway", "fetcher"} {
		if _, err := os.Stat(filepath.Join(c.dir, name+"-cars", "received")); err == nil {
			t.Errorf("the %s kept uploads in its directory", name)
		}
	}
}
