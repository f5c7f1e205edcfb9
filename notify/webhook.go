package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/internal/publicnet"
	"github.com/pickup-ipfs/pickup/internal/publicnet/publichttp"
	"github.com/pickup-ipfs/pickup/tenant"
)

// WebhookRequest is one attempt of a webhook delivery.
type WebhookRequest struct {
	URL string
	// ID is the delivery id; Event is pinned or failed.
	ID    uuid.UUID
	Event string
	Body  []byte
	// Secret signs the body; Time is the attempt's timestamp.
	Secret string
	Time   time.Time
}

// WebhookClientConfig tunes a WebhookClient.
type WebhookClientConfig struct {
	// AllowPrivate lets deliveries reach loopback, private and link-local
	// addresses, and http URLs to loopback hosts
	// (PICKUP_ALLOW_PRIVATE_WEBHOOKS). Off, such addresses are refused
	// when dialled, even behind a DNS name that resolved to one.
	AllowPrivate bool
	// UserAgent is sent with every request. Default "pickup-webhooks/1".
	UserAgent string
}

// WebhookClient sends webhook deliveries: a POST of the body, signed, with
// no redirects followed (a redirect is a failed attempt) and no proxy,
// through publichttp's client, which checks every address dialled against
// the address policy. It is safe for concurrent use.
type WebhookClient struct {
	cfg    WebhookClientConfig
	client *http.Client
}

// ErrPrivateAddress is the refusal to dial an address of a private
// network (publichttp's, which every outgoing client shares).
var ErrPrivateAddress = publichttp.ErrNotPublic

// NewWebhookClient returns a webhook client.
func NewWebhookClient(cfg WebhookClientConfig) *WebhookClient {
	if cfg.UserAgent == "" {
		cfg.UserAgent = "pickup-webhooks/1"
	}
	// No trusted host: a webhook's URL is a tenant's. The check runs on
	// the address actually dialled, after DNS: a name cannot smuggle the
	// notifier into a private network.
	client := publichttp.New(publichttp.Config{Policy: publicnet.Policy{AllowPrivate: cfg.AllowPrivate}, NoRedirects: true})
	return &WebhookClient{cfg: cfg, client: client}
}

// maxResponse is the most of a receiver's answer read (and thrown away),
// so that the connection can be reused.
const maxResponse = 64 << 10

// Post sends one attempt and returns the receiver's status. The error is
// nil only for a 2xx answer.
func (c *WebhookClient) Post(ctx context.Context, r WebhookRequest) (int, error) {
	u, err := tenant.CheckWebhookURL(r.URL, c.cfg.AllowPrivate)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(r.Body))
	if err != nil {
		return 0, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set(HeaderID, r.ID.String())
	req.Header.Set(HeaderEvent, r.Event)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(r.Time.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(r.Secret, r.Time, r.Body))
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The code and its standard text: the reason phrase is the
		// receiver's words, and attempts are recorded in the log.
		return resp.StatusCode, fmt.Errorf("POST %s: receiver answered %d %s", u.Redacted(), resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return resp.StatusCode, nil
}
