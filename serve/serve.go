// Package serve is the serving role: what is pinned, read back from the
// carpark, verified, over HTTP as a trustless gateway (GET and HEAD
// /ipfs/{cid}: raw blocks, CARs, and, when enabled, deserialized UnixFS
// files and directories).
//
// The HTTP side is boxo's gateway handler, from the library: the
// Trustless Gateway spec's formats, parameters, headers and statuses
// (dag-scope, entity-bytes, dups, order, path segments, Etag, X-Ipfs-Roots,
// Cache-Control, 400/404/406/412), its limits (concurrent requests, the
// retrieval timeout, the cap on a deserialized response's DAG), and UnixFS
// through the same backend. What pickup adds is the backend:
//
//   - Blockstore, a read-only blockstore over the carpark: a block is found
//     by the block-location lookup (serve/locate: its CAR, the offset and
//     length of its section), read with one range read, and checked against
//     its CID before a byte of it is handed on. A block is served only from
//     a CAR that a pinned, not removed, pin holds (the views answer which
//     CAR that is for each root); anything else is not found, with no hint
//     of whether another tenant ever pinned it.
//   - the whole DAG of a pinned root, as a CAR in depth-first order without
//     duplicates, is the stored CAR itself, streamed from the carpark and
//     checked block by block as it goes (wholecar.go): byte for byte what
//     the fetcher stored, which is what `ipfs dag export` writes. Every
//     other CAR request is composed by boxo from verified blocks.
//
// A stored block that fails its check is never served: the request fails
// with a 5xx, the damage is logged with its CAR and offset, counted
// (pickup_serve_damaged_blocks_total), and reported for repair as an event
// of the CAR's stream in the log (damage.go).
//
// This package never writes to the carpark, and never decides anything of
// a pin: it reads the lookup, the views and the carpark, and appends only
// its damage reports.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/gateway"
	"github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/serve/locate"
)

// ErrInvalid: a bad configuration; nothing was started.
var ErrInvalid = errors.New("invalid serve configuration")

// Config is the serving role's limits. The zero value of each field takes
// its default (WithDefaults).
type Config struct {
	// MaxRequests is how many requests are served at once; beyond, 429
	// with Retry-After. Default 256.
	MaxRequests int
	// Timeout bounds the wait for a response's first byte and between its
	// writes (504, or a truncated CAR, past it), as boxo's
	// RetrievalTimeout does. Default 30 s.
	Timeout time.Duration
	// MaxDuration bounds a whole request. Default 1 h.
	MaxDuration time.Duration
	// Deserialized serves UnixFS files and directories (and Range requests
	// in them) besides the trustless formats. Default off: pickup serves
	// verifiable responses; a deployment that also wants a web gateway
	// turns it on.
	Deserialized bool
	// MaxDAGBytes caps the DAG of a deserialized response (410 Gone
	// beyond, as rainbow does); the trustless formats are not capped.
	// Default 1 GiB; negative: no cap.
	MaxDAGBytes int64
	// HoldTTL is how long the answer to "which CAR does a pin hold for this
	// root" is kept: a removed root stops being served at most this long
	// after the views take in its removal. Default 1 s.
	HoldTTL time.Duration
}

// WithDefaults returns c with each unset field at its default.
func (c Config) WithDefaults() Config {
	if c.MaxRequests == 0 {
		c.MaxRequests = 256
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = time.Hour
	}
	if c.MaxDAGBytes == 0 {
		c.MaxDAGBytes = 1 << 30
	}
	if c.HoldTTL == 0 {
		c.HoldTTL = time.Second
	}
	return c
}

// Validate reports a configuration that cannot serve.
func (c Config) Validate() error {
	switch {
	case c.MaxRequests < 0:
		return fmt.Errorf("%w: negative MaxRequests %d", ErrInvalid, c.MaxRequests)
	case c.Timeout < 0:
		return fmt.Errorf("%w: negative Timeout %v", ErrInvalid, c.Timeout)
	case c.MaxDuration < 0:
		return fmt.Errorf("%w: negative MaxDuration %v", ErrInvalid, c.MaxDuration)
	case c.HoldTTL < 0:
		return fmt.Errorf("%w: negative HoldTTL %v", ErrInvalid, c.HoldTTL)
	}
	return nil
}

// Locator finds where a block is stored: serve/locate's stores. Locate
// returns every stored copy of the block (none: not an error).
type Locator interface {
	Locate(ctx context.Context, mh multihash.Multihash) ([]locate.Location, error)
}

