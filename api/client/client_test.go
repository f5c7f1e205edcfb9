package client_test

// The client against pickup's real gateway is tested in
// gateway/psaclient_test.go, where the gateway's test stack
// (gateway/internal/gatewaytest) may be imported. These tests cover what a
// real gateway cannot be made to do on cue: proxies' error pages, 5xx
// runs, a service that stops answering.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/api/client"
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name    string
		cfg     client.Config
		problem string
	}{
		{"good", client.Config{BaseURL: "http://127.0.0.1:3000", Token: "pk_1"}, ""},
		{"https with a prefix", client.Config{BaseURL: "https://pins.example/v1/", Token: "pk_1"}, ""},
		{"no scheme", client.Config{BaseURL: "127.0.0.1:3000", Token: "pk_1"}, "want an http:// or https:// URL"},
		{"other scheme", client.Config{BaseURL: "ftp://example", Token: "pk_1"}, "want an http:// or https:// URL"},
		{"no host", client.Config{BaseURL: "http://", Token: "pk_1"}, "want an http:// or https:// URL"},
		{"a query", client.Config{BaseURL: "http://example/?a=1", Token: "pk_1"}, "want an http:// or https:// URL"},
		{"no token", client.Config{BaseURL: "http://example"}, "no token"},
		{"token with a newline", client.Config{BaseURL: "http://example", Token: "pk_1\nX-Evil: 1"}, "printable ASCII"},
		{"negative poll", client.Config{BaseURL: "http://example", Token: "pk_1", Poll: -time.Second}, "negative poll"},
		{"negative retry", client.Config{BaseURL: "http://example", Token: "pk_1", RetryFor: -time.Second}, "negative retry"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if c.problem == "" && err != nil || c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)) {
				t.Fatalf("Validate: %v, want %q", err, c.problem)
			}
			if _, nerr := client.New(c.cfg); (nerr == nil) != (err == nil) {
				t.Fatalf("New: %v, Validate: %v", nerr, err)
			}
		})
	}
}

// The filters become the spec's query parameters; zero fields send nothing.
func TestListQuery(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 12, 36, 120_000_000, time.FixedZone("CET", 3600))
	for _, c := range []struct {
		name string
		o    client.ListOptions
		want url.Values
	}{
		{"none", client.ListOptions{}, url.Values{}},
		{"every filter", client.ListOptions{CIDs: []string{"Qm1", "bafy2"}, Name: "Photos", Match: api.MatchIPartial,
			Status: []api.Status{api.StatusQueued, api.StatusPinning}, Before: at, After: at.Add(-time.Hour), Limit: 1000,
			Meta: map[string]string{"app": "a&b"}},
			url.Values{"cid": {"Qm1,bafy2"}, "name": {"Photos"}, "match": {"ipartial"}, "status": {"queued,pinning"},
				"before": {"2026-12-03T09:12:36.120000Z"}, "after": {"2026-12-03T08:12:36.120000Z"}, "limit": {"1000"},
				"meta": {`{"app":"a\u0026b"}`}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.o.Query().Encode(); got != c.want.Encode() {
				t.Errorf("query %s, want %s", got, c.want.Encode())
			}
		})
	}
}

// script answers the requests in order, the last one again once they run
// out, and records what was asked.
type script struct {
	mu      sync.Mutex
	answers []answer
	asked   []string
}

type answer struct {
	status int
	body   string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	a := s.answers[min(len(s.asked), len(s.answers)-1)]
	s.asked = append(s.asked, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	w.Write([]byte(a.body))
}

func (s *script) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.asked...)
}

