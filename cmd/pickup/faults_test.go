package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

// errInjected is the failure faultyLog injects.
var errInjected = errors.New("injected: the log's connection broke")

// faultyLog is an event log whose subscriptions fail while broken is set:
// new ones at once, running ones as soon as it is set, as a log whose
// connection breaks would.
type faultyLog struct {
	eventlog.Store
	broken atomic.Bool

	mu      sync.Mutex
	running map[*context.CancelFunc]bool
}

func (l *faultyLog) Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error {
	if l.broken.Load() {
		return errInjected
	}
	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	l.mu.Lock()
	l.running[&cancel] = true
	l.mu.Unlock()
	defer func() { l.mu.Lock(); delete(l.running, &cancel); l.mu.Unlock() }()
	err := l.Store.Subscribe(sub, after, filter, handle)
	if ctx.Err() == nil && sub.Err() != nil {
		return errInjected
	}
	return err
}

// breakAll fails every subscription, running and new, until mend.
func (l *faultyLog) breakAll() {
	l.broken.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	for cancel := range l.running {
		(*cancel)()
	}
}

func (l *faultyLog) mend() { l.broken.Store(false) }

// runningPickup is `pickup run` in this process.
type runningPickup struct {
	api, admin, token string
	done              chan int
	stderr            *telemetrytest.Buffer
}

// startRun runs `pickup run` on embedded stores in a temporary directory,
// fetching from origin, with wrap around its event log, and waits until it
// is ready.
func startRun(t *testing.T, origin string, wrap func(eventlog.Store) eventlog.Store, args ...string) *runningPickup {
	t.Helper()
	dir := t.TempDir()
	var stdout telemetrytest.Buffer
	r := &runningPickup{done: make(chan int, 1), stderr: &telemetrytest.Buffer{}}
	e := &env{stdout: &stdout, stderr: r.stderr, getenv: func(string) string { return "" }, wrapLog: wrap}
	ctx, cancel := context.WithCancel(context.Background())
	args = append([]string{"run", "--eventlog", filepath.Join(dir, "events.db"), "--views", filepath.Join(dir, "views.db"),
		"--car-dir", filepath.Join(dir, "cars"), "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--serve-addr", "127.0.0.1:0",
		"--serve-libp2p-listen", "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1",
		"--sources", "gateway", "--trustless-gateways", origin, "--allow-private-origins",
		"--delegates", "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWR3DeCKahEqXtP8KvuG3XBeLZTU55yktXSmy8g4Phh6BV"}, args...)
	go func() { r.done <- run(ctx, e, args) }()
	t.Cleanup(func() {
		cancel()
		if code := <-r.done; code != 0 {
			t.Errorf("pickup run exited %d after the test; stderr:\n%s", code, tail(r.stderr.String()))
		}
	})
	banner := regexp.MustCompile(`API: +http://(\S+)\n(?s:.*)token: +(\S+)(?s:.*)admin: +http://([^/\s]+)/`)
	waitFor(t, "the banner", func() bool {
		select {
		case code := <-r.done:
			r.done <- code
			t.Fatalf("pickup run exited %d at start: %s", code, tail(r.stderr.String()))
		default:
		}
		m := banner.FindStringSubmatch(stdout.String())
		if m == nil {
			return false
		}
		r.api, r.token, r.admin = m[1], m[2], m[3]
		return true
	})
	waitFor(t, "ready", func() bool { code, _ := r.ready(t); return code == http.StatusOK })
	// The token is issued at start: wait for the views to know it.
	waitFor(t, "the token known", func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+r.api+"/pins", nil)
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return r
}

func tail(s string) string { return s[max(0, len(s)-4000):] }

// alive reports whether `pickup run` still runs.
func (r *runningPickup) alive() bool {
	select {
	case code := <-r.done:
		r.done <- code
		return false
	default:
		return true
	}
}

