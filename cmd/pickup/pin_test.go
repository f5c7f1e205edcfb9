package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

// pinStack is `pickup run` in this process, fetching from a trustless
// gateway on loopback that sends at most throttle bytes a second, so that
// a fetch lasts long enough to be watched.
type pinStack struct {
	api       string
	tokenFile string
}

// startPinStack runs `pickup run` with CARs in a directory and returns
// where its API is and where it keeps its token.
func startPinStack(t *testing.T, originURL string, extra map[string]string) pinStack {
	t.Helper()
	dir := t.TempDir()
	vars := map[string]string{
		"PICKUP_EVENTLOG":              filepath.Join(dir, "events.db"),
		"PICKUP_VIEWS":                 filepath.Join(dir, "views.db"),
		"PICKUP_CAR_DIR":               filepath.Join(dir, "cars"),
		"PICKUP_HTTP_ADDR":             "127.0.0.1:0",
		"PICKUP_SERVE_ADDR":            "127.0.0.1:0",
		"PICKUP_SERVE_LIBP2P_LISTEN":   "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1",
		"PICKUP_ADMIN_ADDR":            "127.0.0.1:0",
		"PICKUP_LOG_LEVEL":             "warn",
		"PICKUP_SOURCES":               "gateway",
		"PICKUP_TRUSTLESS_GATEWAYS":    originURL,
		"PICKUP_DELEGATES":             "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWR3DeCKahEqXtP8KvuG3XBeLZTU55yktXSmy8g4Phh6BV",
		"PICKUP_ALLOW_PRIVATE_ORIGINS": "true",
		// Progress every 200 ms: a fetch of a few seconds reports many times.
		"PICKUP_LEASE": "600ms",
	}
	for k, v := range extra {
		vars[k] = v
	}
	out, errs := &telemetrytest.Buffer{}, &telemetrytest.Buffer{}
	e := &env{stdout: out, stderr: errs, getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, []string{"run"}) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("pickup run exited %d: %s", code, errs)
		}
	})
	api := regexp.MustCompile(`API:\s+(http://\S+)`)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := api.FindStringSubmatch(out.String()); m != nil {
			return pinStack{api: m[1], tokenFile: filepath.Join(dir, "token")}
		}
		select {
		case code := <-done:
			t.Fatalf("pickup run exited %d before serving: %s", code, errs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pickup run printed no API address: %s %s", out, errs)
		}
	}
}

// pinCLI runs a `pickup pin` command line against the stack and returns
// its exit code, stdout and stderr.
func (s pinStack) pinCLI(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	all := map[string]string{"PICKUP_API": s.api, "PICKUP_TOKEN_FILE": s.tokenFile}
	for k, v := range vars {
		all[k] = v
	}
	e, out, errs := testEnv(all)
	code := run(context.Background(), e, append([]string{"pin"}, args...))
	return code, out.String(), errs.String()
}

// progressLine is a line --wait prints while the pin is fetched.
var progressLine = regexp.MustCompile(`(?m)^pinning: attempt 1, ([0-9.]+ [KMG]?i?B) in (\d+) blocks so far from gateway\b.*$`)

// barFrame is a frame of the progress bar while the pin is fetched:
// blocks, the percentage of the declared size if any, then bytes.
var barFrame = regexp.MustCompile(`pinning, attempt 1: (\d+) blocks(?:, [^(]*)? \(([0-9.]+ [KM]iB)[,)]`)

