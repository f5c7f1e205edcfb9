package gateway_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/gateway"
)

// Bad input gets a 400 with a precise reason in the API's error shape, and
// changes nothing. (The ipfs-cluster routes' refusals, in their own shape:
// TestClusterBadInput.)
func TestBadInputChangesNothing(t *testing.T) {
	s, _, c := setup(t, gateway.Config{MaxBodyBytes: 4 << 10})
	live := c.addPin(`{"cid":"` + newCID(t).String() + `"}`)
	good := newCID(t).String()
	for _, tc := range []struct {
		name           string
		c              client
		method, path   string
		body           string
		headers        []string
		status         int
		reason, detail string
	}{
		{"bad cid", c, "POST", "/pins", `{"cid":"bafyNOPE"}`, nil, 400, "BAD_REQUEST", `cid: "bafyNOPE" is not a CID`},
		{"insecure hash", c, "POST", "/pins", `{"cid":"bafkreaeaaaaaaaaaaaaaaaaaaaaaaaaaaa"}`, nil, 400, "BAD_REQUEST", "cid:"},
		{"no cid", c, "POST", "/pins", `{"name":"x"}`, nil, 400, "BAD_REQUEST", "cid is required"},
		{"long name", c, "POST", "/pins", `{"cid":"` + good + `","name":"` + strings.Repeat("x", 256) + `"}`, nil, 400, "BAD_REQUEST", "name: 256 characters, at most 255"},
		{"21 origins", c, "POST", "/pins", `{"cid":"` + good + `","origins":[` + strings.Repeat(`"/p2p/`+peerA+`",`, 20) + `"/p2p/` + peerA + `"]}`, nil, 400, "BAD_REQUEST", "21 origins, at most 20"},
		{"origin without peer", c, "POST", "/pins", `{"cid":"` + good + `","origins":["/ip4/8.8.8.8/tcp/1"]}`, nil, 400, "BAD_REQUEST", "does not end with /p2p/<peer id>"},
		{"meta not strings", c, "POST", "/pins", `{"cid":"` + good + `","meta":{"a":[]}}`, nil, 400, "BAD_REQUEST", "meta: a JSON array where a string belongs"},
		{"unknown field", c, "POST", "/pins", `{"cid":"` + good + `","pinned":true}`, nil, 400, "BAD_REQUEST", `unknown field "pinned"`},
		{"too big", c, "POST", "/pins", `{"cid":"` + good + `","name":"` + strings.Repeat(" ", 5<<10) + `"}`, nil, 400, "BAD_REQUEST", "body larger than 4096 bytes"},
		{"form body", c, "POST", "/pins", `cid=` + good, []string{"Content-Type", "application/x-www-form-urlencoded"}, 400, "BAD_REQUEST", "send the pin as application/json"},
		{"query on POST", c, "POST", "/pins?cid=" + good, `{"cid":"` + good + `"}`, nil, 400, "BAD_REQUEST", "takes no query parameters"},
		{"bad idempotency key", c, "POST", "/pins", `{"cid":"` + good + `"}`, []string{"Idempotency-Key", "a b"}, 400, "BAD_REQUEST", "Idempotency-Key"},
		{"replace with bad body", c, "POST", "/pins/" + live.RequestID, `{"cid":5}`, nil, 400, "BAD_REQUEST", "cid: a JSON number where a string belongs"},
		{"list limit", c, "GET", "/pins?limit=0", "", nil, 400, "BAD_REQUEST", "limit: 0 is out of range"},
		{"list date", c, "GET", "/pins?before=" + url.QueryEscape("27 July 2020"), "", nil, 400, "BAD_REQUEST", "before:"},
		{"list unknown", c, "GET", "/pins?stats=pinned", "", nil, 400, "BAD_REQUEST", `unknown query parameter "stats"`},
		{"unknown route", c, "GET", "/pins/a/b", "", nil, 404, "NOT_FOUND", ""},
		{"unknown root", c, "GET", "/nope", "", nil, 404, "NOT_FOUND", ""},
		{"unknown page asset", c, "GET", "/ui/nope.js", "", nil, 404, "NOT_FOUND", ""},
		{"unknown timeline", c, "GET", "/pins/notauuid/timeline", "", nil, 404, "NOT_FOUND", ""},
		{"method", c, "PUT", "/pins", `{}`, nil, 405, "METHOD_NOT_ALLOWED", "allowed: GET, POST"},
		{"method on a request id", c, "PATCH", "/pins/" + live.RequestID, `{}`, nil, 405, "METHOD_NOT_ALLOWED", "allowed: GET, POST, DELETE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, _ := s.Log.Head(context.Background())
			tc.c.do(tc.method, tc.path, tc.body, tc.headers...).wantError(t, tc.status, tc.reason, tc.detail)
			if after, _ := s.Log.Head(context.Background()); after != head {
				t.Fatalf("refused request appended to the log (%d -> %d)", head, after)
			}
		})
	}
	var got api.PinStatus
	c.do(http.MethodGet, "/pins/"+live.RequestID, "").want(t, http.StatusOK, &got)
	if got.Status != "queued" {
		t.Fatalf("live pin changed: %+v", got)
	}
}

