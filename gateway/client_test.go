package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
)

// client talks to a gateway on loopback as a tenant would.
type client struct {
	t    testing.TB
	base string
	auth string
}

func bearer(t testing.TB, base, token string) client {
	return client{t: t, base: base, auth: "Bearer " + token}
}

func basic(t testing.TB, base, tenant, token string) client {
	return client{t: t, base: base, auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(tenant+":"+token))}
}

// response is an answer as the client got it.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; headers come in name, value pairs.
func (c client) do(method, path, body string, headers ...string) response {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// want checks the status and decodes the body into v (when not nil).
func (r response) want(t testing.TB, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// wantError checks an error answer: status, reason, and part of details.
func (r response) wantError(t testing.TB, status int, reason, details string) {
	t.Helper()
	var f api.Failure
	r.want(t, status, &f)
	if f.Error.Reason != reason || !strings.Contains(f.Error.Details, details) {
		t.Fatalf("error %+v, want reason %s with details mentioning %q", f.Error, reason, details)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q, want application/json", ct)
	}
}

// newCID returns a fresh dag-pb CID.
func newCID(t testing.TB) cid.Cid {
	t.Helper()
	h, err := mh.Sum([]byte(uuid.NewString()), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagProtobuf, h)
}

// addPin posts a pin and returns its status.
func (c client) addPin(body string) api.PinStatus {
	c.t.Helper()
	var ps api.PinStatus
	c.do(http.MethodPost, "/pins", body).want(c.t, http.StatusAccepted, &ps)
	return ps
}

// setup starts a stack with one tenant, and returns it, its server's URL
// and a client of the tenant.
func setup(t testing.TB, cfg gateway.Config) (*gatewaytest.Stack, string, client) {
	t.Helper()
	s := gatewaytest.New(t, cfg)
	srv := s.Server(t)
	return s, srv.URL, bearer(t, srv.URL, s.Token(t, "alice"))
}

const peerA = "12D3KooWArSKMUUeLk3z2m5LKyb9wGyFL1BtWCT7Gq7Apoo77PUR"

// serveOnce serves one request with h directly.
func serveOnce(t testing.TB, h http.Handler, method, path, body, auth string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}
