package tests

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

// resumeEnv is the fetchers' settings of the resume tests: parts of 8 MiB,
// each a point a killed fetch is gone on from; a lease and a chunk timeout
// long enough that on a loaded machine (CI's two cores, the race
// detector in the origin) only the kill ends an attempt.
var resumeEnv = []string{"PICKUP_S3_PART_SIZE=8MiB", "PICKUP_S3_CONCURRENCY=2", "PICKUP_LEASE=10s", "PICKUP_FETCH_CHUNK_TIMEOUT=15s"}

// keptLines is what a fetcher's log says of kept CARs and new tries: why
// an attempt went on from what it did, shown when a resume test fails.
func keptLines(p *process) string {
	b, _ := os.ReadFile(p.logs.Name())
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, w := range []string{"kept", "going on", "starting over", "resum", "try", "claim", "lease"} {
			if strings.Contains(line, w) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out[max(len(out)-60, 0):], "\n")
}

// exportSum is the SHA-256 and size of the CAR `ipfs dag export` writes
// for a DAG of the origin, hashed as it is written (a 1 GiB CAR is never
// held whole).
func (c *cluster) exportSum(root cid.Cid) ([sha256.Size]byte, int64) {
	c.t.Helper()
	h := sha256.New()
	n, err := ipfstest.Export(context.Background(), c.bs, root, h)
	if err != nil {
		c.t.Fatal(err)
	}
	return [sha256.Size]byte(h.Sum(nil)), n
}

// objectSum is the SHA-256 and size of an object, read as a stream.
func (c *cluster) objectSum(bucket, key string) ([sha256.Size]byte, int64) {
	c.t.Helper()
	out, err := c.s3.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return [sha256.Size]byte(h.Sum(nil)), n
}

// pinsLikeExport checks that the carpark holds one CAR, byte for byte the
// export of root, and nothing is left in staging or open.
func (c *cluster) pinsLikeExport(t *testing.T, root cid.Cid) {
	t.Helper()
	keys := c.carparkKeys()
	if len(keys) != 1 {
		t.Fatalf("carpark holds %v, want exactly one CAR", keys)
	}
	want, wantN := c.exportSum(root)
	if got, n := c.objectSum(c.carpark, keys[0]); got != want || n != wantN {
		t.Fatalf("the carpark CAR (%d bytes) differs from `dag export` of the DAG (%d bytes)", n, wantN)
	}
	if n := c.openUploads(); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
	if keys := c.keys(c.staging); len(keys) != 0 {
		t.Errorf("staging still holds %v", keys)
	}
}

// TestResumeAfterSIGKILL: a fetcher killed with SIGKILL 60 % of the way
// through a 1 GiB DAG does not cost the pin what it fetched. Another
// fetcher, in another process, takes the next attempt, checks the parts
// the killed one's checkpoints describe against what S3 holds, and asks
// the origin only for the sub-DAGs left: the origin serves at most 45 %
// of the CAR again (counted by the proxy in front of it), and the CAR is
// byte for byte `ipfs dag export`'s; the audit tells the attempt went on
// from what the first kept.
func TestResumeAfterSIGKILL(t *testing.T) {
	c := newCluster(t, clusterOptions{throttle: 96 << 20})
	root := c.file(1<<30, 61)
	_, carBytes := c.exportSum(root)
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"})
	first := c.start("fetcher", []string{"fetcher"}, resumeEnv...)
	api := c.client(gw.api())
	ps := api.add(root.String(), "killed at 60 %")

	waitUntil(t, 5*time.Minute, "60 % served", func() bool { return c.throttle.Served() >= carBytes*60/100 })
	first.kill(t)
	atKill := c.throttle.Served()
	second := c.start("fetcher", []string{"fetcher"}, resumeEnv...)

	_, final := api.waitStatus(ps.RequestID, 5*time.Minute)
	if final.Status != "pinned" {
		t.Fatalf("pin ended %s: %v", final.Status, final.Info)
	}
	again := c.throttle.Served() - atKill
	t.Logf("CAR %d bytes; origin served %d before the kill (%.1f %%) and %d after (%.1f %%)",
		carBytes, atKill, pct(atKill, carBytes), again, pct(again, carBytes))
	if again > carBytes*45/100 {
		t.Errorf("after the kill the origin served %.1f %% of the CAR again; want at most 45 %%; the killed fetcher's log:\n%s\nthe next one's:\n%s",
			pct(again, carBytes), keptLines(first), keptLines(second))
	}
	c.pinsLikeExport(t, root)
	out, err := c.pickup("audit", ps.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "an earlier attempt kept") {
		t.Errorf("the audit does not tell the attempt went on from a kept CAR:\n%s", out)
	}
}

// TestResumeCheckpointGone: when what a killed fetcher kept is gone (its
// multipart upload aborted behind pickup's back), the next attempt finds
// the checkpoints no longer match what S3 holds, starts over (the origin
// serves the whole CAR again), and still stores the right CAR.
func TestResumeCheckpointGone(t *testing.T) {
	c := newCluster(t, clusterOptions{throttle: 16 << 20})
	root := c.file(96<<20, 62)
	_, carBytes := c.exportSum(root)
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"})
	first := c.start("fetcher", []string{"fetcher"}, resumeEnv...)
	api := c.client(gw.api())
	ps := api.add(root.String(), "kept upload aborted")

	waitUntil(t, 2*time.Minute, "half served", func() bool { return c.throttle.Served() >= carBytes/2 })
	first.kill(t)
	atKill := c.throttle.Served()
	aborted := 0
	for _, b := range []string{c.staging, c.carpark} {
		out, err := c.s3.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &b})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range out.Uploads {
			if _, err := c.s3.Client.AbortMultipartUpload(context.Background(), &s3.AbortMultipartUploadInput{Bucket: &b, Key: u.Key, UploadId: u.UploadId}); err != nil {
				t.Fatal(err)
			}
			aborted++
		}
	}
	if aborted == 0 {
		t.Fatal("the killed fetcher left no upload to abort")
	}
	c.start("fetcher", []string{"fetcher"}, resumeEnv...)

	_, final := api.waitStatus(ps.RequestID, 3*time.Minute)
	if final.Status != "pinned" {
		t.Fatalf("pin ended %s: %v", final.Status, final.Info)
	}
	if again := c.throttle.Served() - atKill; again < carBytes {
		t.Errorf("after the kill the origin served %d of the CAR's %d bytes: the attempt went on from an upload that was gone", again, carBytes)
	}
	c.pinsLikeExport(t, root)
}

func pct(n, of int64) float64 { return 100 * float64(n) / float64(of) }
