// Package tenant is who may use pickup: tenants and their bearer tokens.
// Tokens are issued and revoked by events in the log, like everything else,
// so that who could act, and since when, is part of the audit trail. The log
// keeps only a token's SHA-256, never the token: whoever reads the log
// cannot act as a tenant.
//
// Each token has a stream of its own, "token-<id>": TokenIssued, then
// perhaps TokenRevoked. The views (package projections) answer which tenant
// a token's hash belongs to.
package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// Event types of a token's stream.
const (
	TypeTokenIssued  = "TokenIssued"
	TypeTokenRevoked = "TokenRevoked"
)

// StreamPrefix starts the name of every token's stream.
const StreamPrefix = "token-"

// SchemaVersion is the version token events are written with.
const SchemaVersion = 1

// Stream returns the name of a token's stream.
func Stream(tokenID uuid.UUID) string { return StreamPrefix + tokenID.String() }

// TokenIDOf returns the token id of a token stream's name.
func TokenIDOf(stream string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(stream, StreamPrefix)
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return id, err == nil
}

// TokenIssued: a bearer token now acts as the tenant.
type TokenIssued struct {
	TokenID uuid.UUID `json:"token_id"`
	Tenant  string    `json:"tenant"`
	// Hash is the hex SHA-256 of the token, as HashToken computes it.
	Hash    string    `json:"hash"`
	Label   string    `json:"label,omitempty"`
	Created time.Time `json:"created"`
}

// TokenRevoked: the token no longer acts as anyone.
type TokenRevoked struct {
	TokenID uuid.UUID `json:"token_id"`
}

// ErrInvalid marks a bad tenant name, label or event.
var ErrInvalid = errors.New("invalid")

// MaxNameLength and MaxLabelLength bound what a token records.
const (
	MaxNameLength  = 64
	MaxLabelLength = 200
)

// ValidateName reports why name cannot name a tenant, or nil. Names are 1 to
// 64 ASCII letters, digits, '.', '_' and '-', starting with a letter or
// digit: they appear in logs, metrics and URLs without escaping.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLength {
		return fmt.Errorf("%w: tenant name %q: want 1 to %d characters", ErrInvalid, name, MaxNameLength)
	}
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '.' && r != '_' && r != '-') {
			return fmt.Errorf("%w: tenant name %q: want letters, digits, '.', '_' and '-', starting with a letter or digit", ErrInvalid, name)
		}
	}
	return nil
}

// TokenPrefix starts every token, so that secret scanners and people
// recognize one when it leaks.
const TokenPrefix = "pickup_"

// tokenEncoding spells a token's random bytes in lower-case letters and
// digits: safe in a header, a shell and a URL.
var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewToken returns a new secret token: TokenPrefix and 32 random bytes (256
// bits of entropy) in base32.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return TokenPrefix + strings.ToLower(tokenEncoding.EncodeToString(b[:])), nil
}

// HashToken returns the SHA-256 of a token, what the log and the views keep.
// The token has 256 bits of entropy, so a plain hash is as strong as a slow
// one and lets the gateway look tokens up by hash.
func HashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// HexHash is HashToken in hex, as TokenIssued records it.
func HexHash(token string) string {
	h := HashToken(token)
	return hex.EncodeToString(h[:])
}

// ParseHash reads a hash as TokenIssued records it.
func ParseHash(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("%w: token hash %q: want 64 hex digits", ErrInvalid, s)
	}
	copy(h[:], b)
	return h, nil
}

// Issue decides on a new token for a tenant: it returns the token, shown
// once, and the event that records its hash.
func Issue(tenant, label string, now time.Time) (string, TokenIssued, error) {
	if err := ValidateName(tenant); err != nil {
		return "", TokenIssued{}, err
	}
	if len(label) > MaxLabelLength || strings.ContainsFunc(label, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", TokenIssued{}, fmt.Errorf("%w: label: want at most %d printable characters", ErrInvalid, MaxLabelLength)
	}
	token, err := NewToken()
	if err != nil {
		return "", TokenIssued{}, err
	}
	return token, TokenIssued{TokenID: uuid.New(), Tenant: tenant, Hash: HexHash(token), Label: label, Created: now.UTC()}, nil
}

// Payload is the body of one of a tenant's events: TokenIssued,
// TokenRevoked, WebhookRegistered or WebhookRemoved.
type Payload interface {
	EventType() string
}

func (TokenIssued) EventType() string       { return TypeTokenIssued }
func (TokenRevoked) EventType() string      { return TypeTokenRevoked }
func (WebhookRegistered) EventType() string { return TypeWebhookRegistered }
func (WebhookRemoved) EventType() string    { return TypeWebhookRemoved }

// codec maps a tenant's payloads to the envelope and back; immutable.
var codec = eventlog.NewCodec[Payload](SchemaVersion, TokenIssued{}, TokenRevoked{}, WebhookRegistered{}, WebhookRemoved{})

// Proposal makes the event to append for one of a tenant's events.
func Proposal(p Payload, id uuid.UUID, meta eventlog.Metadata) (eventlog.Proposed, error) {
	return codec.Propose(p, id, meta)
}

// Decode returns the body of one of a tenant's events (see Proposal); an
// event it cannot read wraps ErrInvalid.
func Decode(e eventlog.Event) (Payload, error) {
	p, err := codec.Decode(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return p, nil
}

// RevocationID is the event id of a token's revocation: revoking twice
// records it once.
func RevocationID(tokenID uuid.UUID) uuid.UUID { return eventlog.DerivedID(tokenID, "revoke") }
