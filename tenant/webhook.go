package tenant

// Webhooks: a tenant asks to be told when its pins are pinned or fail.
//
// Every registration and removal is an event in one stream, "webhooks":
// WebhookRegistered, then perhaps WebhookRemoved. One stream for every
// tenant, because the notifier needs the whole registry at once (which
// webhooks hear of a pin of tenant T, as of the pin's event), and because
// registrations are rare: appends at the stream's revision make the
// per-tenant limit race-free. The registry is the fold of that stream.
//
// The log never holds a webhook's signing secret: package notify derives
// it from a key kept outside the log (PICKUP_WEBHOOK_KEY) and the webhook
// id, and the event records only a fingerprint of that key, so that a
// notifier started with another key refuses to sign rather than sign
// wrongly. Whoever reads the log cannot forge a delivery.

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/publicnet"
)

// Event types of the webhooks stream.
const (
	TypeWebhookRegistered = "WebhookRegistered"
	TypeWebhookRemoved    = "WebhookRemoved"
)

// WebhooksStream is the stream of every webhook registration and removal.
const WebhooksStream = "webhooks"

// WebhookEvent names what a webhook is told of.
type WebhookEvent string

const (
	// WebhookPinned: a pin of the tenant is pinned (CarValidated).
	WebhookPinned WebhookEvent = "pinned"
	// WebhookFailed: a pin of the tenant failed for good (DeadLettered).
	WebhookFailed WebhookEvent = "failed"
)

// WebhookEvents returns every event a webhook can ask for.
func WebhookEvents() []WebhookEvent { return []WebhookEvent{WebhookPinned, WebhookFailed} }

// ParseWebhookEvents reads a list such as "pinned,failed". Empty means
// every event.
func ParseWebhookEvents(s string) ([]WebhookEvent, error) {
	var out []WebhookEvent
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		e := WebhookEvent(part)
		if !slices.Contains(WebhookEvents(), e) {
			return nil, fmt.Errorf("%w: webhook event %q: want pinned or failed", ErrInvalid, part)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return slices.Clone(WebhookEvents()), nil
	}
	return out, nil
}

// WebhookRegistered: the tenant's pins' events go to URL from now on.
type WebhookRegistered struct {
	WebhookID uuid.UUID      `json:"webhook_id"`
	Tenant    string         `json:"tenant"`
	URL       string         `json:"url"`
	Events    []WebhookEvent `json:"events"`
	// KeyID is the fingerprint of the key the signing secret is derived
	// from (notify.KeyID), never the key or the secret.
	KeyID   string    `json:"key_id"`
	Created time.Time `json:"created"`
}

// Wants reports whether the webhook asked for event e.
func (w WebhookRegistered) Wants(e WebhookEvent) bool { return slices.Contains(w.Events, e) }

// WebhookRemoved: the webhook hears of nothing more; deliveries still
// pending for it are abandoned.
type WebhookRemoved struct {
	WebhookID uuid.UUID `json:"webhook_id"`
	Tenant    string    `json:"tenant"`
}

// ErrNoWebhook is the refusal to remove a webhook that is not registered.
var ErrNoWebhook = errors.New("no such webhook")

// Limits on what a registration records.
const (
	// MaxWebhooksPerTenant bounds the fan-out of one pin's event.
	MaxWebhooksPerTenant = 10
	// MaxWebhookURL is the longest URL accepted.
	MaxWebhookURL = 2048
)

// Webhooks is the registry: the fold of the webhooks stream. Its zero value
// is the empty registry. It is not safe for concurrent use.
type Webhooks struct {
	// Exists is false until the stream's first event; Revision is then the
	// revision of the last event folded.
	Exists   bool
	Revision uint64
	active   map[uuid.UUID]WebhookRegistered
}

// Expected is what an append to the webhooks stream must expect: the
// registry the decision was made on.
func (w *Webhooks) Expected() eventlog.Expected { return eventlog.ExpectedAfter(w.Revision, w.Exists) }

// Apply folds one more event of the webhooks stream.
func (w *Webhooks) Apply(e eventlog.Event) error {
	p, err := Decode(e)
	if err != nil {
		return err
	}
	w.With(p)
	w.Exists, w.Revision = true, e.Revision
	return nil
}

// With folds a WebhookRegistered or WebhookRemoved without its envelope.
func (w *Webhooks) With(p any) {
	switch p := p.(type) {
	case WebhookRegistered:
		if w.active == nil {
			w.active = make(map[uuid.UUID]WebhookRegistered)
		}
		p.Events = slices.Clone(p.Events)
		w.active[p.WebhookID] = p
	case WebhookRemoved:
		delete(w.active, p.WebhookID)
	}
}

// Get returns a registered webhook.
func (w *Webhooks) Get(id uuid.UUID) (WebhookRegistered, bool) {
	r, ok := w.active[id]
	return r, ok
}

// Len is the number of webhooks registered.
func (w *Webhooks) Len() int { return len(w.active) }

// List returns the webhooks of a tenant ("" for every tenant), oldest
// first.
func (w *Webhooks) List(tenant string) []WebhookRegistered {
	var out []WebhookRegistered
	for _, r := range w.active {
		if tenant == "" || r.Tenant == tenant {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b WebhookRegistered) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.WebhookID.String(), b.WebhookID.String()))
	})
	return out
}

