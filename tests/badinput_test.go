package tests

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pickup-ipfs/pickup/eventlog/embedded"
)

// TestBadInputUnderLoad: malformed CIDs, origins, JSON, oversized bodies,
// wrong tokens and unknown content types, sent concurrently, are each
// refused with the right status, and nothing is appended to the log.
func TestBadInputUnderLoad(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"})
	log, err := embedded.Open(context.Background(), c.logPath, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	head, err := log.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	good := c.file(1000, 3).String()
	big := `{"cid":"` + good + `","name":"` + strings.Repeat("x", 100<<10) + `"}`
	cases := []struct {
		name, method, path, body, contentType, auth string
		status                                      int
	}{
		{"malformed CID", "POST", "/pins", `{"cid":"not-a-cid"}`, "application/json", "", 400},
		// md5: a hash IPFS no longer accepts as proof of content.
		{"unverifiable hash", "POST", "/pins", `{"cid":"bafk5kaiqlvauakv4jmvhnolrtwiraf6fsi"}`, "application/json", "", 400},
		{"bad origin", "POST", "/pins", `{"cid":"` + good + `","origins":["/ip4/1.2.3.4/tcp/notaport"]}`, "application/json", "", 400},
		{"too many origins", "POST", "/pins", `{"cid":"` + good + `","origins":[` + strings.Repeat(`"/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWR3DeCKahEqXtP8KvuG3XBeLZTU55yktXSmy8g4Phh6BV",`, 20) + `"/ip4/1.2.3.5/tcp/4001/p2p/12D3KooWR3DeCKahEqXtP8KvuG3XBeLZTU55yktXSmy8g4Phh6BV"]}`, "application/json", "", 400},
		{"broken JSON", "POST", "/pins", `{"cid":`, "application/json", "", 400},
		{"unknown field", "POST", "/pins", `{"cid":"` + good + `","colour":"red"}`, "application/json", "", 400},
		{"oversized body", "POST", "/pins", big, "application/json", "", 400},
		{"long name", "POST", "/pins", `{"cid":"` + good + `","name":"` + strings.Repeat("n", 256) + `"}`, "application/json", "", 400},
		{"unknown content type", "POST", "/pins", `cid=` + good, "application/x-www-form-urlencoded", "", 400},
		{"wrong token", "POST", "/pins", `{"cid":"` + good + `"}`, "application/json", "Bearer nope", 401},
		{"no token", "POST", "/pins", `{"cid":"` + good + `"}`, "application/json", "-", 401},
		{"bad limit", "GET", "/pins?limit=1001", "", "", "", 400},
		{"bad date", "GET", "/pins?before=yesterday", "", "", "", 400},
		{"bad status", "GET", "/pins?status=lost", "", "", "", 400},
		{"unknown request", "DELETE", "/pins/5f1f6b8e-0d36-4a7e-9d7c-2b8f5f2c1e11", "", "", "", 404},
		{"cluster: bad CID", "POST", "/pins/Qmnope", "", "", "", 400},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrong := map[string]int{}
	for round := range 20 {
		for _, k := range cases {
			wg.Go(func() {
				req, _ := http.NewRequest(k.method, gw.api()+k.path, strings.NewReader(k.body))
				switch k.auth {
				case "":
					req.Header.Set("Authorization", "Bearer "+c.token)
				case "-":
				default:
					req.Header.Set("Authorization", k.auth)
				}
				if k.contentType != "" {
					req.Header.Set("Content-Type", k.contentType)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("%s (round %d): %v", k.name, round, err)
					return
				}
				b := decodeBody[map[string]any](t, resp)
				resp.Body.Close()
				if resp.StatusCode != k.status || !errorBody(b, k.status) {
					mu.Lock()
					wrong[k.name]++
					mu.Unlock()
					t.Logf("%s: %d %v, want %d with an error body", k.name, resp.StatusCode, b, k.status)
				}
			})
		}
	}
	wg.Wait()
	for name, n := range wrong {
		t.Errorf("%s: %d of 20 answers wrong", name, n)
	}
	after, err := log.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after != head {
		evs, _ := log.ReadAll(context.Background(), head, 1)
		t.Errorf("bad input appended to the log: head %d → %d, first %s %s", head, after, evs[0].Type, evs[0].Data)
	}
}

// errorBody reports whether b is an error body of either API: the Pinning
// Service API's {"error":{"reason",...}}, or, on the ipfs-cluster routes,
// ipfs-cluster's {"code":status,"message":...}.
func errorBody(b map[string]any, status int) bool {
	if e, ok := b["error"].(map[string]any); ok {
		reason, _ := e["reason"].(string)
		return reason != ""
	}
	msg, _ := b["message"].(string)
	return b["code"] == float64(status) && msg != ""
}
