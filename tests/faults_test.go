package tests

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/api"
	psa "github.com/pickup-ipfs/pickup/api/client"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

// TestHostileOrigins: an origin that breaks the rules fails the attempt
// with the precise reason; transient reasons are retried and then
// dead-lettered, a permanent one is dead-lettered at once; nothing reaches
// the carpark and no upload is left open.
func TestHostileOrigins(t *testing.T) {
	// The DAG a wrong-root origin serves instead: files are seeded, so its
	// CID is known before the origin holds it.
	const otherSize, otherSeed = 300 << 10, 98
	other, err := ipfstest.File(context.Background(), ipfstest.NewMemBlockstore(), ipfstest.FileOptions{Size: otherSize, Seed: otherSeed, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		origin   ipfstest.GatewayOptions
		env      []string
		reason   string
		attempts int
	}{
		{"corrupted block", ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Corrupt: 2}}, nil, "block_mismatch", 2},
		{"wrong root", ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Root: other}}, nil, "wrong_root", 2},
		{"missing block", ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Drop: 3}}, nil, "missing_block", 2},
		{"unrequested block", ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Extra: true}}, nil, "unrequested_block", 2},
		{"stall", ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{StallAt: 2}}, []string{"PICKUP_FETCH_CHUNK_TIMEOUT=1s"}, "stalled", 2},
		{"oversized DAG", ipfstest.GatewayOptions{}, []string{"PICKUP_MAX_CAR_BYTES=1MiB"}, "too_big", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := newCluster(t, clusterOptions{origin: c.origin})
			if c.origin.Tamper.Root.Defined() {
				cl.file(otherSize, otherSeed)
			}
			env := append([]string{"PICKUP_MAX_ATTEMPTS=2"}, c.env...)
			gw := cl.start("gateway", []string{"gateway"}, env...)
			cl.start("projector", []string{"projector"}, env...)
			cl.start("fetcher", []string{"fetcher"}, env...)
			api := cl.client(gw.api())
			root := cl.file(2<<20, 5)
			ps := api.add(root.String(), c.name)
			_, final := api.waitStatus(ps.RequestID, 90*time.Second)
			if final.Status != "failed" || final.Info["failure_reason"] != c.reason {
				t.Fatalf("pin ended %s with reason %q (%s), want failed with %s", final.Status, final.Info["failure_reason"], final.Info["failure_message"], c.reason)
			}
			if got := final.Info["failures"]; got != strconv.Itoa(c.attempts) {
				t.Errorf("failures %q, want %d (MAX_ATTEMPTS=2; permanent reasons stop at 1)", got, c.attempts)
			}
			if keys := cl.carparkKeys(); len(keys) != 0 {
				t.Errorf("the carpark holds %v", keys)
			}
			if n := cl.openUploads(); n != 0 {
				t.Errorf("%d multipart uploads left open", n)
			}
		})
	}
}

// TestS3DownForAWhile: with the S3 server stopped, attempts fail as storage
// errors and are retried; once it is back, the pin ends pinned.
func TestS3DownForAWhile(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	env := []string{"PICKUP_MAX_ATTEMPTS=30"}
	gw := c.start("gateway", []string{"gateway"}, env...)
	c.start("projector", []string{"projector"}, env...)
	c.start("fetcher", []string{"fetcher"}, env...)
	api := c.client(gw.api())
	root := c.file(2<<20, 21)

	c.s3.Stop()
	ps := api.add(root.String(), "s3 down")
	waitUntil(t, 60*time.Second, "two failed attempts while S3 is down", func() bool {
		n, _ := strconv.Atoi(api.get(ps.RequestID).Info["failures"])
		return n >= 2
	})
	if reason := api.get(ps.RequestID).Info["failure_reason"]; reason != "storage_error" {
		t.Errorf("failure reason while S3 is down: %q, want storage_error", reason)
	}
	c.s3.Restart()
	_, final := api.waitStatus(ps.RequestID, 90*time.Second)
	if final.Status != "pinned" {
		t.Fatalf("after S3 came back the pin ended %s: %v", final.Status, final.Info)
	}
	if n := c.openUploads(); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
}

