// Package kubo is a DAG source that asks a kubo node's RPC API for
// `ipfs dag export` (POST /api/v0/dag/export?arg=CID), as
// web3-storage/pickup did, for operators who run kubo. kubo fetches the DAG
// however it can; the dag.Fetcher still verifies every block it sends. Its
// redirects keep to the address policy (package publichttp), and what kubo
// writes (an error's message, a trailer) goes to the fetcher's log, not to
// the pin's failure message.
package kubo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/internal/publicnet"
	"github.com/pickup-ipfs/pickup/internal/publicnet/publichttp"
	"github.com/pickup-ipfs/pickup/pin"
)

// Config configures a kubo source. Zero fields take their defaults.
type Config struct {
	// URL is the RPC API's base URL, e.g. http://127.0.0.1:5001. Its host
	// is reached wherever it is (the operator named it); redirects
	// elsewhere keep to the address policy.
	URL string
	// AllowPrivate lets redirects lead to loopback, private and other
	// non-public addresses (PICKUP_ALLOW_PRIVATE_ORIGINS).
	AllowPrivate bool
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config { return c }

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("kubo RPC URL %q: %w", c.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("kubo RPC URL %q: want http(s)://host:port", c.URL)
	}
	return nil
}

// Source fetches from one kubo node. It is safe for concurrent use.
type Source struct {
	cfg    Config
	base   string
	client *http.Client
}

var _ dag.Source = (*Source)(nil)

// New returns a source for the kubo node cfg names.
func New(cfg Config) (*Source, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// No overall timeout: exports stream for long; the Fetcher bounds
	// stalls and attempts.
	client := publichttp.New(publichttp.Config{Policy: publicnet.Policy{AllowPrivate: cfg.AllowPrivate}, Trusted: cfg.URL})
	return &Source{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), client: client}, nil
}

// Name implements dag.Source.
func (s *Source) Name() string { return "kubo " + s.base }

// Fetch implements dag.Source. The request is sent on the stream's first
// Next.
func (s *Source) Fetch(ctx context.Context, req dag.Request, limits dag.Limits) (dag.Blocks, error) {
	u := s.base + "/api/v0/dag/export?arg=" + url.QueryEscape(req.Root.String()) + "&progress=false"
	return dag.NewCARStream(func(progress func()) (io.ReadCloser, error) {
		return s.open(ctx, u, progress)
	}, limits.MaxBlockBytes), nil
}

func (s *Source) open(ctx context.Context, u string, progress func()) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, dag.FailRequest("kubo request", err)
	}
	progress()
	if resp.StatusCode == http.StatusOK {
		return &trailerCheck{resp: resp}, nil
	}
	defer resp.Body.Close()
	// kubo's RPC errors are JSON: {"Message": ..., "Code": ..., "Type": "error"}.
	var kerr struct{ Message string }
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if json.Unmarshal(body, &kerr) != nil || kerr.Message == "" {
		kerr.Message = strings.TrimSpace(string(body))
	}
	// kubo stats the root before it streams: "block was not found
	// locally (offline): ipld: could not find <cid>".
	detail := resp.Status + ": " + kerr.Message
	if strings.Contains(kerr.Message, "not found") || strings.Contains(kerr.Message, "could not find") {
		return nil, dag.FailDetail(pin.ReasonRootNotFound, detail, "kubo answered %s: it does not have the root", dag.StatusText(resp.StatusCode))
	}
	return nil, dag.FailDetail(pin.ReasonSourcesFailed, detail, "kubo answered %s", dag.StatusText(resp.StatusCode))
}

// trailerCheck turns the end of a stream that kubo says failed (its
// X-Stream-Error trailer) into that error: kubo sends what it has, then
// the reason it stopped.
type trailerCheck struct {
	resp *http.Response
}

func (t *trailerCheck) Read(p []byte) (int, error) {
	n, err := t.resp.Body.Read(p)
	if err == io.EOF {
		if msg := t.resp.Trailer.Get("X-Stream-Error"); msg != "" {
			return n, dag.FailDetail(pin.ReasonMissingBlock, "X-Stream-Error: "+msg, "kubo stopped the export with an X-Stream-Error trailer")
		}
	}
	return n, err
}

func (t *trailerCheck) Close() error { return t.resp.Body.Close() }
