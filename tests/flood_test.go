package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// floodResult is what tests/flood prints.
type floodResult struct {
	Connects    int64 `json:"connects"`
	DialErrors  int64 `json:"dial_errors"`
	Shed        int64 `json:"shed"`
	Answered    int64 `json:"answered"`
	Closed      int64 `json:"closed"`
	ResetOrLost int64 `json:"reset_or_lost"`
	PeakHeld    int64 `json:"peak_held"`
}

var (
	floodOnce sync.Once
	floodPath string
	floodErr  error
)

// floodBin builds tests/flood, the load generator, once.
func floodBin(tb testing.TB) string {
	tb.Helper()
	floodOnce.Do(func() {
		floodPath = filepath.Join(filepath.Dir(pickupBin), "flood")
		build := exec.Command("go", "build", "-trimpath", "-o", floodPath, "github.com/pickup-ipfs/pickup/tests/flood")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		if err != nil {
			floodErr = fmt.Errorf("building tests/flood: %v\n%s", err, out)
		}
	})
	if floodErr != nil {
		tb.Fatal(floodErr)
	}
	return floodPath
}

// flood is a running load generator, a process of its own.
type flood struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
}

func startFlood(tb testing.TB, addr string, args ...string) *flood {
	tb.Helper()
	f := &flood{cmd: exec.Command(floodBin(tb), append([]string{"-addr", addr}, args...)...)}
	f.cmd.Stdout, f.cmd.Stderr = &f.out, &f.err
	if err := f.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.cmd.Process.Kill(); f.cmd.Wait() })
	return f
}

// wait waits for the flood's end and returns what it saw.
func (f *flood) wait(tb testing.TB) floodResult {
	tb.Helper()
	if err := f.cmd.Wait(); err != nil {
		tb.Fatalf("flood: %v\n%s", err, f.err.String())
	}
	var r floodResult
	if err := json.Unmarshal(f.out.Bytes(), &r); err != nil {
		tb.Fatalf("flood printed %q: %v", f.out.String(), err)
	}
	return r
}

// alive reports whether the process still runs.
func (p *process) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// openFDs counts the process's open descriptors.
func (p *process) openFDs() int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// readyz asks the process's /readyz and reports its status code (0 when
// it did not answer) and how long the answer took.
func (p *process) readyz(client *http.Client) (int, time.Duration) {
	start := time.Now()
	resp, err := client.Get("http://" + p.addrs["admin"] + "/readyz")
	took := time.Since(start)
	if err != nil {
		return 0, took
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, took
}

// watch samples a process while a flood runs: /readyz's answers and
// latency (and the API's connections), and its open descriptors, every
// period until stop is closed.
type watch struct {
	mu       sync.Mutex
	asked    int
	unready  int // answers other than 200
	unanswer int // no answer within the client's timeout
	worst    time.Duration
	peakFDs  int
	// peakAPI is the most connections the API said it held
	// (pickup_http_connections_open), when metrics is set.
	peakAPI   int
	metrics   bool
	stop      chan struct{}
	done      sync.WaitGroup
	deadAtEnd bool
}

func watchProcess(p *process, period time.Duration, metrics bool) *watch {
	w := &watch{stop: make(chan struct{}), metrics: metrics}
	client := &http.Client{Timeout: 5 * time.Second}
	w.done.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			code, took := p.readyz(client)
			api := -1
			if w.metrics {
				api = apiConns(client, p)
			}
			w.mu.Lock()
			w.peakAPI = max(w.peakAPI, api)
			w.asked++
			switch code {
			case http.StatusOK:
			case 0:
				w.unanswer++
			default:
				w.unready++
			}
			w.worst = max(w.worst, took)
			w.mu.Unlock()
		}
	})
	// Descriptors are counted on their own: a /readyz that does not answer
	// must not stop the count.
	w.done.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			fds := p.openFDs()
			w.mu.Lock()
			w.peakFDs = max(w.peakFDs, fds)
			w.mu.Unlock()
		}
	})
	return w
}

func (w *watch) end() { close(w.stop); w.done.Wait() }

