package telemetry_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

// An API behind the middleware: every request counted by its route's
// pattern, method and status, timed by route, logged once with its id, and
// answered with that id.
func TestHTTPMiddleware(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewHTTPMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var logs telemetrytest.Buffer
	logger := slog.New(telemetry.NewHandler(slog.NewJSONHandler(&logs, nil)))
	app := http.NewServeMux()
	app.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		// The application's own lines carry the request's id through ctx.
		logger.InfoContext(r.Context(), "looked a thing up", "thing", r.PathValue("id"))
		fmt.Fprintln(w, "a thing")
	})
	app.HandleFunc("POST /things", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	app.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) })
	route := func(r *http.Request) string {
		switch {
		case strings.HasPrefix(r.URL.Path, "/things/"):
			return "/things/{id}"
		case r.URL.Path == "/things":
			return "/things"
		case r.URL.Path == "/broken":
			return "/broken"
		}
		return "other"
	}
	srv := httptest.NewServer(telemetry.NewHTTP(app, route, m, logger))
	defer srv.Close()

	type req struct{ method, path, id string }
	sent := []req{
		{"GET", "/things/1", "client-id-1"},
		{"GET", "/things/2", ""},
		{"GET", "/things/3", "has spaces in it"},
		{"GET", "/things/4", strings.Repeat("x", 129)},
		{"POST", "/things", "ok:id/with+base64="},
		{"POST", "/things", ""},
		{"GET", "/broken", ""},
		{"BREW", "/things/5", ""},
		{"GET", "/nowhere/6", ""},
	}
	ids := map[string]string{} // path+method → the id answered
	for _, s := range sent {
		r, err := http.NewRequest(s.method, srv.URL+s.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.id != "" {
			r.Header.Set("X-Request-Id", s.id)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Request-Id")
		switch {
		case s.id != "" && telemetry.SaneRequestID(s.id) && got != s.id:
			t.Errorf("%s %s with X-Request-Id %q: answered %q, want it kept", s.method, s.path, s.id, got)
		case (s.id == "" || !telemetry.SaneRequestID(s.id)) && (len(got) != 26 || !telemetry.SaneRequestID(got)):
			t.Errorf("%s %s with X-Request-Id %q: answered %q, want a new id of 26 characters", s.method, s.path, s.id, got)
		}
		if _, dup := ids[got]; dup {
			t.Errorf("id %q answered twice", got)
		}
		ids[got] = s.method + " " + s.path
	}

	want := map[string]float64{
		`pickup_http_requests_total{code="200",method="GET",route="/things/{id}"}`:   4,
		`pickup_http_requests_total{code="202",method="POST",route="/things"}`:       2,
		`pickup_http_requests_total{code="500",method="GET",route="/broken"}`:        1,
		`pickup_http_requests_total{code="405",method="other",route="/things/{id}"}`: 1,
		`pickup_http_requests_total{code="404",method="GET",route="other"}`:          1,
		`pickup_http_request_duration_seconds_count{route="/things/{id}"}`:           5,
		`pickup_http_request_duration_seconds_count{route="/things"}`:                2,
		`pickup_http_request_duration_seconds_count{route="/broken"}`:                1,
		`pickup_http_request_duration_seconds_count{route="other"}`:                  1,
	}
	got := telemetrytest.Samples(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && !strings.Contains(k, "_sum{") {
			t.Errorf("unexpected series %s = %v (a label taken from the request?)", k, v)
		}
	}

	// One request line per request, naming its id; the application's
	// line names the same id.
	perID := map[string][]string{}
	for _, l := range logs.Lines(t) {
		id, _ := l["request_id"].(string)
		perID[id] = append(perID[id], l["msg"].(string))
		if l["msg"] == "request" && (l["route"] == nil || l["status"] == nil || l["component"] != "http") {
			t.Errorf("request line %v lacks its route, status or component", l)
		}
	}
	for id, what := range ids {
		msgs := strings.Join(perID[id], ",")
		wantMsgs := "request"
		if strings.HasPrefix(what, "GET /things/") {
			wantMsgs = "looked a thing up,request"
		}
		if msgs != wantMsgs {
			t.Errorf("%s (id %s) logged %q, want %q", what, id, msgs, wantMsgs)
		}
	}
}

func TestSaneRequestID(t *testing.T) {
	for _, c := range []struct {
		id   string
		sane bool
	}{
		{"4744de57-17fb-4df1-8643-a0fab3ccea62", true},
		{"RxQ1xgzPoAMEVzw=", true},
		{"Root=1-5759e988-bd862e3fe1be46a994272793", true},
		{"a", true},
		{strings.Repeat("a", 128), true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{"two words", false},
		{`quote"`, false},
		{"new\nline", false},
		{"semi;colon", false},
		{"ünïcode", false},
	} {
		if got := telemetry.SaneRequestID(c.id); got != c.sane {
			t.Errorf("SaneRequestID(%q) = %v, want %v", c.id, got, c.sane)
		}
	}
}

// Whatever a client sends as X-Request-Id, the id a request goes by is
// sane (it lands on every log line), and it is the client's when that is.
func FuzzRequestIDOf(f *testing.F) {
	for _, s := range []string{"", "abc", "has space", "\x00", strings.Repeat("z", 200), "RxQ1xgzPoAMEVzw="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sent string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["X-Request-Id"] = []string{sent}
		got := telemetry.RequestIDOf(r)
		if !telemetry.SaneRequestID(got) {
			t.Fatalf("RequestIDOf(%q) = %q, not sane", sent, got)
		}
		if telemetry.SaneRequestID(sent) != (got == sent) {
			t.Fatalf("RequestIDOf(%q) = %q: a sane id must be kept, and only a sane one", sent, got)
		}
	})
}

// BenchmarkHTTPMiddleware prints what the middleware adds to a request:
// an id, two metric updates and one JSON log line.
func BenchmarkHTTPMiddleware(b *testing.B) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewHTTPMetrics(reg)
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(telemetry.NewHandler(slog.NewJSONHandler(io.Discard, nil)))
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	route := func(*http.Request) string { return "/pins" }
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", ok}, {"middleware", telemetry.NewHTTP(ok, route, m, logger)}} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/pins", nil)
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
}
