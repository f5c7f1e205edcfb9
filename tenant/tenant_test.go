package tenant_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/tenant"
)

func TestValidateName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"alice", true}, {"Acme-Corp_2.0", true}, {"7", true}, {strings.Repeat("a", 64), true},
		{"", false}, {strings.Repeat("a", 65), false}, {"-alice", false}, {".hidden", false},
		{"with space", false}, {"ünïcode", false}, {"a/b", false}, {"a\x00b", false},
	} {
		err := tenant.ValidateName(c.name)
		if (err == nil) != c.ok {
			t.Errorf("ValidateName(%q) = %v, want ok %v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, tenant.ErrInvalid) {
			t.Errorf("ValidateName(%q): %v is not ErrInvalid", c.name, err)
		}
	}
}

// Tokens are recognizable, carry 256 bits from the system's random source,
// and never repeat.
func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok, err := tenant.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		body, ok := strings.CutPrefix(tok, tenant.TokenPrefix)
		if !ok || len(body) != 52 || strings.Trim(body, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("token %q: want %s and 52 base32 characters (256 bits)", tok, tenant.TokenPrefix)
		}
		if seen[tok] {
			t.Fatalf("token %q twice", tok)
		}
		seen[tok] = true
	}
}

func TestIssueRecordsOnlyTheHash(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	tok, ev, err := tenant.Issue("alice", "ci runner", now)
	if err != nil {
		t.Fatal(err)
	}
	h := tenant.HashToken(tok)
	if ev.Hash != hex.EncodeToString(h[:]) || ev.Tenant != "alice" || ev.Label != "ci runner" || !ev.Created.Equal(now) || ev.Created.Location() != time.UTC {
		t.Errorf("issued %+v", ev)
	}
	p, err := tenant.Proposal(ev, uuid.New(), eventlog.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(p.Data), tok) || strings.Contains(string(p.Data), strings.TrimPrefix(tok, tenant.TokenPrefix)) {
		t.Errorf("the event holds the token: %s", p.Data)
	}
	back, err := tenant.Decode(eventlog.Event{Stream: tenant.Stream(ev.TokenID), Type: p.Type, Version: p.Version, Data: p.Data})
	if err != nil || back.(tenant.TokenIssued) != ev {
		t.Errorf("decoded %+v, %v; want %+v", back, err, ev)
	}
	if got, err := tenant.ParseHash(ev.Hash); err != nil || got != h {
		t.Errorf("ParseHash: %x %v", got, err)
	}
	for _, bad := range []struct{ tenant, label string }{{"", ""}, {"bad name", ""}, {"ok", "line\nbreak"}, {"ok", strings.Repeat("x", 201)}} {
		if _, _, err := tenant.Issue(bad.tenant, bad.label, now); !errors.Is(err, tenant.ErrInvalid) {
			t.Errorf("Issue(%q, %q): %v, want ErrInvalid", bad.tenant, bad.label, err)
		}
	}
}

func TestStreams(t *testing.T) {
	id := uuid.New()
	if got, ok := tenant.TokenIDOf(tenant.Stream(id)); !ok || got != id {
		t.Errorf("TokenIDOf(Stream(%s)) = %s %v", id, got, ok)
	}
	for _, s := range []string{"pin-" + id.String(), "token-", "token-nope"} {
		if _, ok := tenant.TokenIDOf(s); ok {
			t.Errorf("TokenIDOf(%q) found an id", s)
		}
	}
	if tenant.RevocationID(id) != tenant.RevocationID(id) || tenant.RevocationID(id) == tenant.RevocationID(uuid.New()) {
		t.Error("revocation ids are not derived from the token id alone")
	}
}

// FuzzParseHash: a hash from the log is 64 hex digits, or an error.
func FuzzParseHash(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := tenant.ParseHash(s)
		if err != nil {
			return
		}
		if hex.EncodeToString(h[:]) != strings.ToLower(s) {
			t.Errorf("ParseHash(%q) = %x", s, h)
		}
	})
}

// FuzzValidateName: a valid name is short, ASCII, and safe in a URL.
func FuzzValidateName(f *testing.F) {
	f.Add("alice")
	f.Add("a b")
	f.Fuzz(func(t *testing.T, s string) {
		if tenant.ValidateName(s) != nil {
			return
		}
		if len(s) > tenant.MaxNameLength || strings.ContainsFunc(s, func(r rune) bool { return r > 0x7e || r <= ' ' || r == '/' || r == '%' }) {
			t.Errorf("ValidateName accepted %q", s)
		}
	})
}
