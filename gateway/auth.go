package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// Tokens finds the tenant of an access token. Implementations are safe for
// concurrent use; views.Reader is one.
type Tokens interface {
	// TokenTenant returns the tenant of the token whose SHA-256 is hash, or
	// an error wrapping views.ErrNotFound for an unknown or revoked
	// token.
	TokenTenant(ctx context.Context, hash [32]byte) (string, error)
}

// scheme is how a route expects clients to authenticate: the Pinning
// Service API with bearer tokens, the ipfs-cluster routes with Basic.
// Either is accepted on every route; the scheme decides the challenge sent
// with a 401.
type scheme int

const (
	schemeBearer scheme = iota
	schemeBasic
)

// unauthorized is the 401 with the spec's body and the route's challenge.
func (h *Handler) unauthorized(s scheme) error {
	challenge := fmt.Sprintf("Bearer realm=%q", h.cfg.Realm)
	details := "Access token is missing or invalid"
	if s == schemeBasic {
		challenge = fmt.Sprintf("Basic realm=%q, charset=\"UTF-8\"", h.cfg.Realm)
		// ipfs-cluster's words first, then pickup's reason.
		details = "unauthorized: access denied: the token is missing or invalid, or not the user's " +
			"(Basic credentials are <tenant>:<token>)"
	}
	return &apiError{status: http.StatusUnauthorized, reason: api.ReasonUnauthorized,
		details: details, challenge: challenge}
}

// credentials are what an Authorization header carries: a token, and for
// Basic the tenant name it claims.
type credentials struct {
	token string
	user  string
	basic bool
}

// parseAuthorization reads an Authorization header: `Bearer <token>`, or
// `Basic base64(<tenant>:<token>)`.
func parseAuthorization(h http.Header) (credentials, error) {
	v := h.Values("Authorization")
	if len(v) != 1 {
		return credentials{}, errors.New("want one Authorization header")
	}
	name, cred, ok := strings.Cut(strings.TrimSpace(v[0]), " ")
	cred = strings.TrimLeft(cred, " ")
	if !ok || cred == "" {
		return credentials{}, errors.New("no credentials")
	}
	switch {
	case strings.EqualFold(name, "Bearer"):
		return credentials{token: cred}, nil
	case strings.EqualFold(name, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return credentials{}, fmt.Errorf("basic credentials are not base64: %w", err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok || user == "" || pass == "" {
			return credentials{}, errors.New("basic credentials are not tenant:token")
		}
		return credentials{token: pass, user: user, basic: true}, nil
	}
	return credentials{}, fmt.Errorf("unknown scheme %q", name)
}

// authenticate returns the tenant a request acts for. The token is looked up
// by its SHA-256, so the store's lookup time says nothing about the token;
// a Basic user name is compared with the token's tenant in constant time.
func (h *Handler) authenticate(r *http.Request, s scheme) (string, error) {
	c, err := parseAuthorization(r.Header)
	if err != nil {
		return "", h.unauthorized(s)
	}
	tenant, err := h.tokens.tenant(r.Context(), c.token)
	switch {
	case errors.Is(err, views.ErrNotFound):
		return "", h.unauthorized(s)
	case err != nil:
		return "", fmt.Errorf("authenticate: %w", err)
	case c.basic && subtle.ConstantTimeCompare([]byte(c.user), []byte(tenant)) != 1:
		return "", h.unauthorized(s)
	}
	return tenant, nil
}

// hashToken is how tokens are kept and looked up: their SHA-256.
func hashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// tokenCache remembers tokens' tenants for a while, so that a busy client
// costs the token view one lookup per TTL instead of one per request.
// Unknown tokens are not remembered: a token issued a moment ago works at
// once.
type tokenCache struct {
	lookup Tokens
	ttl    time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[[32]byte]tokenEntry
}

type tokenEntry struct {
	tenant  string
	expires time.Time
}

// maxCachedTokens bounds the cache; past it, the cache starts over.
const maxCachedTokens = 100_000

func (c *tokenCache) tenant(ctx context.Context, token string) (string, error) {
	hash := hashToken(token)
	if c.ttl < 0 {
		return c.lookup.TokenTenant(ctx, hash)
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[hash]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.tenant, nil
	}
	tenant, err := c.lookup.TokenTenant(ctx, hash)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if len(c.entries) >= maxCachedTokens {
		clear(c.entries)
	}
	c.entries[hash] = tokenEntry{tenant: tenant, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return tenant, nil
}
