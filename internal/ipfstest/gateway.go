package ipfstest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/gateway"
	"github.com/prometheus/client_golang/prometheus"
)

// GatewayOptions make a gateway hostile or unreliable.
type GatewayOptions struct {
	// Tamper changes the CARs it sends.
	Tamper Tamper
	// RateLimited answers the first n requests 429 Too Many Requests,
	// with RetryAfter (whole seconds) as Retry-After.
	RateLimited int
	RetryAfter  time.Duration
}

// Gateway is boxo's trustless gateway handler (gateway.NewBlocksBackend
// and gateway.NewHandler, deserialized responses off) on an httptest
// server, serving a blockstore, with the hostile options applied between
// the handler and the client.
type Gateway struct {
	srv      *httptest.Server
	requests atomic.Int64
}

// StartGateway starts a gateway serving bs on loopback.
func StartGateway(bs blockstore.Blockstore, opts GatewayOptions) (*Gateway, error) {
	// Like kubo, answer identity CIDs from the CID: a DAG with inline
	// links cannot be walked otherwise.
	bs = blockstore.NewIdStore(bs)
	backend, err := gateway.NewBlocksBackend(blockservice.New(bs, offline.Exchange(bs)))
	if err != nil {
		return nil, fmt.Errorf("gateway backend: %w", err)
	}
	h := gateway.NewHandler(gateway.Config{
		DeserializedResponses: false,
		// Each gateway its own registry: tests start many in one process.
		MetricsRegistry: prometheus.NewRegistry(),
	}, backend)
	g := &Gateway{}
	var limited atomic.Int64
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.requests.Add(1)
		if limited.Add(1) <= int64(opts.RateLimited) {
			w.Header().Set("Retry-After", strconv.Itoa(int(opts.RetryAfter/time.Second)))
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		if !opts.Tamper.active() {
			h.ServeHTTP(w, r)
			return
		}
		if opts.Tamper.Root.Defined() && strings.HasPrefix(r.URL.Path, "/ipfs/") {
			r = r.Clone(r.Context())
			r.URL.Path = "/ipfs/" + opts.Tamper.Root.String()
		}
		serveTampered(w, r, h, opts.Tamper)
	}))
	return g, nil
}

// NewGateway starts a gateway for a test and closes it when the test ends.
func NewGateway(t testing.TB, bs blockstore.Blockstore, opts GatewayOptions) *Gateway {
	t.Helper()
	g, err := StartGateway(bs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// URL is the gateway's base URL.
func (g *Gateway) URL() string { return g.srv.URL }

// Requests counts the requests it has had.
func (g *Gateway) Requests() int64 { return g.requests.Load() }

// Close stops it, ending open responses (a stalled one included).
func (g *Gateway) Close() {
	g.srv.CloseClientConnections()
	g.srv.Close()
}

// serveTampered runs the honest handler into a pipe and copies its
// response to the client, tampering with the CAR on the way.
func serveTampered(w http.ResponseWriter, r *http.Request, h http.Handler, t Tamper) {
	pr, pw := io.Pipe()
	rec := &pipeResponse{header: make(http.Header), body: pw, status: make(chan int, 1)}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		h.ServeHTTP(rec, r.WithContext(ctx))
		rec.WriteHeader(http.StatusOK)
		pw.Close()
	}()
	status := <-rec.status
	maps.Copy(w.Header(), rec.header)
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	if status != http.StatusOK {
		_, _ = io.Copy(w, pr)
		return
	}
	if err := tamperCAR(ctx, w, pr, t); err != nil {
		// What a gateway does when its stream fails: stop, and let the
		// client see a short CAR.
		cancel()
		_ = pr.CloseWithError(err)
	}
}

// pipeResponse is an http.ResponseWriter that hands the body to a pipe.
type pipeResponse struct {
	header http.Header
	body   *io.PipeWriter
	once   sync.Once
	status chan int
}

func (p *pipeResponse) Header() http.Header { return p.header }

func (p *pipeResponse) WriteHeader(code int) {
	p.once.Do(func() { p.status <- code })
}

func (p *pipeResponse) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.body.Write(b)
}

func (p *pipeResponse) Flush() {}