// ready asks /readyz.
func (r *runningPickup) ready(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.admin + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// pin requests a pin of cid and returns its request id.
func (r *runningPickup) pin(t *testing.T, cid string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.api+"/pins", strings.NewReader(`{"cid":"`+cid+`"}`))
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ps struct {
		RequestID string `json:"requestid"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /pins: %d, %v", resp.StatusCode, err)
	}
	return ps.RequestID
}

// status returns a pin's status and info.
func (r *runningPickup) status(t *testing.T, id string) (string, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.api+"/pins/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ps struct {
		Status string            `json:"status"`
		Info   map[string]string `json:"info"`
	}
	json.NewDecoder(resp.Body).Decode(&ps)
	return ps.Status, ps.Info
}

// TestSubscriptionsFailing: while every subscription to the log fails
// (running ones broken, new ones refused), `pickup run` stays up, /readyz
// says not ready and names the subscriptions, the failures are counted; a
// pin requested meanwhile is fetched (the fetcher's scan and the views'
// catching up do not subscribe); once the log mends, the process is ready
// again, and nothing was fetched twice.
func TestSubscriptionsFailing(t *testing.T) {
	bs := ipfstest.NewMemBlockstore()
	origin := ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{})
	root, err := ipfstest.File(context.Background(), bs, ipfstest.FileOptions{Size: 300 << 10, Seed: 7, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	faulty := &faultyLog{running: map[*context.CancelFunc]bool{}}
	r := startRun(t, origin.URL(), func(s eventlog.Store) eventlog.Store { faulty.Store = s; return faulty })

	faulty.breakAll()
	var body string
	waitFor(t, "/readyz not ready, naming the subscriptions", func() bool {
		code, b := r.ready(t)
		body = b
		return code == http.StatusServiceUnavailable && strings.Contains(b, "subscriptions") && strings.Contains(b, "fetcher")
	})
	t.Logf("/readyz while the log is broken: %s", strings.TrimSpace(body))
	id := r.pin(t, root.String())
	waitFor(t, "failures counted", func() bool {
		m := telemetrytest.Scrape(t, "http://"+r.admin+"/metrics")
		return m[`pickup_subscription_failures_total{subscriber="fetcher"}`] >= 2 && m[`pickup_subscription_failures_total{subscriber="projections"}`] >= 1 &&
			m[`pickup_subscription_up{subscriber="fetcher"}`] == 0
	})
	if !r.alive() {
		t.Fatal("pickup run exited while the log was broken")
	}
	faulty.mend()
	waitFor(t, "ready again", func() bool { code, _ := r.ready(t); return code == http.StatusOK })
	waitFor(t, "the pin pinned", func() bool { s, _ := r.status(t, id); return s == "pinned" })
	if _, info := r.status(t, id); info["attempt"] != "" && info["attempt"] != "1" {
		t.Errorf("pinned at attempt %s, want 1", info["attempt"])
	}
	if m := telemetrytest.Scrape(t, "http://"+r.admin+"/metrics"); m[`pickup_subscription_up{subscriber="fetcher"}`] != 1 {
		t.Errorf("pickup_subscription_up for the fetcher %v once mended, want 1", m[`pickup_subscription_up{subscriber="fetcher"}`])
	}
	if got := origin.Requests(); got != 1 {
		t.Errorf("the origin served %d requests for one pin", got)
	}
}

// TestEventsTailFollowsThroughFailures: `events tail --follow` whose log
// breaks keeps going: an event appended while the subscription fails is
// printed once the log mends, once, after the ones before.
func TestEventsTailFollowsThroughFailures(t *testing.T) {
	path, all := seedLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errs := &telemetrytest.Buffer{}, &telemetrytest.Buffer{}
	faulty := &faultyLog{running: map[*context.CancelFunc]bool{}}
	e := &env{stdout: out, stderr: errs, getenv: func(string) string { return "" },
		wrapLog: func(s eventlog.Store) eventlog.Store { faulty.Store = s; return faulty }}
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, []string{"events", "tail", "--eventlog", path, "--follow"}) }()
	waitFor(t, "the old events", func() bool { return strings.Count(out.String(), "\n") == len(all) })
	faulty.breakAll()
	s, err := embedded.Open(ctx, path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := uuid.New()
	if _, err := s.Append(ctx, "pin-c", eventlog.NoStream, eventlog.Proposed{ID: id, Type: "Tested", Version: 1, Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a failure reported", func() bool { return strings.Contains(errs.String(), "following the log failed") })
	faulty.mend()
	waitFor(t, "the new event", func() bool { return strings.Contains(out.String(), id.String()) })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("interrupted tail exited %d, want 0; stderr %s", code, errs)
	}
	got := decodeLines(t, out.String())
	if len(got) != len(all)+1 || got[len(all)].ID != id {
		t.Errorf("tail --follow printed %d events, want the %d old ones and then %s once", len(got), len(all), id)
	}
}
