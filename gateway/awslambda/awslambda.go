// Package awslambda runs the gateway's http.Handler on AWS Lambda, behind a
// Function URL or an API Gateway HTTP API. Both send events in Lambda's
// payload format 2.0, and both take the same buffered response; a Function
// URL whose invoke mode is RESPONSE_STREAM is served through aws-lambda-go's
// lambdaurl instead. Every request also writes one CloudWatch
// embedded-metric-format line (namespace Pickup, dimensions Deployment, and
// Deployment with Route: Requests, ApiErrors for answers of 500 and over,
// and Latency in milliseconds), the figures a Prometheus scrape shows of a
// gateway elsewhere.
package awslambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/pickup-ipfs/pickup/gateway"
)

// Config says how the handler runs on Lambda.
type Config struct {
	// Deployment is the value of every metric's Deployment dimension.
	// Default "local".
	Deployment string
	// Streaming serves a Function URL in RESPONSE_STREAM invoke mode (through
	// lambdaurl) instead of buffered payload-2.0 events.
	Streaming bool
	// Metrics receives the embedded-metric-format lines; Lambda sends
	// stdout to CloudWatch Logs, which extracts them. nil writes none.
	Metrics io.Writer
	// Now is the clock of metric timestamps; nil means time.Now.
	Now func() time.Time
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if strings.ContainsAny(c.Deployment, "\"\\\n") {
		return fmt.Errorf("awslambda: deployment name %q holds quotes, backslashes or newlines", c.Deployment)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Deployment == "" {
		c.Deployment = "local"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Start serves h on Lambda until the runtime ends the process; it returns
// only if cfg does not validate. Call it when AWS_LAMBDA_RUNTIME_API is set.
func Start(ctx context.Context, h http.Handler, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	h = WithMetrics(h, cfg)
	if cfg.Streaming {
		lambda.StartHandlerFunc(lambdaurl.Wrap(h), lambda.WithContext(ctx))
		return nil
	}
	lambda.StartWithOptions(NewHandler(h), lambda.WithContext(ctx))
	return nil
}

// Handler adapts an http.Handler to payload-2.0 events. It implements
// lambda.Handler.
type Handler struct {
	h http.Handler
}

// NewHandler returns a Handler serving h.
func NewHandler(h http.Handler) *Handler { return &Handler{h: h} }

// Invoke implements lambda.Handler: payload is a payload-2.0 event, the
// result a payload-2.0 response.
func (a *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("decode the Lambda event: %w", err)
	}
	if ev.Version != "2.0" {
		return nil, fmt.Errorf("event in payload format %q; the gateway takes 2.0 (Function URLs, HTTP APIs)", ev.Version)
	}
	resp, err := a.Serve(ctx, ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// Serve answers one payload-2.0 event.
func (a *Handler) Serve(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	r, err := request(ctx, ev)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, r)
	return response(w.Result())
}

// request makes the http.Request an event describes.
func request(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	var body io.Reader = strings.NewReader(ev.Body)
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, fmt.Errorf("decode the event's base64 body: %w", err)
		}
		body = bytes.NewReader(b)
	}
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	target := "https://" + ev.RequestContext.DomainName + path
	if ev.RawQueryString != "" {
		target += "?" + ev.RawQueryString
	}
	r, err := http.NewRequestWithContext(ctx, ev.RequestContext.HTTP.Method, target, body)
	if err != nil {
		return nil, fmt.Errorf("make the request of event %s: %w", ev.RequestContext.RequestID, err)
	}
	for k, v := range ev.Headers {
		r.Header.Add(k, v)
	}
	if len(ev.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	if cl := r.Header.Get("Content-Length"); cl != "" {
		r.ContentLength, _ = strconv.ParseInt(cl, 10, 64)
	}
	r.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	r.RequestURI = path
	// Without an id from the client, the request goes by Lambda's own, the
	// one API Gateway's and Lambda's logs show.
	if r.Header.Get("X-Request-Id") == "" && ev.RequestContext.RequestID != "" {
		r.Header.Set("X-Request-Id", ev.RequestContext.RequestID)
	}
	return r, nil
}

// response makes the payload-2.0 response of an http.Response.
func response(res *http.Response) (events.APIGatewayV2HTTPResponse, error) {
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	out := events.APIGatewayV2HTTPResponse{StatusCode: res.StatusCode, Headers: map[string]string{}}
	for k, v := range res.Header {
		if k == "Set-Cookie" {
			out.Cookies = v
			continue
		}
		out.Headers[k] = strings.Join(v, ",")
	}
	if textual(res.Header.Get("Content-Type")) {
		out.Body = string(body)
	} else if len(body) > 0 {
		out.Body = base64.StdEncoding.EncodeToString(body)
		out.IsBase64Encoded = true
	}
	return out, nil
}

// textual reports whether a body of this type can travel as a JSON string.
func textual(contentType string) bool {
	return strings.HasPrefix(contentType, "text/") || strings.Contains(contentType, "json")
}

// WithMetrics wraps h so that every request writes one embedded-metric-format
// line to cfg.Metrics.
func WithMetrics(h http.Handler, cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	if cfg.Metrics == nil {
		return h
	}
	m := &metrics{next: h, out: cfg.Metrics, deployment: cfg.Deployment, now: cfg.Now}
	return m
}

type metrics struct {
	next       http.Handler
	deployment string
	now        func() time.Time
	mu         sync.Mutex
	out        io.Writer
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	start := m.now()
	m.next.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	m.emit(start, m.now().Sub(start), r, rec.status, rec.Header().Get("X-Request-Id"))
}

// emfLine is one embedded-metric-format record.
type emfLine struct {
	AWS        emfMeta `json:"_aws"`
	Deployment string  `json:"Deployment"`
	// Route is a dimension too: a few fixed values (gateway.Route).
	Route     string  `json:"Route"`
	Requests  int     `json:"Requests"`
	ApiErrors int     `json:"ApiErrors"`
	Latency   float64 `json:"Latency"`
	// Properties, searchable in the logs but not dimensions (their
	// cardinality would cost a metric each).
	Method    string `json:"Method"`
	Status    int    `json:"Status"`
	RequestID string `json:"RequestId,omitempty"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

func (m *metrics) emit(at time.Time, took time.Duration, r *http.Request, status int, requestID string) {
	line := emfLine{
		AWS: emfMeta{Timestamp: at.UnixMilli(), CloudWatchMetrics: []emfDirective{{
			Namespace: "Pickup", Dimensions: [][]string{{"Deployment"}, {"Deployment", "Route"}},
			Metrics: []emfMetric{{Name: "Requests", Unit: "Count"}, {Name: "ApiErrors", Unit: "Count"}, {Name: "Latency", Unit: "Milliseconds"}},
		}}},
		Deployment: m.deployment, Route: gateway.Route(r), Requests: 1,
		Latency: float64(took.Microseconds()) / 1000,
		Method:  r.Method, Status: status, RequestID: requestID,
	}
	if status >= 500 {
		line.ApiErrors = 1
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	b = append(b, '\n')
	m.mu.Lock()
	m.out.Write(b)
	m.mu.Unlock()
}
