package telemetry

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RequestIDHeader carries a request's id, both ways.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds a client's request id: long enough for a UUID, a
// W3C trace id or an AWS request id, short enough to log on every line.
const maxRequestIDLen = 128

// SaneRequestID reports whether a client's request id can be kept: 1 to 128
// characters of letters, digits and - _ . : / + =. Anything else (spaces,
// quotes, control characters, a log line's worth of text) is replaced.
func SaneRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=':
		default:
			return false
		}
	}
	return true
}

// RequestIDOf returns the id a request goes by: the client's X-Request-Id
// if it is sane, otherwise a new random one (26 base32 characters).
func RequestIDOf(r *http.Request) string {
	if id := r.Header.Get(RequestIDHeader); SaneRequestID(id) {
		return id
	}
	return rand.Text()
}

// HTTPMetrics are the figures of an HTTP API.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics makes the HTTP figures and registers them on reg.
func NewHTTPMetrics(reg prometheus.Registerer) (*HTTPMetrics, error) {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pickup_http_requests_total",
			Help: "HTTP requests answered, by route (its pattern, never the raw path), method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pickup_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	if err := register(reg, m.requests, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// HTTP wraps an API's handler: it gives every request an id (kept in the
// request's context for logging, and echoed in X-Request-Id), counts and
// times it by route, and logs one line per request.
type HTTP struct {
	next    http.Handler
	route   func(*http.Request) string
	metrics *HTTPMetrics
	logger  *slog.Logger
}

// NewHTTP returns the middleware around next. route names a request's
// route from a small fixed set (gateway.Route); metrics, nil, counts
// nothing; logger, nil, logs nothing.
func NewHTTP(next http.Handler, route func(*http.Request) string, metrics *HTTPMetrics, logger *slog.Logger) *HTTP {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &HTTP{next: next, route: route, metrics: metrics, logger: logger.With(slog.String("component", "http"))}
}

// ServeHTTP implements http.Handler.
func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := RequestIDOf(r)
	w.Header().Set(RequestIDHeader, id)
	ctx := WithRequestID(r.Context(), id)
	r = r.WithContext(ctx)
	route := h.route(r)
	rec := &statusRecorder{ResponseWriter: w}
	h.next.ServeHTTP(rec, r)
	took := time.Since(start)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	if h.metrics != nil {
		h.metrics.requests.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(status)).Inc()
		h.metrics.duration.WithLabelValues(route).Observe(took.Seconds())
	}
	h.logger.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Int64("bytes", rec.bytes),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000))
}

// methodLabel is the method label of a request: the methods HTTP defines, and
// "other" for anything a client makes up (a label must not take values
// from outside).
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// statusRecorder remembers the status and size of an answer.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the writer underneath
// (flushing, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// register registers every collector, or none.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}