// TestGatewayAndProjectorKilledUnderLoad: both are killed with SIGKILL
// while requests keep coming; after they restart, every request that got a
// 202 is there and reaches a final state, and a replay of the log finds the
// views exactly as live processing left them.
func TestGatewayAndProjectorKilledUnderLoad(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	proj := c.start("projector", []string{"projector"})
	c.start("fetcher", []string{"fetcher"}, "PICKUP_BATCH_SIZE=20")
	roots := make([]cid.Cid, 40)
	for i := range roots {
		roots[i] = c.file(int64(20<<10+i), uint64(1000+i))
	}

	var mu sync.Mutex
	apiURL := gw.api()
	accepted := map[string]bool{}
	// lost counts the requests whose answer was lost to the kill (the
	// connection broke after it was made): the gateway may have written
	// them to the log before it died, so they may be pins too.
	lost := 0
	stop := make(chan struct{})
	var load sync.WaitGroup
	for w := range 4 {
		load.Go(func() {
			for i := w; ; i += 4 {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				base := apiURL
				mu.Unlock()
				req, _ := http.NewRequest(http.MethodPost, base+"/pins", strings.NewReader(`{"cid":"`+roots[i%len(roots)].String()+`"}`))
				req.Header.Set("Authorization", "Bearer "+c.token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					if !errors.Is(err, syscall.ECONNREFUSED) {
						mu.Lock()
						lost++
						mu.Unlock()
					}
					time.Sleep(20 * time.Millisecond) // the gateway is down
					continue
				}
				var ps api.PinStatus
				if resp.StatusCode == http.StatusAccepted {
					ps = decodeBody[api.PinStatus](t, resp)
					mu.Lock()
					accepted[ps.RequestID] = true
					mu.Unlock()
				}
				resp.Body.Close()
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(accepted) }
	waitUntil(t, 60*time.Second, "load under way", func() bool { return count() >= 50 })
	gw.kill(t)
	proj.kill(t)
	t.Logf("killed the gateway and projector after %d accepted requests", count())
	time.Sleep(300 * time.Millisecond)
	proj = c.start("projector", []string{"projector"})
	gw = c.start("gateway", []string{"gateway"})
	mu.Lock()
	apiURL = gw.api()
	mu.Unlock()
	before := count()
	waitUntil(t, 60*time.Second, "load resumed", func() bool { return count() >= before+50 })
	close(stop)
	load.Wait()

	cl := c.client(gw.api())
	mu.Lock()
	ids := make([]string, 0, len(accepted))
	for id := range accepted {
		ids = append(ids, id)
	}
	mu.Unlock()
	for _, id := range ids {
		if _, final := cl.waitStatus(id, 120*time.Second); final.Status != "pinned" {
			t.Errorf("request %s ended %s: %v", id, final.Status, final.Info)
		}
	}
	// Every accepted request is a pin; so may be those whose answer was
	// lost, and nothing else.
	all := cl.list(psa.ListOptions{Status: api.AllStatuses(), Limit: 1000})
	listed := map[string]bool{}
	for _, p := range all.Results {
		listed[p.RequestID] = true
	}
	for _, id := range ids {
		if !listed[id] {
			t.Errorf("accepted request %s is not listed", id)
		}
	}
	if all.Count < len(ids) || all.Count > len(ids)+lost {
		t.Errorf("the listing counts %d pins: %d requests were accepted and %d answers lost", all.Count, len(ids), lost)
	}
	// Quiesce the views, then replay.
	proj.stop(t)
	out, err := c.pickup("replay", "--verify")
	if err != nil {
		t.Fatalf("replay --verify: %v\n%s", err, out)
	}
	t.Logf("%d requests accepted; replay: %s", len(ids), strings.TrimSpace(out))
}

func decodeBody[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return decode[T](t, b)
}
