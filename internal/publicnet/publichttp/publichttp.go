// Package publichttp builds the HTTP clients pickup sends its outgoing
// requests with (to trustless gateways, a kubo RPC API, webhooks), so that
// one address policy (publicnet.Policy) holds at every redirect and every
// dial: a remote cannot redirect pickup, nor a name resolve it, into a
// network the policy keeps it out of.
package publichttp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/pickup-ipfs/pickup/internal/publicnet"
)

// MaxRedirects is how many redirects a client follows in one request: 3.
// A trustless gateway or an RPC API answers where it is asked; what
// redirects there are in front of one are a scheme upgrade (http to
// https), a move to a subdomain gateway, and a CDN's own hop. More than
// that is a loop or a detour, and every hop is a chance to aim the fetcher
// somewhere else.
const MaxRedirects = 3

// Refusals, wrapped in the errors a client's Do returns.
var (
	// ErrNotPublic refuses a redirect to, or a dial of, an address the
	// policy keeps pickup out of.
	ErrNotPublic = errors.New("address is not public")
	// ErrRedirect refuses a redirect that is not http(s), or one hop too
	// many.
	ErrRedirect = errors.New("redirect refused")
)

// Config configures a client. The zero Config allows public addresses
// only and follows up to MaxRedirects redirects.
type Config struct {
	// Policy is what the client may reach.
	Policy publicnet.Policy
	// Trusted is a base URL the operator configured (a gateway, a kubo RPC
	// API): its host and port are reached whatever the policy says of their
	// addresses, as an operator may run either on loopback or in a private
	// network. Redirects elsewhere still keep to the policy. Empty for
	// none: a webhook's URL is a tenant's, not the operator's.
	Trusted string
	// NoRedirects returns a redirect as the answer instead of following it
	// (a webhook's receiver must answer itself).
	NoRedirects bool
}

// New returns a client that keeps to cfg: no proxy (the dial must reach
// the address that was checked), a redirect checked by CheckRedirect, and
// every address dialled checked by Control, after DNS. It sets no overall
// timeout: CAR exports stream for hours, and callers bound their requests
// with contexts. It is safe for concurrent use.
func New(cfg Config) *http.Client {
	trusted := hostPort(cfg.Trusted)
	checked := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: Control(cfg.Policy)}
	plain := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// The transport dials the URL's host and port, before DNS.
			if trusted != "" && strings.EqualFold(addr, trusted) {
				return plain.DialContext(ctx, network, addr)
			}
			return checked.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: transport, CheckRedirect: CheckRedirect(cfg)}
}

// CheckRedirect returns the redirect check of a client configured by cfg,
// a pure function of the request it is given: a hop must be http or https,
// to the trusted host or to a host the policy allows, and within
// MaxRedirects of the first request. A name the policy allows is checked
// again by Control once resolved.
func CheckRedirect(cfg Config) func(req *http.Request, via []*http.Request) error {
	trusted := hostPort(cfg.Trusted)
	return func(req *http.Request, via []*http.Request) error {
		if cfg.NoRedirects {
			return http.ErrUseLastResponse
		}
		u := req.URL
		switch {
		case len(via) > MaxRedirects:
			return fmt.Errorf("%w: more than %d redirects", ErrRedirect, MaxRedirects)
		case u.Scheme != "http" && u.Scheme != "https":
			return fmt.Errorf("%w: scheme %q", ErrRedirect, u.Scheme)
		case trusted != "" && strings.EqualFold(hostPort(u.String()), trusted):
			return nil
		case !cfg.Policy.Host(u.Hostname()):
			return fmt.Errorf("redirect to %s: %w", u.Hostname(), ErrNotPublic)
		}
		return nil
	}
}

// Control returns a net.Dialer's Control for policy: it refuses to dial an
// address the policy does not allow. It sees the address actually dialled
// (an IP and a port, after DNS), so that a name cannot smuggle a request
// into a private network.
func Control(policy publicnet.Policy) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !policy.Addr(ap.Addr()) {
			return fmt.Errorf("dial %s: %w", address, ErrNotPublic)
		}
		return nil
	}
}

// hostPort is the host and port a URL's requests dial, as http.Transport
// names them to DialContext; "" for none.
func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
