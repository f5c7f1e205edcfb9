package gateway_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/ui"
	"github.com/pickup-ipfs/pickup/pin"
)

// The page is served to anyone (it holds nothing of any tenant), with a
// policy that lets only its own script run, and its assets are revalidated
// by ETag. The browser test (tests/ui_test.go) shows it working.
func TestStatusPageIsServed(t *testing.T) {
	_, base, _ := setup(t, gateway.Config{})
	anon := client{t: t, base: base}
	page := anon.do(http.MethodGet, "/", "")
	if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", page.status, page.header.Get("Content-Type"))
	}
	csp := page.header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "connect-src 'self'", "form-action 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || regexp.MustCompile(`<script>|<script [^>]*>[^<]`).Match(page.body) {
		t.Errorf("the page runs inline script")
	}
	if !strings.Contains(string(page.body), `id="signin-form"`) || !strings.Contains(string(page.body), `type="password"`) {
		t.Errorf("the page has no sign-in form for the token:\n%s", page.body)
	}
	assets := regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"`).FindAllSubmatch(page.body, -1)
	if len(assets) != 2 {
		t.Fatalf("the page links %d assets, want its script and stylesheet", len(assets))
	}
	for _, m := range assets {
		path := strings.ReplaceAll(string(m[1]), "&amp;", "&")
		a := anon.do(http.MethodGet, path, "")
		ct := a.header.Get("Content-Type")
		if a.status != http.StatusOK || len(a.body) == 0 || !(strings.HasPrefix(ct, "text/javascript") || strings.HasPrefix(ct, "text/css")) {
			t.Errorf("GET %s = %d %q, %d bytes", path, a.status, ct, len(a.body))
		}
		etag := a.header.Get("ETag")
		if again := anon.do(http.MethodGet, path, "", "If-None-Match", etag); etag == "" || again.status != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %q = %d, want 304", path, etag, again.status)
		}
	}
	anon.do(http.MethodPost, "/", "").wantError(t, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "GET, HEAD")
}

// A pin's timeline tells its story from the log, to its tenant only.
func TestTimeline(t *testing.T) {
	s, base, alice := setup(t, gateway.Config{})
	bob := bearer(t, base, s.Token(t, "bob"))
	ps := alice.addPin(`{"cid":"` + newCID(t).String() + `","name":"story"}`)
	id := uuid.MustParse(ps.RequestID)
	policy := pin.RetryPolicy{MaxAttempts: 3, BaseDelay: 1, MaxDelay: 1}
	s.Claim(t, id)
	s.Fail(t, id, pin.ReasonStalled, "no block within 2m", policy)
	s.Claim(t, id)
	s.Progress(t, id, 1<<20, 4, "gateway")
	s.Progress(t, id, 2<<20, 8, "gateway")
	s.Complete(t, id, "bagbaieratimeline", 2<<20)

	var tl ui.Timeline
	alice.do(http.MethodGet, "/pins/"+ps.RequestID+"/timeline", "").want(t, http.StatusOK, &tl)
	var types []string
	for _, e := range tl.Entries {
		types = append(types, e.Type)
	}
	want := []string{"PinRequested", "FetchStarted", "PinFailed", "RetryScheduled", "FetchStarted", "FetchProgress", "FetchProgress", "CarUploaded", "CarValidated"}
	if tl.RequestID != ps.RequestID || tl.Status != pin.StatusPinned || !slices.Equal(types, want) {
		t.Fatalf("timeline %s %s with events %v; want %s pinned with %v", tl.RequestID, tl.Status, types, ps.RequestID, want)
	}
	if retry := tl.Entries[3]; !strings.Contains(retry.Why, "stalled: no block within 2m") || retry.Attempt != 1 {
		t.Errorf("the retry says %+v; want why it was retried", retry)
	}
	if e := tl.Entries[6]; e.Status != pin.StatusPinning || !strings.Contains(e.What, "2.0 MiB in 8 blocks") {
		t.Errorf("the last progress says %+v", e)
	}
	raw := alice.do(http.MethodGet, "/pins/"+ps.RequestID+"/timeline", "")
	if strings.Contains(string(raw.body), `"position"`) || strings.Contains(string(raw.body), `"event_id"`) {
		t.Errorf("the timeline shows log positions or event ids, which tell a tenant how busy the log is: %s", raw.body)
	}

	// Authorized as GET /pins/{requestid} is.
	removed := alice.addPin(`{"cid":"` + newCID(t).String() + `"}`)
	alice.do(http.MethodDelete, "/pins/"+removed.RequestID, "").want(t, http.StatusAccepted, nil)
	for _, c := range []struct {
		name   string
		c      client
		path   string
		status int
		reason string
	}{
		{"another tenant's pin", bob, "/pins/" + ps.RequestID + "/timeline", 404, "NOT_FOUND"},
		{"no token", client{t: t, base: base}, "/pins/" + ps.RequestID + "/timeline", 401, "UNAUTHORIZED"},
		{"a removed pin", alice, "/pins/" + removed.RequestID + "/timeline", 404, "NOT_FOUND"},
		{"a pin never requested", alice, "/pins/" + uuid.NewString() + "/timeline", 404, "NOT_FOUND"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.c.do(http.MethodGet, c.path, "").wantError(t, c.status, c.reason, "")
		})
	}
	alice.do(http.MethodPost, "/pins/"+ps.RequestID+"/timeline", "").wantError(t, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "GET")
}

// The throughput chart counts the tenant's pins pinned in the last hour,
// each in the minute it was pinned, and nobody else's.
func TestThroughput(t *testing.T) {
	s, base, alice := setup(t, gateway.Config{})
	bob := bearer(t, base, s.Token(t, "bob"))
	sizes := []int64{3 << 20, 5 << 20}
	for _, size := range sizes {
		id := uuid.MustParse(alice.addPin(`{"cid":"` + newCID(t).String() + `"}`).RequestID)
		s.Claim(t, id)
		s.Complete(t, id, "bagbaierathroughput", size)
	}
	alice.addPin(`{"cid":"` + newCID(t).String() + `"}`) // queued: stores nothing yet
	s.Sync(t)

	var got ui.Throughput
	alice.do(http.MethodGet, "/ui/throughput", "").want(t, http.StatusOK, &got)
	var pins int
	var bytes int64
	for _, m := range got.Minutes {
		pins += m.Pins
		bytes += m.Bytes
	}
	if len(got.Minutes) != 60 || got.Pins != 2 || got.Bytes != 8<<20 || pins != 2 || bytes != 8<<20 || got.Partial {
		t.Errorf("alice's throughput: %d minutes, %d pins, %d bytes (minutes add up to %d, %d), partial %v; want 60 minutes, 2 pins, 8 MiB",
			len(got.Minutes), got.Pins, got.Bytes, pins, bytes, got.Partial)
	}
	if last := got.Minutes[59]; last.Bytes+got.Minutes[58].Bytes != 8<<20 {
		t.Errorf("the pins just pinned are not in the last minutes: %+v %+v", got.Minutes[58], last)
	}
	bob.do(http.MethodGet, "/ui/throughput", "").want(t, http.StatusOK, &got)
	if got.Pins != 0 || got.Bytes != 0 {
		t.Errorf("bob sees alice's throughput: %+v", got)
	}
	client{t: t, base: base}.do(http.MethodGet, "/ui/throughput", "").wantError(t, http.StatusUnauthorized, "UNAUTHORIZED", "")
	alice.do(http.MethodGet, "/ui/throughput?minutes=5", "").wantError(t, http.StatusBadRequest, "BAD_REQUEST", "no query parameters")
}
