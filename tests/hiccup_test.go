package tests

import (
	"context"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDescriptorTableFull: a `pickup run` whose API cap is set above its
// descriptor limit (a configuration the caps exist to prevent) is flooded
// until the table is full: accepts fail with too many open files, and so
// may the fetch under way and the views' connections. The process stays
// up through it, and once the flood ends it is ready again and the pin is
// pinned.
func TestDescriptorTableFull(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("no prlimit (util-linux) to lower the process's descriptor limit")
	}
	c := newCluster(t, clusterOptions{throttle: 1 << 20})
	run := c.start("run", []string{"run"}, "PICKUP_HTTP_MAX_CONNS=100000", "PICKUP_HTTP_MAX_CONNS_PER_CLIENT=0")
	root := c.file(3<<20, 62)
	id, _ := postPin(t, run.api(), c.token, root, 30*time.Second)
	waitUntil(t, 60*time.Second, "the pin fetching", func() bool { s, _ := pinStatus(run.api(), c.token, id); return s == "pinning" })
	// Room for what it holds and a few dozen more, no more.
	limit := run.openFDs() + 40
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(run.cmd.Process.Pid), "--nofile="+strconv.Itoa(limit)+":"+strconv.Itoa(limit)).CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v: %s", err, out)
	}
	w := watchProcess(run, 100*time.Millisecond, false)
	f := startFlood(t, strings.TrimPrefix(run.api(), "http://"), "-idle", "300", "-per-source", "10", "-pause", "200ms", "-duration", "5s", "-sources", "127.22.0.1")
	r := f.wait(t)
	w.end()
	t.Logf("flood: %+v; /readyz asked %d times, %d not ready, %d unanswered; descriptors at most %d of %d", r, w.asked, w.unready, w.unanswer, w.peakFDs, limit)
	if !run.alive() {
		t.Fatalf("pickup run exited with its descriptor table full: %v\n%s", run.err, tail(run.logs.Name()))
	}
	waitUntil(t, 60*time.Second, "ready again", func() bool { code, _ := run.readyz(http.DefaultClient); return code == http.StatusOK })
	if m := scrape(t, run); m[`pickup_http_accept_errors_total{server="api"}`] == 0 {
		t.Errorf("no accept failed: the table was never full (descriptors at most %d of %d)", w.peakFDs, limit)
	}
	waitUntil(t, 120*time.Second, "the pin pinned", func() bool { s, _ := pinStatus(run.api(), c.token, id); return s == "pinned" })
	if !run.alive() {
		t.Fatalf("pickup run exited: %v", run.err)
	}
}

// TestViewsDatabaseHiccup: while a pin is fetched, the views' PostgreSQL
// database refuses every connection for a while, its open ones cut:
// `pickup run` stays up, /readyz says not ready meanwhile, and once the
// database is back the process is ready again and the pin is pinned.
func TestViewsDatabaseHiccup(t *testing.T) {
	c := newCluster(t, clusterOptions{throttle: 1 << 20})
	run := c.start("run", []string{"run"})
	id, _ := postPin(t, run.api(), c.token, c.file(3<<20, 63), 30*time.Second)
	waitUntil(t, 60*time.Second, "the pin fetching", func() bool { s, _ := pinStatus(run.api(), c.token, id); return s == "pinning" })
	u, err := url.Parse(c.views)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("ALTER DATABASE " + db + " ALLOW_CONNECTIONS false")
	exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db + "'")
	mended := false
	mend := func() {
		if !mended {
			exec("ALTER DATABASE " + db + " ALLOW_CONNECTIONS true")
			mended = true
		}
	}
	defer mend()
	waitUntil(t, 30*time.Second, "/readyz not ready", func() bool { code, _ := run.readyz(http.DefaultClient); return code == http.StatusServiceUnavailable })
	// Long enough for every part to meet the outage: the projections
	// runner, the fetcher's scan, the deciders, the metrics.
	time.Sleep(3 * time.Second)
	if !run.alive() {
		t.Fatalf("pickup run exited while its views were away: %v\n%s", run.err, tail(run.logs.Name()))
	}
	mend()
	waitUntil(t, 60*time.Second, "ready again", func() bool { code, _ := run.readyz(http.DefaultClient); return code == http.StatusOK })
	waitUntil(t, 120*time.Second, "the pin pinned", func() bool { s, _ := pinStatus(run.api(), c.token, id); return s == "pinned" })
	if !run.alive() {
		t.Fatalf("pickup run exited: %v", run.err)
	}
}
