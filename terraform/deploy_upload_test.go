package terraform

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/api/client"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/awsconfig"
	"github.com/pickup-ipfs/pickup/internal/caruploadtest"
)

// pinCAR sends a CAR through the Lambda as the plan wires it (the body
// base64-encoded in API Gateway's event, as API Gateway sends a binary
// body), into the uploads area the gateway and the fetchers are given
// (PICKUP_UPLOADS_BUCKET and PICKUP_UPLOADS_PREFIX, under their roles'
// policies): a 3 MiB CAR in another order is pinned from the upload alone
// (the DAG is on no origin), its carpark object `ipfs dag export`'s CAR
// byte for byte, and the uploads area is empty after; a CAR over the
// Lambda's cap (gateway.LambdaMaxCARBytes) is refused, 413, saying the
// cap, and nothing of it is kept.
func (r *deploymentRun) pinCAR(ctx context.Context, cl *client.Client) {
	t := r.t
	var bucket, prefix, carpark string
	var fetchers []wiredRole
	for _, w := range r.roles {
		switch w.role {
		case awsconfig.RoleGateway:
			bucket, prefix = w.env["PICKUP_UPLOADS_BUCKET"], w.env["PICKUP_UPLOADS_PREFIX"]
		case awsconfig.RoleFetcher:
			carpark = w.env["PICKUP_CARPARK_BUCKET"]
			fetchers = append(fetchers, w)
		}
	}
	if bucket == "" || prefix == "" {
		r.fail("the Lambda is given no uploads area (PICKUP_UPLOADS_BUCKET %q, PICKUP_UPLOADS_PREFIX %q)", bucket, prefix)
	}
	if len(fetchers) == 0 {
		r.fail("the plan wires no fetcher to read the uploads area")
	}
	for _, w := range fetchers {
		if w.env["PICKUP_UPLOADS_BUCKET"] != bucket || w.env["PICKUP_UPLOADS_PREFIX"] != prefix {
			r.fail("%s's uploads area (%q, %q) is not the gateway's (%q, %q)", w.where, w.env["PICKUP_UPLOADS_BUCKET"], w.env["PICKUP_UPLOADS_PREFIX"], bucket, prefix)
		}
	}
	area := func() []string {
		var left []string
		out, err := r.w.s3.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.Contents {
			left = append(left, aws.ToString(o.Key))
		}
		ups, err := r.w.s3.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range ups.Uploads {
			left = append(left, "unfinished "+aws.ToString(u.Key))
		}
		return left
	}

	pinCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	d := caruploadtest.NewDAG(t, 3<<20, 17)
	ps, err := cl.AddCAR(pinCtx, api.Pin{CID: d.Root.String(), Name: "deployment test upload"}, bytes.NewReader(d.Reversed(t)), "")
	if err != nil {
		r.fail("POST /pins with a CAR through the Lambda: %v", err)
	}
	final, err := cl.Wait(pinCtx, ps, nil)
	if err != nil || final.Status != api.StatusPinned {
		r.fail("the CAR upload's pin %s: %+v, %v; want pinned", ps.RequestID, final, err)
	}
	obj, err := r.w.s3.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(carpark), Key: aws.String(carstore.RootKey(d.Root))})
	if err != nil {
		r.fail("the uploaded CAR in the carpark: %v", err)
	}
	var got bytes.Buffer
	_, err = got.ReadFrom(obj.Body)
	obj.Body.Close()
	if err != nil || !bytes.Equal(got.Bytes(), d.Canonical) {
		r.fail("the carpark's CAR of the upload (%d bytes, %v) is not ipfs dag export's (%d bytes)", got.Len(), err, len(d.Canonical))
	}
	deadline := time.Now().Add(30 * time.Second)
	for left := area(); len(left) > 0; left = area() {
		if time.Now().After(deadline) {
			r.fail("the uploads area holds %v after the pin", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("CAR upload through the Lambda: %d bytes (reordered) into s3://%s/%s, pinned %s from it, the carpark's CAR ipfs dag export's (%d bytes), the area empty after", len(d.Canonical), bucket, prefix, d.Root, len(d.Canonical))

	// Over the cap: 4 MiB and a little more, 5.6 MB base64-encoded,
	// which the emulator lets through as Lambda would.
	big := caruploadtest.NewDAG(t, 4<<20+64<<10, 18)
	_, err = cl.AddCAR(pinCtx, api.Pin{CID: big.Root.String()}, bytes.NewReader(big.Canonical), "")
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusRequestEntityTooLarge || !strings.Contains(ae.Details, "caps a request at 6 MB") {
		r.fail("a CAR over the Lambda's cap: %v; want 413 saying the cap", err)
	}
	if left := area(); len(left) > 0 {
		r.fail("a refused upload left %v", left)
	}
	t.Logf("CAR upload over the Lambda's cap (%d bytes): 413, %q; nothing kept", len(big.Canonical), ae.Details)
}