// field reads a field of `pin add` or `pin status` output.
func field(out, name string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+(.*)$`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

// The whole CLI against a real `pickup run`: --wait follows a pin to
// pinned (exit 0) and another to failed (exit 1, with the reason), with
// its progress moving, as lines or as a bar; then ls, status and rm.
func TestPinCommands(t *testing.T) {
	bs := ipfstest.NewMemBlockstore()
	origin := ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{})
	file := func(size int64, seed uint64) cid.Cid {
		root, err := ipfstest.File(context.Background(), bs, ipfstest.FileOptions{Size: size, Seed: seed, CIDv1: true})
		if err != nil {
			t.Fatal(err)
		}
		return root
	}
	// 1 MiB/s: the 3 MiB DAGs take about 3 s; the 6 MiB one fails at the
	// 4 MiB limit as soon as its root says how big it is.
	s := startPinStack(t, ipfstest.Throttled(t, origin.URL(), 1<<20), map[string]string{"PICKUP_MAX_CAR_BYTES": "4MiB"})
	good, barred, big := file(3<<20, 1), file(3<<20, 2), file(6<<20, 3)

	type result struct {
		code      int
		out, errs string
	}
	var wg sync.WaitGroup
	var pinned, failed result
	var bar bytes.Buffer
	var barErr error
	wg.Go(func() {
		pinned.code, pinned.out, pinned.errs = s.pinCLI(t, nil, "add", good.String(), "--name", "hello", "--meta", "app=cli", "--wait")
	})
	wg.Go(func() {
		failed.code, failed.out, failed.errs = s.pinCLI(t, nil, "add", "--wait", big.String())
	})
	wg.Go(func() {
		// The bar, as a terminal would show it.
		c, err := (&clientFlags{api: &s.api, token: new(string), tokenFile: &s.tokenFile}).client()
		if err != nil {
			barErr = err
			return
		}
		ps, err := c.Add(context.Background(), api.Pin{CID: barred.String()}, "")
		if err != nil {
			barErr = err
			return
		}
		show := newProgressBar(&bar)
		ps, barErr = c.Wait(context.Background(), ps, show.show)
		show.done()
		if barErr == nil && ps.Status != "pinned" {
			barErr = failedError(ps)
		}
	})
	wg.Wait()

	id := field(pinned.out, "request")
	if pinned.code != 0 || field(pinned.out, "status") != "pinned" || field(pinned.out, "car_cid") == "" || id == "" {
		t.Fatalf("pin add --wait of a DAG that pins: exit %d\nstdout:\n%s\nstderr:\n%s", pinned.code, pinned.out, pinned.errs)
	}
	moves := map[string]bool{}
	for _, m := range progressLine.FindAllStringSubmatch(pinned.errs, -1) {
		if m[2] != "0" {
			moves[m[1]] = true
		}
	}
	if len(moves) < 2 || !strings.Contains(pinned.errs, "queued") {
		t.Errorf("--wait showed %d distinct byte counts while pinning, want the progress moving:\n%s", len(moves), pinned.errs)
	}
	if failed.code != 1 || !strings.Contains(failed.errs, "too_big") || field(failed.out, "status") != "failed" {
		t.Errorf("pin add --wait of a DAG over the limit: exit %d, want 1 with the reason\nstdout:\n%s\nstderr:\n%s", failed.code, failed.out, failed.errs)
	}
	barMoves := map[string]bool{}
	for _, m := range barFrame.FindAllStringSubmatch(bar.String(), -1) {
		barMoves[m[1]+" "+m[2]] = true
	}
	if barErr != nil || len(barMoves) < 2 || !regexp.MustCompile(`pinned \(3\.0 MiB`).Match(bar.Bytes()) {
		t.Errorf("the progress bar (%v) drew %d distinct frames while pinning, want it moving, then pinned:\n%q", barErr, len(barMoves), bar.String())
	}

	// ls lists both, newest first; filters reach the API.
	code, out, errs := s.pinCLI(t, nil, "ls")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "hello") || strings.Count(out, "\n") != 4 {
		t.Errorf("pin ls: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = s.pinCLI(t, nil, "ls", "--status", "failed", "--json")
	var res api.PinResults
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || res.Count != 1 || res.Results[0].Pin.CID != big.String() {
		t.Errorf("pin ls --status failed --json: exit %d, %v: %s", code, err, out)
	}
	code, out, _ = s.pinCLI(t, nil, "ls", "--cid", good.String(), "--limit", "1")
	if code != 0 || !strings.Contains(out, id) || strings.Count(out, "\n") != 2 {
		t.Errorf("pin ls --cid: exit %d\n%s", code, out)
	}

	// status shows one pin, and a failed one exits 1.
	code, out, _ = s.pinCLI(t, nil, "status", id)
	if code != 0 || field(out, "status") != "pinned" || field(out, "meta.app") != "cli" || field(out, "name") != "hello" {
		t.Errorf("pin status: exit %d\n%s", code, out)
	}
	failedID := field(failed.out, "request")
	if code, _, errs := s.pinCLI(t, nil, "status", failedID, "--wait"); code != 1 || !strings.Contains(errs, "too_big") {
		t.Errorf("pin status --wait of a failed pin: exit %d: %s", code, errs)
	}

	// rm removes it: gone at once.
	if code, out, errs := s.pinCLI(t, nil, "rm", id); code != 0 || !strings.Contains(out, "removed "+id) {
		t.Errorf("pin rm: exit %d: %s%s", code, out, errs)
	}
	if code, _, errs := s.pinCLI(t, nil, "status", id); code != 1 || !strings.Contains(errs, "404 NOT_FOUND") {
		t.Errorf("pin status of a removed pin: exit %d: %s", code, errs)
	}

	// The token: from PICKUP_TOKEN before the file; a refused one says so.
	if code, _, errs := s.pinCLI(t, map[string]string{"PICKUP_TOKEN": "nope"}, "ls"); code != 1 || !strings.Contains(errs, "401") || !strings.Contains(errs, "token was refused") {
		t.Errorf("a bad token: exit %d: %s", code, errs)
	}
	token, err := os.ReadFile(s.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errs := s.pinCLI(t, map[string]string{"PICKUP_TOKEN": string(token), "PICKUP_TOKEN_FILE": "/nonexistent"}, "ls"); code != 0 {
		t.Errorf("PICKUP_TOKEN: exit %d: %s", code, errs)
	}
}

// Command lines that cannot run are usage errors (exit 2), and send
// nothing.
func TestPinUsage(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("pk_test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	defer srv.Close()
	for _, c := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"no subcommand", nil, nil, "needs a subcommand"},
		{"unknown subcommand", nil, []string{"pin", "list"}, `unknown pin subcommand "list"`},
		{"add without a CID", nil, []string{"pin", "add", "--wait"}, "one CID"},
		{"add two CIDs", nil, []string{"pin", "add", "a", "b"}, "one CID"},
		{"bad meta", nil, []string{"pin", "add", "bafy", "--meta", "novalue"}, "want key=value"},
		{"status without an id", nil, []string{"pin", "status"}, "one request id"},
		{"ls with an argument", nil, []string{"pin", "ls", "bafy"}, "takes no arguments"},
		{"bad API URL", map[string]string{"PICKUP_API": "127.0.0.1:3000"}, []string{"pin", "ls"}, "want an http:// or https:// URL"},
		{"limit out of range", nil, []string{"pin", "ls", "--limit", "0"}, "want 1 to 1000"},
		{"no status", nil, []string{"pin", "ls", "--status", ""}, "want one or more of"},
		{"no token", map[string]string{"PICKUP_TOKEN_FILE": filepath.Join(t.TempDir(), "none")}, []string{"pin", "ls"}, "no token"},
		{"unknown flag", nil, []string{"pin", "rm", "x", "--force"}, "flag provided but not defined"},
	} {
		t.Run(c.name, func(t *testing.T) {
			vars := map[string]string{"PICKUP_API": srv.URL, "PICKUP_TOKEN_FILE": tokenFile}
			for k, v := range c.vars {
				vars[k] = v
			}
			e, _, errs := testEnv(vars)
			args := c.args
			if args == nil {
				args = []string{"pin"}
			}
			if code := run(context.Background(), e, args); code != 2 || !strings.Contains(errs.String(), c.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errs, c.want)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("usage errors sent %d requests", n)
	}
	// Help lists the subcommands and the settings every one reads.
	e, out, _ := testEnv(nil)
	if code := run(context.Background(), e, []string{"help", "pin"}); code != 0 || !strings.Contains(out.String(), "PICKUP_API") || !strings.Contains(out.String(), "status REQUEST_ID") {
		t.Errorf("help pin: exit %d:\n%s", code, out)
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("isTerminal says a buffer is a terminal: --wait would draw a bar into a log")
	}
}