// apiConns reads pickup_http_connections_open{server="api"} from the
// process's /metrics, or -1.
func apiConns(client *http.Client, p *process) int {
	resp, err := client.Get("http://" + p.addrs["admin"] + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, `pickup_http_connections_open{server="api"} `); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// postPin requests a pin, trying again after a 503 or a broken connection
// (as a client told Retry-After would), and returns its request id and how
// many tries it took.
func postPin(tb testing.TB, api, token string, root cid.Cid, within time.Duration) (string, int) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for tries := 1; ; tries++ {
		req, _ := http.NewRequest(http.MethodPost, api+"/pins", strings.NewReader(`{"cid":"`+root.String()+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "flood-"+root.String())
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				var ps struct {
					RequestID string `json:"requestid"`
				}
				json.Unmarshal(body, &ps)
				return ps.RequestID, tries
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				tb.Fatalf("POST /pins: %d %s", resp.StatusCode, body)
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("POST /pins not accepted within %v (%d tries; last: %v)", within, tries, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pinStatus reads a pin's status, "" when the API did not answer (a 503,
// a broken connection).
func pinStatus(api, token, id string) (string, map[string]string) {
	req, _ := http.NewRequest(http.MethodGet, api+"/pins/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil
	}
	defer resp.Body.Close()
	var ps struct {
		Status string            `json:"status"`
		Info   map[string]string `json:"info"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ps) != nil {
		return "", nil
	}
	return ps.Status, ps.Info
}

// TestFloodPastTheCap: `pickup run` with small connection caps, flooded
// by idle connections and slow bodies from many addresses, and by one
// address past its own cap, while a pin is fetched from a slow origin.
// Connections beyond the caps are answered 503 with Retry-After, /readyz
// answers throughout, the pin already fetching is pinned at its first
// attempt, the process stays up and its descriptors stay under the caps,
// and the API serves again once the flood ends.
func TestFloodPastTheCap(t *testing.T) {
	c := newCluster(t, clusterOptions{throttle: 1 << 20})
	const maxConns, perClient = 40, 10
	run := c.start("run", []string{"run"},
		"PICKUP_HTTP_MAX_CONNS="+strconv.Itoa(maxConns), "PICKUP_HTTP_MAX_CONNS_PER_CLIENT="+strconv.Itoa(perClient),
		"PICKUP_HTTP_READ_TIMEOUT=2s")
	base := run.openFDs()
	root := c.file(3<<20, 61)
	id, _ := postPin(t, run.api(), c.token, root, 30*time.Second)
	waitUntil(t, 60*time.Second, "the pin fetching", func() bool { s, _ := pinStatus(run.api(), c.token, id); return s == "pinning" })

	w := watchProcess(run, 100*time.Millisecond, true)
	addr := strings.TrimPrefix(run.api(), "http://")
	// One address: its own cap, met before the server's is.
	one := startFlood(t, addr, "-slow", strconv.Itoa(3*perClient), "-per-source", "1000", "-slow-every", "300ms",
		"-pause", "200ms", "-duration", "8s", "-sources", "127.21.0.1")
	waitUntil(t, 30*time.Second, "the client's cap met", func() bool {
		return scrape(t, run)[`pickup_http_connections_shed_total{reason="max_conns_per_client",server="api"}`] > 0
	})
	// Many addresses (5 each): the server's cap.
	many := startFlood(t, addr, "-idle", "100", "-slow", "60", "-per-source", "5", "-slow-every", "300ms",
		"-pause", "200ms", "-duration", "6s", "-sources", "127.20.0.1")
	rMany, rOne := many.wait(t), one.wait(t)
	w.end()
	t.Logf("flood from many addresses: %+v", rMany)
	t.Logf("flood from one address: %+v", rOne)
	t.Logf("/readyz asked %d times: %d not ready, %d unanswered, worst %v; descriptors at start %d, at most %d; API connections at most %d",
		w.asked, w.unready, w.unanswer, w.worst, base, w.peakFDs, w.peakAPI)

	if !run.alive() {
		t.Fatalf("pickup run exited: %v", run.err)
	}
	if rMany.Shed == 0 || rOne.Shed == 0 {
		t.Errorf("503s: %d to many addresses, %d to one; want some to both", rMany.Shed, rOne.Shed)
	}
	if w.unanswer > 0 {
		t.Errorf("/readyz did not answer %d of %d times", w.unanswer, w.asked)
	}
	if w.peakAPI > maxConns {
		t.Errorf("the API held %d connections, over its cap of %d", w.peakAPI, maxConns)
	}
	// The API's and the admin server's caps, the 503s lingering, and what
	// the process held before.
	if limit := base + maxConns + 64 + 64; w.peakFDs > limit {
		t.Errorf("the process held %d descriptors, over %d", w.peakFDs, limit)
	}
	m := scrape(t, run)
	for _, reason := range []string{"max_conns", "max_conns_per_client"} {
		if m[`pickup_http_connections_shed_total{reason="`+reason+`",server="api"}`] == 0 {
			t.Errorf("no connection shed for %s", reason)
		}
	}
	waitUntil(t, 120*time.Second, "the pin pinned", func() bool { s, _ := pinStatus(run.api(), c.token, id); return s == "pinned" })
	if _, info := pinStatus(run.api(), c.token, id); info["failures"] != "" && info["failures"] != "0" {
		t.Errorf("the pin failed %s attempts under the flood", info["failures"])
	}
	// The flood is over: the API serves at once.
	if s, _ := pinStatus(run.api(), c.token, id); s != "pinned" {
		t.Errorf("after the flood, GET /pins/{id}: %q", s)
	}
}
