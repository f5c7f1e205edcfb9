package tests

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

// scrape reads a process's /metrics: every sample as
// "name{l1="v1",...}" → value (histograms as _count and _sum), so a test can
// ask for exactly the series it expects.
func scrape(t *testing.T, p *process) map[string]float64 {
	t.Helper()
	return telemetrytest.Scrape(t, "http://"+p.addrs["admin"]+"/metrics")
}

// logLines reads a process's JSON log lines.
func logLines(t *testing.T, p *process) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(p.logs.Name())
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestMetricsShowTheWork: a pin fetched and a pin that fails, driven
// through the API of separate gateway, projector and fetcher processes; each
// role's /metrics shows exactly what was done (requests by route and status,
// the CAR's bytes and blocks, attempts by outcome and reason, appends, the
// subscriptions, open uploads, the backlog), and the logs tie a client's
// request id to the pin's id and the fetcher's lines to the pin.
func TestMetricsShowTheWork(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	proj := c.start("projector", []string{"projector"})
	fe := c.start("fetcher", []string{"fetcher"})
	cl := c.client(gw.api())

	root := c.file(3<<20+321, 41)
	want := c.export(root)
	digest := sha256.Sum256([]byte("a DAG no origin has"))
	mh, _ := multihash.Encode(digest[:], multihash.SHA2_256)
	missing := cid.NewCidV1(cid.Raw, mh)

	// The adds, the first with the client's own request id.
	add := func(root cid.Cid, requestID string) (api.PinStatus, http.Header) {
		body, _ := json.Marshal(map[string]any{"cid": root.String()})
		req, _ := http.NewRequest(http.MethodPost, gw.api()+"/pins", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		if requestID != "" {
			req.Header.Set("X-Request-Id", requestID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /pins: %d %s", resp.StatusCode, b)
		}
		return decode[api.PinStatus](t, b), resp.Header
	}
	good, header := add(root, "e2e-metrics-add-1")
	if header.Get("X-Request-Id") != "e2e-metrics-add-1" {
		t.Errorf("answer's X-Request-Id %q, want the client's", header.Get("X-Request-Id"))
	}
	bad, header := add(missing, "")
	badRequestID := header.Get("X-Request-Id")
	if badRequestID == "" {
		t.Error("an answer without X-Request-Id")
	}

	// Poll both to their end, counting the reads.
	gets := 0
	final := map[string]api.Status{}
	deadline := time.Now().Add(90 * time.Second)
	for len(final) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("pins not final within 90s: %v", final)
		}
		for _, id := range []string{good.RequestID, bad.RequestID} {
			if _, done := final[id]; done {
				continue
			}
			ps := cl.get(id)
			gets++
			if ps.Status.Final() {
				final[id] = ps.Status
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if final[good.RequestID] != "pinned" || final[bad.RequestID] != "failed" {
		t.Fatalf("pins ended %v, want the file pinned and the missing DAG failed", final)
	}
	// The ipfs-cluster routes, once each.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+c.token))
	for _, path := range []string{"/pins/" + root.String(), "/pins?cids=" + root.String()} {
		req, _ := http.NewRequest(http.MethodGet, gw.api()+path, nil)
		req.Header.Set("Authorization", basic)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}

	// What the log says happened, to hold the figures to.
	failures := map[string]int{} // PinFailed events by reason
	fetcherAppends := 0          // events the fetcher wrote
	for _, id := range []string{good.RequestID, bad.RequestID} {
		out, err := c.pickup("events", "cat", "pin-"+id)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var e struct {
				Type  string `json:"type"`
				Actor string `json:"actor"`
				Data  struct {
					Reason string `json:"reason"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("event %q: %v", line, err)
			}
			if e.Type == "PinFailed" && strings.HasPrefix(e.Actor, "fetcher/") {
				failures[e.Data.Reason]++
			}
			if strings.HasPrefix(e.Actor, "fetcher/") {
				fetcherAppends++
			}
		}
	}
	// Each attempt holds its root on the root's stream first.
	for _, ps := range []api.PinStatus{good, bad} {
		c0, err := cid.Decode(ps.Pin.CID)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.pickup("events", "cat", "root-"+cid.NewCidV1(c0.Type(), c0.Hash()).String())
		if err != nil {
			t.Fatal(err)
		}
		fetcherAppends += strings.Count(out, `"RootHeld"`)
	}
	if len(failures) == 0 {
		t.Fatal("the missing DAG's pin has no failure from the fetcher")
	}
	t.Logf("%d reads of the pins' status; failures by reason %v; %d events written by the fetcher", gets, failures, fetcherAppends)
	blocks := 0
	br, err := car.NewBlockReader(bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := br.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		blocks++
	}

	check := func(p *process, want map[string]float64) {
		t.Helper()
		got := scrape(t, p)
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s /metrics: %s = %v (present %v), want %v", p.name, k, g, ok, v)
			}
		}
	}
	check(gw, map[string]float64{
		`pickup_http_requests_total{code="202",method="POST",route="/pins"}`:            2,
		`pickup_http_requests_total{code="200",method="GET",route="/pins/{requestid}"}`: float64(gets),
		`pickup_http_requests_total{code="200",method="GET",route="/pins/{cid}"}`:       1,
		`pickup_http_requests_total{code="200",method="GET",route="/pins?cids"}`:        1,
		`pickup_http_request_duration_seconds_count{route="/pins"}`:                     2,
		`pickup_http_request_duration_seconds_count{route="/pins/{requestid}"}`:         float64(gets),
		`pickup_eventlog_appends_total{outcome="ok"}`:                                   2,
	})
	fetcherWant := map[string]float64{
		`pickup_fetch_bytes_total{source="gateway"}`:                     float64(len(want)),
		`pickup_fetch_blocks_total{source="gateway"}`:                    float64(blocks),
		`pickup_fetch_attempts_total{outcome="pinned",reason="fetched"}`: 1,
		`pickup_fetch_duration_seconds_count{outcome="pinned"}`:          1,
		`pickup_fetches_in_flight{}`:                                     0,
		`pickup_multipart_uploads_open{}`:                                0,
		`pickup_eventlog_appends_total{outcome="ok"}`:                    float64(fetcherAppends),
		`pickup_subscription_events_total{subscriber="fetcher"}`:         float64(2 + sum(failures) - 1), // requests, and the retries scheduled
		`pickup_fetch_duration_seconds_count{outcome="failed"}`:          float64(sum(failures)),
	}
	for reason, n := range failures {
		fetcherWant[fmt.Sprintf(`pickup_fetch_attempts_total{outcome="failed",reason=%q}`, reason)] = float64(n)
	}
	check(fe, fetcherWant)
	// The projector's figures come every PICKUP_METRICS_INTERVAL (1s here).
	waitUntil(t, 10*time.Second, "the projector's figures", func() bool {
		got := scrape(t, proj)
		return got[`pickup_pinned_total{}`] == 1 && got[`pickup_dead_lettered_total{}`] == 1
	})
	check(proj, map[string]float64{`pickup_backlog_pins{}`: 0, `pickup_in_flight_pins{}`: 0, `pickup_oldest_queued_age_seconds{}`: 0})
	if got := scrape(t, proj)[`pickup_subscription_events_total{subscriber="projections"}`]; got < float64(fetcherAppends+2) {
		t.Errorf("projections were handed %v events, fewer than the %d the pins' streams hold", got, fetcherAppends+2)
	}

	// The logs: the client's id on the gateway's lines for its request,
	// beside the pin's id; the pin's id on the fetcher's lines.
	found := map[string]bool{}
	for _, l := range logLines(t, gw) {
		switch {
		case l["msg"] == "request" && l["request_id"] == "e2e-metrics-add-1" && l["route"] == "/pins" && l["status"] == 202.0:
			found["gateway: the add's request line"] = true
		case l["msg"] == "pin requested" && l["request_id"] == "e2e-metrics-add-1" && l["pin_request_id"] == good.RequestID:
			found["gateway: the add's pin line, with both ids"] = true
		case l["msg"] == "pin requested" && l["request_id"] == badRequestID && l["pin_request_id"] == bad.RequestID:
			found["gateway: the second add's pin line, under the id it was answered with"] = true
		}
	}
	for _, l := range logLines(t, fe) {
		switch {
		case l["msg"] == "claimed" && l["pin_request_id"] == good.RequestID:
			found["fetcher: the claim"] = true
		case l["msg"] == "pinned" && l["pin_request_id"] == good.RequestID:
			found["fetcher: the pin"] = true
		case l["msg"] == "attempt failed" && l["pin_request_id"] == bad.RequestID:
			found["fetcher: the failure"] = true
		}
	}
	for _, w := range []string{"gateway: the add's request line", "gateway: the add's pin line, with both ids",
		"gateway: the second add's pin line, under the id it was answered with",
		"fetcher: the claim", "fetcher: the pin", "fetcher: the failure"} {
		if !found[w] {
			t.Errorf("no log line for %s", w)
		}
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
