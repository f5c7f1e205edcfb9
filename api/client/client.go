// Package client is a Go client of the IPFS Pinning Service API, as one
// user (one bearer token): add, get, list, replace and remove pins, and
// follow a pin until it is pinned or failed. It speaks to pickup's gateway
// and to any other pinning service; the wire types are package api's.
//
// Every answer other than a success is an *Error with the HTTP status and
// the API's reason and details; errors.Is matches it against ErrBadRequest,
// ErrUnauthorized, ErrNotFound, ErrKeyReused and ErrUnavailable, so that
// callers branch without reading statuses.
//
// A Client is safe for concurrent use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pickup-ipfs/pickup/api"
)

// Defaults of Config, applied by New.
const (
	// DefaultTimeout bounds each request of the http.Client New makes.
	DefaultTimeout = 30 * time.Second
	// DefaultPoll is how often Wait asks for the pin's status. pickup's
	// fetchers report progress every third of their lease (2 s at most);
	// polling faster only shows the same status again.
	DefaultPoll = 500 * time.Millisecond
	// DefaultRetryFor is how long Wait keeps asking through errors that
	// may pass (the gateway restarting, a 5xx) before it gives up.
	DefaultRetryFor = 30 * time.Second
)

// maxAnswer bounds the answer read: a page of 1,000 pins is far less.
const maxAnswer = 64 << 20

// Config says where the API is and who the user is.
type Config struct {
	// BaseURL is the API's root, http:// or https://, with a path prefix if
	// the service has one (the routes are BaseURL+"/pins...").
	BaseURL string
	// Token is the bearer token sent with every request.
	Token string
	// HTTPClient sends the requests; nil means a client like
	// http.DefaultClient with DefaultTimeout.
	HTTPClient *http.Client
	// Poll is how often Wait asks; 0 means DefaultPoll.
	Poll time.Duration
	// RetryFor is how long Wait retries through a run of errors that may
	// pass; 0 means DefaultRetryFor.
	RetryFor time.Duration
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("base URL %q: want an http:// or https:// URL", c.BaseURL)
	}
	switch {
	case c.Token == "":
		return errors.New("no token")
	case strings.ContainsFunc(c.Token, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return errors.New("the token has spaces or characters other than printable ASCII")
	case c.Poll < 0:
		return fmt.Errorf("negative poll interval %v", c.Poll)
	case c.RetryFor < 0:
		return fmt.Errorf("negative retry time %v", c.RetryFor)
	}
	return nil
}

// Client sends requests to a Pinning Service API as one user.
type Client struct {
	base  string
	auth  string
	http  *http.Client
	poll  time.Duration
	retry time.Duration
}

// New returns a client as cfg says, with its defaults applied.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	c := &Client{base: strings.TrimRight(cfg.BaseURL, "/"), auth: "Bearer " + cfg.Token,
		http: cfg.HTTPClient, poll: cfg.Poll, retry: cfg.RetryFor}
	if c.http == nil {
		c.http = &http.Client{Timeout: DefaultTimeout}
	}
	if c.poll == 0 {
		c.poll = DefaultPoll
	}
	if c.retry == 0 {
		c.retry = DefaultRetryFor
	}
	return c, nil
}

// Add asks for p to be pinned (POST /pins) and returns the request's
// status, queued at first. key, when not empty, is sent as the
// Idempotency-Key: a retry with the same key and Pin is answered with the
// first request's status instead of making another, and the same key with
// another Pin is refused (ErrKeyReused).
func (c *Client) Add(ctx context.Context, p api.Pin, key string) (api.PinStatus, error) {
	var ps api.PinStatus
	err := c.do(ctx, http.MethodPost, "/pins", key, p, &ps)
	return ps, err
}

// CARMediaType is the Content-Type of a CAR upload.
const CARMediaType = "application/vnd.ipld.car"