func serve(t *testing.T, answers ...answer) (*script, *client.Client) {
	t.Helper()
	s := &script{answers: answers}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL + "/", Token: "pk_1", Poll: time.Millisecond, RetryFor: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func status(id string, s api.Status) string {
	return `{"requestid":"` + id + `","status":"` + string(s) + `","created":"2026-12-03T09:12:36.000000Z","pin":{"cid":"bafy"},"delegates":[],"info":{}}`
}

// Answers that are not successes become an *Error with the API's reason,
// or the status's text when the body is not the API's; errors.Is sorts
// them into kinds.
func TestErrors(t *testing.T) {
	for _, c := range []struct {
		name            string
		answer          answer
		reason, details string
		kind            error
	}{
		{"API's 404", answer{404, `{"error":{"reason":"NOT_FOUND","details":"The specified resource was not found"}}`}, "NOT_FOUND", "The specified resource was not found", client.ErrNotFound},
		{"API's 400", answer{400, `{"error":{"reason":"BAD_REQUEST","details":"cid: bad"}}`}, "BAD_REQUEST", "cid: bad", client.ErrBadRequest},
		{"API's 401 without details", answer{401, `{"error":{"reason":"UNAUTHORIZED"}}`}, "UNAUTHORIZED", "", client.ErrUnauthorized},
		{"API's 422", answer{422, `{"error":{"reason":"IDEMPOTENCY_KEY_REUSED","details":"use a new key"}}`}, "IDEMPOTENCY_KEY_REUSED", "use a new key", client.ErrKeyReused},
		{"custom reason", answer{402, `{"error":{"reason":"INSUFFICIENT_FUNDS"}}`}, "INSUFFICIENT_FUNDS", "", nil},
		{"a proxy's page", answer{502, `<html>Bad Gateway</html>`}, "Bad Gateway", "", client.ErrUnavailable},
		{"too many requests", answer{429, ``}, "Too Many Requests", "", client.ErrUnavailable},
		{"an error body without a reason", answer{500, `{"error":{}}`}, "Internal Server Error", "", client.ErrUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, cl := serve(t, c.answer)
			_, err := cl.Get(context.Background(), "x")
			var e *client.Error
			if !errors.As(err, &e) || e.Status != c.answer.status || e.Reason != c.reason || e.Details != c.details || e.Op != "GET /pins/x" {
				t.Fatalf("error %#v, want status %d, reason %q, details %q", err, c.answer.status, c.reason, c.details)
			}
			kinds := []error{client.ErrBadRequest, client.ErrUnauthorized, client.ErrNotFound, client.ErrKeyReused, client.ErrUnavailable}
			for _, k := range kinds {
				if errors.Is(err, k) != (k == c.kind) {
					t.Errorf("errors.Is(%v, %v) = %v", err, k, !(k == c.kind))
				}
			}
			if !strings.Contains(err.Error(), c.reason) || !strings.Contains(err.Error(), c.details) {
				t.Errorf("message %q does not tell the reason and details", err)
			}
		})
	}
	// A success that is not the API's JSON.
	_, cl := serve(t, answer{200, `<html>a captive portal</html>`})
	if _, err := cl.Get(context.Background(), "x"); !errors.Is(err, client.ErrBadAnswer) {
		t.Errorf("an HTML success: %v, want ErrBadAnswer", err)
	}
}

// Wait follows a pin to a final status through errors that may pass, gives
// up at once on one that will not, and after RetryFor of errors in a row.
func TestWait(t *testing.T) {
	unavailable := answer{503, `{"error":{"reason":"SERVICE_UNAVAILABLE"}}`}
	for _, c := range []struct {
		name    string
		answers []answer
		want    api.Status // the last status returned
		kind    error      // the error returned, nil for none
		shown   []api.Status
	}{
		{"to pinned", []answer{{200, status("a", api.StatusPinning)}, {200, status("a", api.StatusPinned)}},
			api.StatusPinned, nil, []api.Status{"queued", "pinning", "pinned"}},
		{"to failed, not an error", []answer{{200, status("a", api.StatusFailed)}},
			api.StatusFailed, nil, []api.Status{"queued", "failed"}},
		{"through a 503", []answer{{200, status("a", api.StatusPinning)}, unavailable, {200, status("a", api.StatusPinned)}},
			api.StatusPinned, nil, []api.Status{"queued", "pinning", "pinning", "pinned"}},
		{"stops at a 404", []answer{{200, status("a", api.StatusPinning)}, {404, `{"error":{"reason":"NOT_FOUND"}}`}},
			api.StatusPinning, client.ErrNotFound, []api.Status{"queued", "pinning"}},
		{"gives up after RetryFor", []answer{{200, status("a", api.StatusPinning)}, unavailable},
			api.StatusPinning, client.ErrUnavailable, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, cl := serve(t, c.answers...)
			var shown []api.Status
			got, err := cl.Wait(context.Background(), api.PinStatus{RequestID: "a", Status: api.StatusQueued}, func(ps api.PinStatus) {
				shown = append(shown, ps.Status)
			})
			if got.Status != c.want || (c.kind == nil) != (err == nil) || c.kind != nil && !errors.Is(err, c.kind) {
				t.Fatalf("Wait: %s, %v; want %s, %v", got.Status, err, c.want, c.kind)
			}
			if c.shown != nil && !slices.Equal(shown, c.shown) {
				t.Errorf("shown %v, want %v", shown, c.shown)
			}
			for _, r := range s.requests() {
				if r != "GET /pins/a Bearer pk_1" {
					t.Errorf("asked %q, want only GET /pins/a with the token", r)
				}
			}
		})
	}
	// A cancelled wait returns the last status with the context's error.
	_, cl := serve(t, answer{200, status("a", api.StatusPinning)})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	got, err := cl.Wait(ctx, api.PinStatus{RequestID: "a", Status: api.StatusQueued}, func(api.PinStatus) {
		if n++; n == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || got.Status != api.StatusPinning {
		t.Errorf("cancelled Wait: %s, %v", got.Status, err)
	}
}
