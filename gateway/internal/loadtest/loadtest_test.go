//go:build !wasip1 && !js

package loadtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
	"github.com/pickup-ipfs/pickup/gateway/internal/loadtest"
)

// spec is a plan as the parent hands it to the client process.
type spec struct {
	Method   string
	URLs     []string
	Auth     string
	PinSeed  string // POST bodies are pins of fresh CIDs from this seed
	Duration time.Duration
	Clients  int
	Rate     int
	Want     int
}

const specEnv = "PICKUP_LOADTEST_SPEC"

// TestMain makes the test binary the load generator when it is re-executed
// with a spec: the load then comes from a second process, as a real
// client's would, and does not share the server's scheduler.
func TestMain(m *testing.M) {
	if s := os.Getenv(specEnv); s != "" {
		os.Exit(client(s))
	}
	os.Exit(m.Run())
}

func client(raw string) int {
	var s spec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p := loadtest.Plan{Method: s.Method, URLs: s.URLs, Header: http.Header{"Authorization": {s.Auth}},
		Duration: s.Duration, Clients: s.Clients, Rate: s.Rate, Want: s.Want}
	if s.PinSeed != "" {
		p.Header.Set("Content-Type", "application/json")
		p.Body = func(i uint64) []byte { return []byte(`{"cid":"` + loadtest.CID(s.PinSeed, i) + `"}`) }
	}
	r, err := loadtest.Run(context.Background(), p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// load runs a spec in a second process and returns what it measured.
func load(tb testing.TB, s spec) loadtest.Result {
	tb.Helper()
	raw, _ := json.Marshal(s)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), specEnv+"="+string(raw))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("load generator: %v\n%s", err, errb.String())
	}
	var r loadtest.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		tb.Fatalf("load generator said %q: %v", out.String(), err)
	}
	return r
}

// The generator itself, briefly: every request it counts reached the
// gateway, and the log holds exactly the pins it reports.
func TestGenerator(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	srv := s.Server(t)
	token := s.Token(t, "load")
	head, _ := s.Log.Head(context.Background())
	r := load(t, spec{Method: http.MethodPost, URLs: []string{srv.URL + "/pins"}, Auth: "Bearer " + token, PinSeed: "gen",
		Duration: 300 * time.Millisecond, Clients: 4, Want: http.StatusAccepted})
	if r.Errors != 0 || r.Requests == 0 || r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 {
		t.Fatalf("generator reported %+v", r)
	}
	after, _ := s.Log.Head(context.Background())
	events, err := s.Log.ReadAll(context.Background(), head, 1<<20)
	if err != nil || len(events) != r.Requests {
		t.Fatalf("log grew by %d events (%d -> %d), generator reports %d requests (%v)", len(events), head, after, r.Requests, err)
	}
	open := load(t, spec{Method: http.MethodGet, URLs: []string{srv.URL + "/pins?status=queued&limit=1"}, Auth: "Bearer " + token,
		Duration: 300 * time.Millisecond, Rate: 200, Want: http.StatusOK})
	if open.Errors != 0 || open.Requests < 30 || open.Requests > 70 {
		t.Fatalf("open loop at 200/s for 300ms made %d requests, want about 60: %+v", open.Requests, open)
	}
}

func report(b *testing.B, name string, r loadtest.Result) {
	b.Logf("%s: %s", name, r)
	if r.Errors > 0 {
		b.Errorf("%s: %d errors, first: %s", name, r.Errors, r.FirstError)
	}
}

// BenchmarkPostPins: POST /pins with durable appends on the embedded log,
// load from a second process on loopback. Targets: 10,000 requests/s; p99
// under 25 ms at 2,000 requests/s. views=on keeps the views up to date in
// the same process, as the embedded deployment does; views=off measures the
// write path alone (views built elsewhere, as on Lambda).
func BenchmarkPostPins(b *testing.B) {
	for _, views := range []bool{true, false} {
		b.Run(fmt.Sprintf("views=%v", map[bool]string{true: "on", false: "off"}[views]), func(b *testing.B) {
			s := gatewaytest.New(b, gateway.Config{})
			srv := s.Server(b)
			token := s.Token(b, "load")
			if !views {
				s.StopRunner()
			}
			for range b.N {
				for _, clients := range []int{64, 256} {
					r := load(b, spec{Method: http.MethodPost, URLs: []string{srv.URL + "/pins"}, Auth: "Bearer " + token,
						PinSeed: fmt.Sprintf("max-%d-%d", clients, time.Now().UnixNano()), Duration: 5 * time.Second, Clients: clients, Want: http.StatusAccepted})
					report(b, fmt.Sprintf("closed loop, %d clients", clients), r)
					b.ReportMetric(r.PerSec, fmt.Sprintf("req/s@%dclients", clients))
				}
				r := load(b, spec{Method: http.MethodPost, URLs: []string{srv.URL + "/pins"}, Auth: "Bearer " + token,
					PinSeed: fmt.Sprintf("rate-%d", time.Now().UnixNano()), Duration: 5 * time.Second, Rate: 2000, Want: http.StatusAccepted})
				report(b, "open loop, 2000/s", r)
				b.ReportMetric(float64(r.P50)/1e6, "p50-ms@2000/s")
				b.ReportMetric(float64(r.P99)/1e6, "p99-ms@2000/s")
			}
		})
	}
}