// AddCAR asks for p to be pinned with its DAG sent as a CARv1 (POST
// /pins?cid=... with Content-Type application/vnd.ipld.car, the Pin's
// fields in the query): pickup's CAR upload, for DAGs no one serves. The
// CAR is streamed from car, never held; the service checks it as it would
// a gateway's and stores the canonical CAR whatever its block order. key
// is as Add's: a retry with the same key is answered without the service
// reading the CAR again. The upload is not bound by the client's timeout
// (a CAR may take long to send), only by ctx and the service's own
// deadline on a body that stops coming.
func (c *Client) AddCAR(ctx context.Context, p api.Pin, car io.Reader, key string) (api.PinStatus, error) {
	q := url.Values{"cid": {p.CID}}
	if p.Name != "" {
		q.Set("name", p.Name)
	}
	for _, o := range p.Origins {
		q.Add("origins", o)
	}
	if len(p.Meta) > 0 {
		b, err := json.Marshal(p.Meta)
		if err != nil {
			return api.PinStatus{}, fmt.Errorf("POST /pins (CAR): %w", err)
		}
		q.Set("meta", string(b))
	}
	op := "POST /pins (CAR)"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/pins?"+q.Encode(), car)
	if err != nil {
		return api.PinStatus{}, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", CARMediaType)
	hc := *c.http
	hc.Timeout = 0
	var ps api.PinStatus
	err = c.send(&hc, req, op, key, &ps)
	return ps, err
}

// Replace replaces the pin request id with a new one for p (POST
// /pins/{requestid}) and returns the new request's status: a new request
// id, and the old one is gone. key is as Add's.
func (c *Client) Replace(ctx context.Context, id string, p api.Pin, key string) (api.PinStatus, error) {
	var ps api.PinStatus
	err := c.do(ctx, http.MethodPost, "/pins/"+url.PathEscape(id), key, p, &ps)
	return ps, err
}

// Get returns the status of the pin request id (GET /pins/{requestid});
// ErrNotFound if the user has no such pin, or removed it.
func (c *Client) Get(ctx context.Context, id string) (api.PinStatus, error) {
	var ps api.PinStatus
	err := c.do(ctx, http.MethodGet, "/pins/"+url.PathEscape(id), "", nil, &ps)
	return ps, err
}

// Remove removes the pin request id (DELETE /pins/{requestid}).
func (c *Client) Remove(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/pins/"+url.PathEscape(id), "", nil, nil)
}

// ListOptions are GET /pins's filters. A zero field sends nothing, and the
// service's default holds.
type ListOptions struct {
	// CIDs lists only pins of these CIDs (up to 10).
	CIDs []string
	// Name lists only pins so named, matched as Match says (the spec's
	// default: exact).
	Name  string
	Match api.Match
	// Status lists only pins in these statuses; none means pinned only,
	// as the spec says (api.AllStatuses lists every pin).
	Status []api.Status
	// Before and After list only pins created before or after these times:
	// page with Before set to the oldest Created read.
	Before, After time.Time
	// Limit is the most pins in the page (1 to 1000; the spec's default is
	// 10).
	Limit int
	// Meta lists only pins whose meta has these keys and values.
	Meta map[string]string
}

// Query is o as GET /pins's query parameters.
func (o ListOptions) Query() url.Values {
	q := url.Values{}
	if len(o.CIDs) > 0 {
		q.Set("cid", strings.Join(o.CIDs, ","))
	}
	if o.Name != "" {
		q.Set("name", o.Name)
	}
	if o.Match != "" {
		q.Set("match", string(o.Match))
	}
	if len(o.Status) > 0 {
		s := make([]string, len(o.Status))
		for i, st := range o.Status {
			s[i] = string(st)
		}
		q.Set("status", strings.Join(s, ","))
	}
	if !o.Before.IsZero() {
		q.Set("before", api.FormatTime(o.Before))
	}
	if !o.After.IsZero() {
		q.Set("after", api.FormatTime(o.After))
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if len(o.Meta) > 0 {
		b, err := json.Marshal(o.Meta)
		if err == nil { // a map of strings always encodes
			q.Set("meta", string(b))
		}
	}
	return q
}

// List returns a page of the user's pins that match o, newest first, and
// the count of all that match (GET /pins).
func (c *Client) List(ctx context.Context, o ListOptions) (api.PinResults, error) {
	var res api.PinResults
	path := "/pins"
	if q := o.Query().Encode(); q != "" {
		path += "?" + q
	}
	err := c.do(ctx, http.MethodGet, path, "", nil, &res)
	return res, err
}

// Wait follows the pin ps (as Add or Get returned it) until it is pinned or
// failed, and returns its last status; a failed pin is not an error. It
// calls each, when not nil, with ps and then with the status it read at
// every poll (the same one again after an error it retries), from the
// calling goroutine. It gives up at once on an answer that will not change
// (a 4xx: the pin was removed, the token revoked), after RetryFor of errors
// that may pass (5xx, the network), or when ctx is done; it then returns
// the last status read with the error.
func (c *Client) Wait(ctx context.Context, ps api.PinStatus, each func(api.PinStatus)) (api.PinStatus, error) {
	var failingSince time.Time
	poll := time.NewTimer(c.poll)
	defer poll.Stop()
	for {
		if each != nil {
			each(ps)
		}
		if ps.Status.Final() {
			return ps, nil
		}
		poll.Reset(c.poll)
		select {
		case <-ctx.Done():
			return ps, ctx.Err()
		case <-poll.C:
		}
		next, err := c.Get(ctx, ps.RequestID)
		var ae *Error
		switch {
		case err == nil:
			ps, failingSince = next, time.Time{}
		case ctx.Err() != nil:
			return ps, ctx.Err()
		case errors.As(err, &ae) && ae.Status < 500:
			return ps, err
		case failingSince.IsZero():
			failingSince = time.Now()
		case time.Since(failingSince) > c.retry:
			return ps, fmt.Errorf("wait for %s: %w", ps.RequestID, err)
		}
	}
}

// do sends a request with body as JSON (none when nil) and decodes a
// success into out (when not nil).
func (c *Client) do(ctx context.Context, method, path, key string, body, out any) error {
	op := method + " " + path
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(c.http, req, op, key, out)
}

// send sends req with the client's authorization and key (when not empty)
// and decodes a success into out (when not nil).
func (c *Client) send(hc *http.Client, req *http.Request, op, key string, out any) error {
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s: read the answer: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		return answerError(op, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s: %w: %v", op, ErrBadAnswer, err)
		}
	}
	return nil
}
