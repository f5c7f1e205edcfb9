package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Headers of a webhook's POST.
const (
	// HeaderID carries the delivery id: the same for every attempt of one
	// delivery, different for every other. Receivers deduplicate on it.
	HeaderID = "Pickup-Delivery-Id"
	// HeaderEvent names the event: pinned or failed.
	HeaderEvent = "Pickup-Event"
	// HeaderTimestamp is the time of the attempt, in Unix seconds.
	HeaderTimestamp = "Pickup-Timestamp"
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256>", the HMAC
	// keyed with the webhook's secret over t + "." + body.
	HeaderSignature = "Pickup-Signature"
)

// KeySize is the size of the key webhook secrets are derived from.
const KeySize = 32

// SecretPrefix starts every webhook secret, so that scanners and people
// recognize one when it leaks.
const SecretPrefix = "whsec_"

var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewKey returns a new random key, in hex as PICKUP_WEBHOOK_KEY takes it.
func NewKey() (string, error) {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new webhook key: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ParseKey reads a key written as 64 hex digits.
func ParseKey(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != KeySize {
		return nil, fmt.Errorf("%w: webhook key: want %d hex digits", ErrInvalid, 2*KeySize)
	}
	return b, nil
}

// KeyID is a key's fingerprint, recorded with each webhook so that a
// notifier holding another key refuses to sign instead of signing with a
// secret the receiver does not have. It reveals nothing of the key.
func KeyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("pickup webhook key id"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// Secret returns a webhook's signing secret, derived from the key and the
// webhook's id: the log never holds it, and whoever holds the key (the
// notifier, `pickup webhooks add`) computes it again when needed.
func Secret(key []byte, webhookID uuid.UUID) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("pickup webhook secret\x00"))
	m.Write(webhookID[:])
	return SecretPrefix + strings.ToLower(secretEncoding.EncodeToString(m.Sum(nil)))
}

// Sign returns the signature header of body sent at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Refusals of Verify.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook signature too old or from the future")
)

// Verify checks a signature header as a receiver should: it parses
// "t=...,v1=..." (any number of v1 values; one must match), recomputes the
// HMAC of t + "." + body with the secret, compares in constant time, and
// refuses a timestamp further than tolerance from now, so that a captured
// delivery cannot be replayed later. A receiver also deduplicates on
// Pickup-Delivery-Id: delivery is at least once.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, sigs, err := ParseSignature(header)
	if err != nil {
		return err
	}
	t, _ := strconv.ParseInt(ts, 10, 64)
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s", ErrStale, time.Unix(t, 0).UTC().Format(time.RFC3339))
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrBadSignature
}

// ParseSignature reads a signature header: its timestamp (decimal Unix
// seconds) and its v1 signatures. Unknown keys are ignored, so that later
// schemes can be added beside v1.
func ParseSignature(header string) (ts string, v1 [][]byte, err error) {
	if len(header) > 4096 {
		return "", nil, fmt.Errorf("%w: header longer than 4096 bytes", ErrBadSignature)
	}
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", nil, fmt.Errorf("%w: %q is not key=value", ErrBadSignature, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return "", nil, fmt.Errorf("%w: two timestamps", ErrBadSignature)
			}
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 || strconv.FormatInt(n, 10) != v {
				return "", nil, fmt.Errorf("%w: timestamp %q", ErrBadSignature, v)
			}
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return "", nil, fmt.Errorf("%w: v1 %q is not 64 hex digits", ErrBadSignature, v)
			}
			v1 = append(v1, b)
		}
	}
	if ts == "" || len(v1) == 0 {
		return "", nil, fmt.Errorf("%w: want t=<unix seconds>,v1=<hex>", ErrBadSignature)
	}
	return ts, v1, nil
}
