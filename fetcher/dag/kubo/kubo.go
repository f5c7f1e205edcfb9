// Package kubo is a DAG source that asks a kubo node's RPC API for
// `ipfs dag export` (POST /api/v0/dag/export?arg=CID), as
// web3-storage/pickup did, for operators who run kubo. kubo fetches the DAG
// however it can; the dag.Fetcher still verifies every block it sends.
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
	"github.com/pickup-ipfs/pickup/pin"
)

// Config configures a kubo source. Zero fields take their defaults.
type Config struct {
	// URL is the RPC API's base URL, e.g. http://127.0.0.1:5001.
	URL string
	// Client sends the requests; nil means a client on Go's default
	// transport. Give it no overall timeout: exports stream for long.
	Client *http.Client
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	return c
}

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
	cfg  Config
	base string
}

var _ dag.Source = (*Source)(nil)

// New returns a source for the kubo node cfg names.
func New(cfg Config) (*Source, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Source{cfg: cfg, base: strings.TrimRight(cfg.URL, "/")}, nil
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
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", u, err)
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
	if strings.Contains(kerr.Message, "not found") || strings.Contains(kerr.Message, "could not find") {
		return nil, dag.Fail(pin.ReasonRootNotFound, "kubo answered %s: %s", resp.Status, kerr.Message)
	}
	return nil, dag.Fail(pin.ReasonSourcesFailed, "kubo answered %s: %s", resp.Status, kerr.Message)
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
			return n, dag.Fail(pin.ReasonMissingBlock, "kubo stopped the export: %s", msg)
		}
	}
	return n, err
}

func (t *trailerCheck) Close() error { return t.resp.Body.Close() }
