package tests

import (
	"flag"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/api"
	psa "github.com/pickup-ipfs/pickup/api/client"
)

var long = flag.Bool("long", false, "run the long variants of the end-to-end tests (more requests, bigger DAGs)")

// TestLoad: 10,000 requests over 1,000 distinct small DAGs, with three
// fetcher processes: every request ends pinned, each root is fetched from
// the origin once (the other requests for it complete from the carpark),
// and the views equal a replay of the log.
func TestLoad(t *testing.T) {
	requests, dags := 10_000, 1_000
	if *long {
		requests, dags = 50_000, 5_000
	}
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	proj := c.start("projector", []string{"projector"})
	for range 3 {
		c.start("fetcher", []string{"fetcher"})
	}
	roots := make([]cid.Cid, dags)
	for i := range roots {
		roots[i] = c.file(int64(1000+i%7000), uint64(50_000+i))
	}

	start := time.Now()
	ids := make([]string, requests)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= requests {
					return
				}
				body := `{"cid":"` + roots[i%dags].String() + `"}`
				req, _ := http.NewRequest(http.MethodPost, gw.api()+"/pins", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+c.token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("request %d: %d", i, resp.StatusCode)
				} else {
					ids[i] = decodeBody[api.PinStatus](t, resp).RequestID
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	posted := time.Since(start)

	cl := c.client(gw.api())
	lastLog := time.Now()
	waitUntil(t, 10*time.Minute, "every request pinned", func() bool {
		done := cl.list(psa.ListOptions{Status: []api.Status{api.StatusPinned, api.StatusFailed}, Limit: 1})
		if time.Since(lastLog) > 10*time.Second {
			all := cl.list(psa.ListOptions{Status: []api.Status{api.StatusQueued, api.StatusPinning}, Limit: 1})
			t.Logf("%v: %d done, %d queued or pinning, origin requests %d", time.Since(start).Round(time.Second), done.Count, all.Count, c.origin.Requests())
			lastLog = time.Now()
		}
		return done.Count == requests
	})
	finished := time.Since(start)
	if failed := cl.list(psa.ListOptions{Status: []api.Status{api.StatusFailed}, Limit: 10}); failed.Count > 0 {
		t.Errorf("%d requests failed, e.g. %+v", failed.Count, failed.Results[0].Info)
	}
	if got := c.origin.Requests(); got != int64(dags) {
		t.Errorf("the origin served %d DAG requests for %d distinct roots: some root was fetched more than once", got, dags)
	}
	if keys := c.carparkKeys(); len(keys) != dags {
		t.Errorf("the carpark holds %d CARs, want %d", len(keys), dags)
	}
	proj.stop(t)
	if out, err := c.pickup("replay", "--verify"); err != nil {
		t.Errorf("replay --verify: %v\n%s", err, out)
	}
	t.Logf("%d requests over %d DAGs: posted in %v (%.0f/s), all pinned after %v", requests, dags,
		posted.Round(time.Millisecond), float64(requests)/posted.Seconds(), finished.Round(time.Millisecond))
}
