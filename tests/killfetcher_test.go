package tests

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestFetcherKilledMidUpload: a fetcher killed with SIGKILL in the middle
// of an upload leaves an open multipart upload and a claim; after the lease
// runs out another fetcher takes over, cleans up, and pins; the carpark
// holds exactly one CAR and no upload is left open.
func TestFetcherKilledMidUpload(t *testing.T) {
	c := newCluster(t, clusterOptions{throttle: 6 << 20})
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"})
	env := []string{"PICKUP_S3_PART_SIZE=5MiB", "PICKUP_S3_CONCURRENCY=1"}
	first := c.start("fetcher", []string{"fetcher"}, env...)
	api := c.client(gw.api())
	root := c.file(32<<20, 41)
	ps := api.add(root.String(), "killed mid-upload")

	waitUntil(t, 60*time.Second, "uploading", func() bool {
		return c.openUploads() > 0 && api.get(ps.RequestID).Status == "pinning"
	})
	first.kill(t)
	if n := c.openUploads(); n == 0 {
		t.Fatal("the killed fetcher left no open upload: it was not killed mid-upload")
	}
	c.start("fetcher", []string{"fetcher"}, env...)

	_, final := api.waitStatus(ps.RequestID, 120*time.Second)
	if final.Status != "pinned" {
		t.Fatalf("pin ended %s: %v", final.Status, final.Info)
	}
	if keys := c.carparkKeys(); len(keys) != 1 {
		t.Errorf("carpark holds %v, want exactly one CAR", keys)
	} else if got := c.object(c.carpark, keys[0]); !bytes.Equal(got, c.export(root)) {
		t.Errorf("the carpark CAR differs from the DAG's")
	}
	if n := c.openUploads(); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
	if keys := c.keys(c.staging); len(keys) != 0 {
		t.Errorf("staging still holds %v", keys)
	}
	// The audit shows the takeover: two claims by different fetchers, the
	// first ended by the watchdog.
	out, err := c.pickup("audit", "--json", ps.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	var claims []string
	expired := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e struct {
			Type   string `json:"type"`
			Actor  string `json:"actor"`
			Reason string `json:"reason"`
		}
		json.Unmarshal([]byte(line), &e)
		switch e.Type {
		case "FetchStarted":
			claims = append(claims, e.Actor)
		case "PinFailed":
			expired = expired || strings.HasPrefix(e.Reason, "lease_expired")
		}
	}
	if len(claims) != 2 || claims[0] == claims[1] || !expired {
		t.Errorf("audit shows claims by %v and lease expiry %v; want two fetchers and the first lease expired:\n%s", claims, expired, out)
	}
}
