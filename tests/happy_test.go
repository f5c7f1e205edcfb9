package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/api"
)

// carCID is the CID of a CAR file's bytes: sha2-256, multicodec car.
func carCID(t *testing.T, car []byte) cid.Cid {
	t.Helper()
	sum := sha256.Sum256(car)
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(0x0202, mh)
}

// TestHappyPathThroughBothAPIs: a pin asked for through the Pinning Service
// API and another through the ipfs-cluster routes both go queued, pinning,
// pinned; the carpark holds the DAG's CAR byte for byte; the audit tells
// the whole story.
func TestHappyPathThroughBothAPIs(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	proj := c.start("projector", []string{"projector"})
	fetch := c.start("fetcher", []string{"fetcher"})
	cl := c.client(gw.api())

	// Big enough that the fetch takes a moment and shows as pinning.
	root := c.file(24<<20, 1)
	ps := cl.add(root.String(), "happy.bin")
	if ps.Status != "queued" || ps.Pin.CID != root.String() || len(ps.Delegates) == 0 {
		t.Fatalf("202 answer %+v, want queued with the CID and delegates", ps)
	}
	seen, final := cl.waitStatus(ps.RequestID, 90*time.Second)
	if final.Status != "pinned" {
		t.Fatalf("pin ended %s (statuses %v), info %v", final.Status, seen, final.Info)
	}
	order := []api.Status{api.StatusQueued, api.StatusPinning, api.StatusPinned}
	for i := 1; i < len(seen); i++ {
		if slices.Index(order, seen[i]) < slices.Index(order, seen[i-1]) {
			t.Errorf("statuses went %v, not forwards through %v", seen, order)
		}
	}
	want := c.export(root)
	// The CAR is written once, at its root's key (carstore.RootKey).
	key := root.String() + "/" + root.String() + ".car"
	if final.Info["car_cid"] != carCID(t, want).String() {
		t.Errorf("info car_cid %q, want %s", final.Info["car_cid"], carCID(t, want))
	}
	if got := c.object(c.carpark, key); !bytes.Equal(got, want) {
		t.Errorf("carpark object %s: %d bytes, differs from the DAG's CAR (%d bytes)", key, len(got), len(want))
	}
	if keys := c.keys(c.staging); len(keys) != 0 {
		t.Errorf("staging still holds %v", keys)
	}

	// The audit tells the story, in order.
	out, err := c.pickup("audit", "--json", ps.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if typ, ok := entry["type"].(string); ok {
			kinds = append(kinds, typ)
		}
	}
	for _, want := range []string{"PinRequested", "FetchStarted", "CarUploaded", "CarValidated"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("audit %v lacks %s; output:\n%s", kinds, want, out)
		}
	}

	// The ipfs-cluster route, with Basic authorization.
	root2 := c.file(3<<20, 2)
	req, _ := http.NewRequest(http.MethodPost, gw.api()+"/pins/"+root2.String(), nil)
	req.SetBasicAuth("alice", c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cluster POST: %d", resp.StatusCode)
	}
	waitUntil(t, 90*time.Second, "cluster pin pinned", func() bool {
		req, _ := http.NewRequest(http.MethodGet, gw.api()+"/pins/"+root2.String(), nil)
		req.SetBasicAuth("alice", c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st api.ClusterStatus
		json.NewDecoder(resp.Body).Decode(&st)
		for _, p := range st.PeerMap {
			return p.Status == api.TrackerPinned
		}
		return false
	})
	if got := len(c.carparkKeys()); got != 2 {
		t.Errorf("carpark holds %d CARs, want 2", got)
	}
	// SIGTERM drains every role, which then exits 0.
	for _, p := range []*process{gw, proj, fetch} {
		if err := p.stop(t); err != nil {
			t.Errorf("%s exited with %v after SIGTERM, want 0", p.name, err)
		}
	}
}
