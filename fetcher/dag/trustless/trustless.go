// Package trustless is a DAG source that asks a trustless HTTP gateway
// (the IPFS Trustless Gateway spec) for the whole DAG as one CAR stream:
// GET /ipfs/{cid}?format=car&dag-scope=all with
// Accept: application/vnd.ipld.car;version=1;order=dfs;dups=n. It honours
// 429 and 503 with Retry-After. It trusts the gateway with nothing: the
// dag.Fetcher verifies every block, the gateway's redirects keep to the
// address policy (package publichttp), and nothing the gateway writes (a
// body, a reason phrase, a header) reaches the pin's failure message, which
// names the status only; the rest goes to the fetcher's log.
package trustless

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/internal/publicnet"
	"github.com/pickup-ipfs/pickup/internal/publicnet/publichttp"
	"github.com/pickup-ipfs/pickup/pin"
)

// Accept asks for a CARv1 in depth-first order without duplicates: the
// order the Fetcher verifies as the bytes stream.
const Accept = "application/vnd.ipld.car;version=1;order=dfs;dups=n"

// Config configures a gateway source. Zero fields take their defaults.
type Config struct {
	// URL is the gateway's base URL, e.g. https://trustless-gateway.link.
	// Its host is reached wherever it is (the operator named it); the
	// gateway's redirects elsewhere keep to the address policy.
	URL string
	// AllowPrivate lets redirects lead to loopback, private and other
	// non-public addresses (PICKUP_ALLOW_PRIVATE_ORIGINS).
	AllowPrivate bool
	// Retries is how many times a 429 or 503 answer is retried (3).
	Retries int
	// MaxRetryAfter is the longest Retry-After waited out (1 minute); a
	// longer one fails the source at once. Waits are also kept under the
	// chunk timeout, so that waiting is never taken for a stall.
	MaxRetryAfter time.Duration
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Retries == 0 {
		c.Retries = 3
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = time.Minute
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("trustless gateway URL %q: %w", c.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("trustless gateway URL %q: want http(s)://host", c.URL)
	}
	if c.Retries < 0 || c.MaxRetryAfter < 0 {
		return errors.New("trustless gateway: retries and max retry-after must not be negative")
	}
	return nil
}

// Source fetches from one gateway. It is safe for concurrent use.
type Source struct {
	cfg    Config
	base   string
	client *http.Client
}

var _ dag.Source = (*Source)(nil)

// New returns a source for the gateway cfg names.
func New(cfg Config) (*Source, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// No overall timeout: a CAR of gigabytes streams for long; the Fetcher
	// bounds stalls and attempts.
	client := publichttp.New(publichttp.Config{Policy: publicnet.Policy{AllowPrivate: cfg.AllowPrivate}, Trusted: cfg.URL})
	return &Source{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), client: client}, nil
}

// Name implements dag.Source.
func (s *Source) Name() string { return "gateway " + s.base }

// Fetch implements dag.Source. The request is sent on the stream's first
// Next.
func (s *Source) Fetch(ctx context.Context, req dag.Request, limits dag.Limits) (dag.Blocks, error) {
	u := s.base + "/ipfs/" + req.Root.String() + "?format=car&dag-scope=all"
	return dag.NewCARStream(func(progress func()) (io.ReadCloser, error) {
		return s.open(ctx, u, limits.ChunkTimeout, progress)
	}, limits.MaxBlockBytes), nil
}

func (s *Source) open(ctx context.Context, u string, chunkTimeout time.Duration, progress func()) (io.ReadCloser, error) {
	for try := 0; ; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", Accept)
		resp, err := s.client.Do(req)
		if err != nil {
			return nil, dag.FailRequest("gateway request", err)
		}
		progress()
		switch resp.StatusCode {
		case http.StatusOK:
			if err := checkContentType(resp.Header.Get("Content-Type")); err != nil {
				resp.Body.Close()
				return nil, err
			}
			return &trailerCheck{resp: resp}, nil
		case http.StatusNotFound, http.StatusGone:
			drain(resp)
			return nil, dag.Fail(pin.ReasonRootNotFound, "gateway answered %s", dag.StatusText(resp.StatusCode))
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			wait := retryAfter(resp.Header.Get("Retry-After"), try, time.Now())
			drain(resp)
			limit := min(s.cfg.MaxRetryAfter, chunkTimeout/2)
			switch {
			case try >= s.cfg.Retries:
				return nil, dag.Fail(pin.ReasonSourcesFailed, "gateway answered %s %d times", dag.StatusText(resp.StatusCode), try+1)
			case wait > limit:
				return nil, dag.Fail(pin.ReasonSourcesFailed, "gateway answered %s with Retry-After %s, over the %s this source waits", dag.StatusText(resp.StatusCode), wait, limit)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, context.Cause(ctx)
			case <-t.C:
			}
		default:
			// The body is the gateway's words: for the log, not the tenant.
			snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return nil, dag.FailDetail(pin.ReasonSourcesFailed, resp.Status+": "+string(snippet), "gateway answered %s", dag.StatusText(resp.StatusCode))
		}
	}
}

// checkContentType refuses a CAR the gateway says is not what was asked
// for. Parameters it leaves out are not refused (older gateways omit them):
// the Fetcher's verification catches a wrong order anyway.
func checkContentType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/vnd.ipld.car" {
		return dag.FailDetail(pin.ReasonSourcesFailed, "Content-Type: "+ct, "gateway answered with a Content-Type other than a CAR")
	}
	for k, want := range map[string]string{"version": "1", "order": "dfs", "dups": "n"} {
		if got, ok := params[k]; ok && got != want {
			return dag.FailDetail(pin.ReasonSourcesFailed, "Content-Type: "+ct, "gateway sent a CAR with another %s than the %s=%s asked for", k, k, want)
		}
	}
	return nil
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); without
// one it backs off exponentially from a second.
func retryAfter(h string, try int, now time.Time) time.Duration {
	if secs, err := strconv.ParseInt(strings.TrimSpace(h), 10, 64); err == nil && secs >= 0 {
		// Beyond any wait worth taking; and a Duration would overflow.
		const forever = int64(math.MaxInt64 / int64(time.Second))
		return time.Duration(min(secs, forever)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return time.Second << min(try, 6)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// trailerCheck turns the end of a stream that the gateway says failed (its
// X-Stream-Error trailer, as boxo's gateway sets it) into that error.
type trailerCheck struct {
	resp *http.Response
}

func (t *trailerCheck) Read(p []byte) (int, error) {
	n, err := t.resp.Body.Read(p)
	if err == io.EOF {
		if msg := t.resp.Trailer.Get("X-Stream-Error"); msg != "" {
			return n, dag.FailDetail(pin.ReasonMissingBlock, "X-Stream-Error: "+msg, "gateway stopped the stream with an X-Stream-Error trailer")
		}
	}
	return n, err
}

func (t *trailerCheck) Close() error { return t.resp.Body.Close() }