// Carpark reads stored objects: fetcher/carstore's stores. ReadRange
// reads length bytes from offset (to the end when length < 0), and fails
// with an error for which IsNotFound holds when the object is missing.
type Carpark interface {
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
}

// Pins answers which CAR a pinned, not removed, pin of a root holds: the
// views (projections/views). The root is in canonical form (CIDv1).
type Pins interface {
	CarForRoot(ctx context.Context, canonicalRoot string) (carCID string, ok bool, err error)
}

// Deps are what the serving role reads.
type Deps struct {
	Locator Locator
	Carpark Carpark
	Pins    Pins
	// Reporter, optional, is told of every damaged block found (besides the
	// log line and the metric).
	Reporter Reporter
	// Logger, optional.
	Logger *slog.Logger
	// Metrics, optional: where the role's and boxo's metrics are
	// registered (none when nil).
	Metrics prometheus.Registerer
	// Blockstore, optional, is the blockstore to serve from
	// (NewServingBlockstore over the same Deps), shared with the role's
	// other ways of serving (bitswap, delegated routing); nil: New makes
	// its own.
	Blockstore *Blockstore
	// Handlers, optional, are mounted beside /ipfs/ on the same mux, each
	// at its pattern (net/http.ServeMux's): /routing/v1/ (serve/routing),
	// /ipni/v1/ad/. A pattern that clashes with the gateway's is refused.
	Handlers map[string]http.Handler
}

// NewServingBlockstore returns the checked blockstore over d's carpark
// that New serves from, with damage logged, counted
// (pickup_serve_damaged_blocks_total, registered in d.Metrics) and told to
// d.Reporter: give it to New (Deps.Blockstore) and to the role's other
// servers, so that one hold cache and one damage report serve them all.
func NewServingBlockstore(cfg Config, d Deps) (*Blockstore, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Locator == nil || d.Carpark == nil || d.Pins == nil {
		return nil, fmt.Errorf("%w: a Locator, a Carpark and Pins are needed", ErrInvalid)
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := d.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	damaged := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pickup_serve_damaged_blocks_total",
		Help: "Stored blocks that failed their check against their CID when read; never served.",
	})
	if err := reg.Register(damaged); err != nil {
		return nil, fmt.Errorf("register serve metrics: %w", err)
	}
	return NewBlockstore(d.Locator, d.Carpark, d.Pins, BlockstoreOptions{
		HoldTTL:  cfg.HoldTTL,
		Reporter: reporters{logReporter{logger.With("component", "serve"), damaged}, d.Reporter},
	}), nil
}

// New returns the trustless gateway's HTTP handler: GET and HEAD
// /ipfs/{cid}[/path] as boxo serves them over the carpark, /healthz,
// Deps.Handlers at their patterns, and 404 for everything else (/ipns/
// answers 501: pickup pins CIDs).
func New(cfg Config, d Deps) (http.Handler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Locator == nil || d.Carpark == nil || d.Pins == nil {
		return nil, fmt.Errorf("%w: a Locator, a Carpark and Pins are needed", ErrInvalid)
	}
	reg := d.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	bs := d.Blockstore
	if bs == nil {
		var err error
		if bs, err = NewServingBlockstore(cfg, d); err != nil {
			return nil, err
		}
	}
	blocksBackend, err := gateway.NewBlocksBackend(blockservice.New(bs, nil), gateway.WithPrometheusRegistry(reg))
	if err != nil {
		return nil, fmt.Errorf("gateway backend: %w", err)
	}
	maxDAG := cfg.MaxDAGBytes
	if maxDAG < 0 {
		maxDAG = 0
	}
	gw := gateway.NewHandler(gateway.Config{
		DeserializedResponses:       cfg.Deserialized,
		NoDNSLink:                   true,
		DisableHTMLErrors:           true,
		RetrievalTimeout:            cfg.Timeout,
		MaxConcurrentRequests:       cfg.MaxRequests,
		MaxDeserializedResponseSize: maxDAG,
		MaxRequestDuration:          cfg.MaxDuration,
		MetricsRegistry:             reg,
	}, &backend{BlocksBackend: blocksBackend, blocks: bs})
	mux := http.NewServeMux()
	mux.Handle("/ipfs/", gw)
	mux.HandleFunc("/ipns/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "pickup serves immutable content by CID: /ipns/ is not supported", http.StatusNotImplemented)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	for pattern, h := range d.Handlers {
		if err := mount(mux, pattern, h); err != nil {
			return nil, err
		}
	}
	return mux, nil
}

// mount adds h at pattern, refusing one the mux refuses (it panics).
func mount(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: handler at %q: %v", ErrInvalid, pattern, r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}