// For returns the webhooks of tenant that asked for event e, in a fixed
// order.
func (w *Webhooks) For(tenant string, e WebhookEvent) []WebhookRegistered {
	var out []WebhookRegistered
	for _, r := range w.List(tenant) {
		if r.Wants(e) {
			out = append(out, r)
		}
	}
	return out
}

// Register decides on a new webhook for tenant: the URL must pass
// CheckWebhookURL, and the tenant may have at most MaxWebhooksPerTenant.
// keyID is the fingerprint of the signing key (notify.KeyID).
func (w *Webhooks) Register(tenant, rawURL string, events []WebhookEvent, keyID string, allowPrivate bool, now time.Time) (WebhookRegistered, error) {
	if err := ValidateName(tenant); err != nil {
		return WebhookRegistered{}, err
	}
	u, err := CheckWebhookURL(rawURL, allowPrivate)
	if err != nil {
		return WebhookRegistered{}, err
	}
	if len(events) == 0 {
		events = WebhookEvents()
	}
	for _, e := range events {
		if !slices.Contains(WebhookEvents(), e) {
			return WebhookRegistered{}, fmt.Errorf("%w: webhook event %q: want pinned or failed", ErrInvalid, e)
		}
	}
	if keyID == "" {
		return WebhookRegistered{}, fmt.Errorf("%w: webhook without a signing key id", ErrInvalid)
	}
	if n := len(w.List(tenant)); n >= MaxWebhooksPerTenant {
		return WebhookRegistered{}, fmt.Errorf("%w: tenant %s has %d webhooks, the most allowed", ErrInvalid, tenant, n)
	}
	return WebhookRegistered{WebhookID: uuid.New(), Tenant: tenant, URL: u.String(), Events: slices.Clone(events), KeyID: keyID, Created: now.UTC()}, nil
}

// Remove decides on removing a webhook.
func (w *Webhooks) Remove(id uuid.UUID) (WebhookRemoved, error) {
	r, ok := w.active[id]
	if !ok {
		return WebhookRemoved{}, fmt.Errorf("remove webhook %s: %w", id, ErrNoWebhook)
	}
	return WebhookRemoved{WebhookID: id, Tenant: r.Tenant}, nil
}

// WebhookRemovalID is the event id of a webhook's removal: removing twice
// records it once.
func WebhookRemovalID(webhookID uuid.UUID) uuid.UUID {
	return eventlog.DerivedID(webhookID, "remove webhook")
}

// FoldWebhooks returns the registry from the webhooks stream's events.
func FoldWebhooks(events []eventlog.Event) (Webhooks, error) {
	var w Webhooks
	for _, e := range events {
		if err := w.Apply(e); err != nil {
			return w, err
		}
	}
	return w, nil
}

// CheckWebhookURL reports why a URL cannot receive webhooks, or returns it
// parsed. A webhook URL is https, with a host, no user or password and no
// fragment, at most MaxWebhookURL bytes. Its host must not name the
// machine or a private network: loopback, private, link-local and other
// non-public addresses, and local names (localhost, *.local, *.internal,
// ...), are refused, unless allowPrivate, which also lets http through to
// loopback hosts only (for tests and single-machine set-ups). A DNS name
// can still resolve to a private address: the notifier checks each address
// it dials as well.
func CheckWebhookURL(raw string, allowPrivate bool) (*url.URL, error) {
	bad := func(why string) (*url.URL, error) {
		return nil, fmt.Errorf("%w: webhook URL %q: %s", ErrInvalid, raw, why)
	}
	if len(raw) > MaxWebhookURL {
		return nil, fmt.Errorf("%w: webhook URL longer than %d bytes", ErrInvalid, MaxWebhookURL)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= 0x20 || r == 0x7f }) {
		return bad("holds a space or control character")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("does not parse")
	}
	host := u.Hostname()
	switch {
	case !u.IsAbs() || u.Opaque != "":
		return bad("want an absolute https:// URL")
	case u.User != nil:
		return bad("user and password do not belong in the URL: the signature authenticates pickup")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("has a fragment")
	case host == "":
		return bad("has no host")
	}
	if p := u.Port(); p != "" {
		if _, err := netip.ParseAddrPort("127.0.0.1:" + p); err != nil || p == "0" {
			return bad("bad port")
		}
	}
	addr, isIP := hostAddr(host)
	loopback := isIP && addr.IsLoopback() || !isIP && isLocalhost(host)
	switch u.Scheme {
	case "https":
	case "http":
		if !allowPrivate || !loopback {
			return bad("want https (http only to a loopback host, when private webhooks are allowed)")
		}
	default:
		return bad("want https")
	}
	if !allowPrivate {
		if isIP && !publicnet.Addr(addr) {
			return bad("the host is a private, loopback or otherwise non-public address")
		}
		if !isIP && publicnet.LocalName(host) {
			return bad("the host names this machine or a local network")
		}
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return u, nil
}

// hostAddr reads host as an IP address, when it is one.
func hostAddr(host string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), true
	}
	// net.ParseIP also reads forms netip refuses on purpose, such as
	// "::ffff:1.2.3.4" zones; anything it reads is an address all the same.
	if ip := net.ParseIP(host); ip != nil {
		a, ok := netip.AddrFromSlice(ip)
		return a.Unmap(), ok
	}
	return netip.Addr{}, false
}

func isLocalhost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}