// Private origins are dropped, not refused, unless the deployment allows
// them.
func TestPrivateOrigins(t *testing.T) {
	body := `{"cid":"` + newCID(t).String() + `","origins":["/ip4/127.0.0.1/tcp/4001/p2p/` + peerA + `","/ip4/8.8.8.8/tcp/4001/p2p/` + peerA + `"]}`
	for _, allow := range []bool{false, true} {
		_, _, c := setup(t, gateway.Config{AllowPrivateOrigins: allow})
		ps := c.addPin(body)
		want := 1
		if allow {
			want = 2
		}
		if len(ps.Pin.Origins) != want {
			t.Errorf("AllowPrivateOrigins %v kept %q", allow, ps.Pin.Origins)
		}
	}
}

// Reads wait for the views to reach the writes before them, within
// ReadWait. Past it, a pin is read from its stream (the log holds it: never
// 404), and a listing is 503 with Retry-After; views that do not move stop
// making reads wait, and /readyz says so.
func TestReadYourWrites(t *testing.T) {
	t.Run("a read waits for lagging views", func(t *testing.T) {
		s, _, c := setup(t, gateway.Config{ReadWait: time.Minute})
		s.StopRunner()
		ps := c.addPin(`{"cid":"` + newCID(t).String() + `"}`)
		go func() {
			time.Sleep(50 * time.Millisecond)
			s.StartRunner()
		}()
		c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, nil)
	})
	t.Run("past the wait, the stream answers and listings are 503", func(t *testing.T) {
		s, _, c := setup(t, gateway.Config{ReadWait: 20 * time.Millisecond})
		h := s.Handler
		if err := h.Ready(context.Background()); err != nil {
			t.Fatalf("ready with the views up to date: %v", err)
		}
		s.StopRunner()
		ps := c.addPin(`{"cid":"` + newCID(t).String() + `","name":"fresh"}`)
		var got api.PinStatus
		c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &got)
		if got.RequestID != ps.RequestID || got.Pin.Name != "fresh" || got.Status != api.StatusQueued {
			t.Errorf("read from the stream: %+v", got)
		}
		// Another tenant's pin, and a pin that never was, are 404 from the
		// stream as from the views.
		c.do(http.MethodGet, "/pins/"+uuid.NewString(), "").wantError(t, http.StatusNotFound, "NOT_FOUND", "")
		rec := c.do(http.MethodGet, "/pins", "")
		rec.wantError(t, http.StatusServiceUnavailable, api.ReasonUnavailable, "behind")
		if rec.header.Get("Retry-After") == "" {
			t.Error("a 503 for lagging views without Retry-After")
		}
		// The views have not moved for a whole wait: not ready, and reads
		// stop waiting for them.
		time.Sleep(30 * time.Millisecond)
		c.do(http.MethodGet, "/pins", "").wantError(t, http.StatusServiceUnavailable, api.ReasonUnavailable, "behind")
		if err := h.Ready(context.Background()); err == nil {
			t.Error("ready while the views are stalled behind the log")
		}
		s.StartRunner()
		s.Sync(t)
		c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, nil)
		c.do(http.MethodGet, "/pins", "").want(t, http.StatusOK, nil)
		if err := h.Ready(context.Background()); err != nil {
			t.Errorf("not ready once the views caught up: %v", err)
		}
	})
	t.Run("a failing view store is 503, and a pin is read from its stream", func(t *testing.T) {
		s, base, c := setup(t, gateway.Config{})
		bob := bearer(t, base, s.Token(t, "bob")) // issued, never used: not cached
		ps := c.addPin(`{"cid":"` + newCID(t).String() + `","name":"kept"}`)
		c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, nil)
		s.StopRunner()
		if err := s.Views.Close(); err != nil {
			t.Fatal(err)
		}
		var got api.PinStatus
		c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &got)
		if got.Pin.Name != "kept" {
			t.Errorf("read from the stream: %+v", got)
		}
		for _, rec := range []response{c.do(http.MethodGet, "/pins", ""), bob.do(http.MethodGet, "/pins", "")} {
			rec.wantError(t, http.StatusServiceUnavailable, api.ReasonUnavailable, "unavailable")
			if rec.header.Get("Retry-After") == "" {
				t.Error("a 503 for failing views without Retry-After")
			}
		}
	})
	t.Run("a write through another instance is seen (log consistency)", func(t *testing.T) {
		s, _, c := setup(t, gateway.Config{ReadWait: time.Minute})
		other := s.NewHandler(t, gateway.Config{})
		s.StopRunner()
		rec := serveOnce(t, other, http.MethodPost, "/pins", `{"cid":"`+newCID(t).String()+`"}`, c.auth)
		var ps api.PinStatus
		rec.want(t, http.StatusAccepted, &ps)
		go func() {
			time.Sleep(50 * time.Millisecond)
			s.StartRunner()
		}()
		c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, nil)
	})
	t.Run("deletes are seen at once", func(t *testing.T) {
		_, _, c := setup(t, gateway.Config{ReadWait: time.Minute, Consistency: gateway.ConsistencyProcess})
		for range 20 {
			ps := c.addPin(`{"cid":"` + newCID(t).String() + `"}`)
			c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, nil)
			c.do(http.MethodDelete, "/pins/"+ps.RequestID, "").want(t, http.StatusAccepted, nil)
			var list api.PinResults
			c.do(http.MethodGet, "/pins?status=queued", "").want(t, http.StatusOK, &list)
			if list.Count != 0 {
				t.Fatalf("deleted pin still listed: %+v", list)
			}
		}
	})
}
