package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which `make tools` installs
// (scripts/install-chromium.sh).
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium for the test, with a profile of its
// own, and returns a tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser test needs Debian's chromium at %s: run `make tools` (scripts/install-chromium.sh) as root: %v", chromiumPath, err)
	}
	profile, err := os.MkdirTemp("", "pickup-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(profile),
		// As root Chromium runs only without its sandbox. The rest keep it
		// from dialling out (this network refuses every connection but
		// loopback) and from doing anything a test does not ask for.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1200, 1000),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		// Chromium's children may write to the profile for a moment after
		// it stops.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// Start the browser on the context with no deadline, so that only each
	// step is timed (stepTimeout), never the whole test: on a loaded runner
	// the steps together can take minutes, each of them seconds.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// stepTimeout bounds one browser step: a page that never shows what a
// step waits for fails the test instead of hanging it.
const stepTimeout = time.Minute

// do runs one browser step, ended after stepTimeout.
func do[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// artifactDir is where tests keep what a person looks at afterwards:
// $PICKUP_ARTIFACTS, or tests/artifacts (git-ignored).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PICKUP_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// screenshot saves the whole page as a PNG among the artifacts.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := do(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// pageRow is what the page shows of a pin in its table.
type pageRow struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Bytes  string `json:"bytes"`
	Blocks string `json:"blocks"`
	// Percent and Left: of the size the DAG's root declares, if any.
	Percent string `json:"percent"`
	Left    string `json:"left"`
	Text    string `json:"text"`
}

const rowsJS = `Array.from(document.querySelectorAll("#pins tbody tr")).map(tr => {
  const p = tr.querySelector("td.progress");
  return {id: tr.dataset.requestid, status: tr.dataset.status, bytes: p.dataset.bytes || "", blocks: p.dataset.blocks || "", percent: p.dataset.percent || "", left: p.dataset.left || "", text: tr.innerText};
})`

// TestStatusPage: a tenant signs in on the page, pins a CID through it,
// and watches it go from queued to pinning, its counts moving, to pinned,
// with its timeline and the hour's throughput; the token stays in the
// tab's session; another tenant sees none of it.
func TestStatusPage(t *testing.T) {
	c := newCluster(t, clusterOptions{throttle: 1 << 20})
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"})
	root := c.file(4<<20, 77) // about 4 s through the throttled origin
	ctx := browser(t)

	var mu sync.Mutex
	var problems []string
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == "error" {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if _, err := do(ctx, chromedp.Steps(actions...)); err != nil {
			t.Errorf("%s: %v", what, err)
			screenshot(t, ctx, "ui-failed.png")
			t.FailNow()
		}
	}
	eval := func(js string, v any) {
		t.Helper()
		raw, err := do(ctx, chromedp.Evaluate[[]byte](js))
		if err == nil {
			err = json.Unmarshal(raw, v)
		}
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
	}
	rows := func() []pageRow {
		t.Helper()
		var r []pageRow
		eval(rowsJS, &r)
		return r
	}

	run("open the page",
		chromedp.Navigate(gw.api()+"/"),
		chromedp.WaitVisible(chromedp.ID("signin-form")),
	)
	screenshot(t, ctx, "ui-signin.png")
	run("sign in",
		chromedp.SendKeys(chromedp.ID("token"), c.token),
		chromedp.Click(chromedp.CSS("#signin-form button")),
		chromedp.WaitVisible(chromedp.ID("app")),
	)
	var where struct {
		Session, Cookie, URL string
	}
	eval(`({session: sessionStorage.getItem("pickup.token"), cookie: document.cookie, url: location.href})`, &where)
	if where.Session != c.token || where.Cookie != "" || strings.Contains(where.URL, c.token) {
		t.Errorf("the token is kept in session %v, cookie %q, URL %q; want the session only", where.Session == c.token, where.Cookie, where.URL)
	}

	// Pin through the page, with no fetcher yet: the pin waits, queued.
	run("pin through the page",
		chromedp.SendKeys(chromedp.ID("add-cid"), root.String()),
		chromedp.SendKeys(chromedp.ID("add-name"), "from the page"),
		chromedp.Click(chromedp.CSS("#add-form button")),
		chromedp.WaitVisible(chromedp.CSS(`#pins tbody tr[data-status="queued"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline-events li[data-type="PinRequested"]`)),
	)
	r := rows()
	if len(r) != 1 || !strings.Contains(r[0].Text, "from the page") || !strings.Contains(r[0].Text, root.String()) {
		t.Fatalf("the page shows %+v, want the one pin just requested", r)
	}
	id := r[0].ID
	if got := c.client(gw.api()).get(id); got.Pin.CID != root.String() || got.Pin.Name != "from the page" {
		t.Fatalf("the API has %+v for the page's pin", got)
	}

	// A fetcher starts: the page shows the pin pinning, its counts moving,
	// then pinned, without being reloaded.
	c.start("fetcher", []string{"fetcher"})
	var statuses []string
	counts, percents, left := map[string]bool{}, map[string]bool{}, false
	shot := false
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := rows()
		if len(r) != 1 {
			t.Fatalf("the page shows %d pins", len(r))
		}
		if len(statuses) == 0 || statuses[len(statuses)-1] != r[0].Status {
			statuses = append(statuses, r[0].Status)
		}
		if r[0].Status == "pinning" && r[0].Bytes != "" && r[0].Bytes != "0" {
			counts[r[0].Bytes+" bytes, "+r[0].Blocks+" blocks"] = true
			if r[0].Percent != "" && strings.Contains(r[0].Text, r[0].Percent+"% of 4.0 MiB") {
				percents[r[0].Percent] = true
			}
			left = left || (r[0].Left != "" && strings.Contains(r[0].Text, " left"))
			if !shot && len(counts) >= 2 {
				screenshot(t, ctx, "ui-pinning.png")
				shot = true
			}
		}
		if r[0].Status == "pinned" || r[0].Status == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page still shows the pin %s after 90 s: statuses %v", r[0].Status, statuses)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Equal(statuses, []string{"queued", "pinning", "pinned"}) || len(counts) < 2 {
		t.Errorf("the page showed the pin %v with %d distinct counts while pinning (%v); want queued, pinning with moving counts, pinned",
			statuses, len(counts), counts)
	}
	if len(percents) < 2 || !left {
		t.Errorf("the page showed percentages %v of the root's declared size (time left: %v); want them moving, with the time left", percents, left)
	}

	// The timeline tells the whole story, from the log.
	run("timeline", chromedp.WaitVisible(chromedp.CSS(`#timeline-events li[data-type="CarValidated"]`)))
	var types []string
	eval(`Array.from(document.querySelectorAll("#timeline-events li")).map(li => li.dataset.type)`, &types)
	if want := []string{"PinRequested", "FetchStarted", "FetchProgress", "CarUploaded", "CarValidated"}; !slices.Equal(types, want) {
		t.Errorf("the timeline shows %v, want %v (progress reports folded into one)", types, want)
	}

	// The session survives a reload, and the chart shows what was stored.
	run("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#pins tbody tr[data-status="pinned"]`)))
	var charted string
	deadline = time.Now().Add(30 * time.Second)
	for charted == "" || charted == "0" {
		eval(`document.getElementById("chart").dataset.bytes || ""`, &charted)
		if time.Now().After(deadline) {
			t.Fatal("the throughput chart shows nothing stored")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if want := fmt.Sprint(len(c.export(root))); charted != want {
		t.Errorf("the chart shows %s bytes stored, want the CAR's %s", charted, want)
	}
	var bars int
	eval(`document.querySelectorAll("#chart rect.bar-rect").length`, &bars)
	if bars != 1 {
		t.Errorf("the chart draws %d bars, want the one minute the pin was stored in", bars)
	}
	run("select the pin", chromedp.Click(chromedp.CSS(`#pins tbody tr`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline-events li[data-type="CarValidated"]`)))
	screenshot(t, ctx, "ui-pinned.png")

	// Another tenant, in the same tab, sees none of it; a bad token is
	// refused and kept nowhere.
	bob := c.createToken("bob")
	run("sign in as bob",
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("signin-form")),
		chromedp.SendKeys(chromedp.ID("token"), bob),
		chromedp.Click(chromedp.CSS("#signin-form button")),
		chromedp.WaitVisible(chromedp.ID("pins-empty")),
	)
	if r := rows(); len(r) != 0 {
		t.Errorf("bob sees %+v", r)
	}
	run("a bad token",
		chromedp.Click(chromedp.ID("signout")),
		chromedp.SendKeys(chromedp.ID("token"), "pk_nope"),
		chromedp.Click(chromedp.CSS("#signin-form button")),
		chromedp.WaitVisible(chromedp.ID("error")),
	)
	var state struct {
		Error   string
		Session *string
	}
	eval(`({error: document.getElementById("error").textContent, session: sessionStorage.getItem("pickup.token")})`, &state)
	if !strings.Contains(state.Error, "refused") || state.Session != nil {
		t.Errorf("a bad token: the page says %q and keeps %v", state.Error, state.Session)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		// The refused token's 401 is logged by the browser as a failed
		// request; nothing else may be.
		if !strings.Contains(p, "401") {
			t.Errorf("the browser's console: %s", p)
		}
	}
}
