package notify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/notify"
)

// The signature is what README.md documents: HMAC-SHA256 keyed with the
// secret over t + "." + body, in hex, as "t=<unix>,v1=<hex>". A receiver
// in any language computes it from that description.
func TestSignatureIsTheDocumentedHMAC(t *testing.T) {
	at := time.Unix(1767225600, 0)
	body := []byte(`{"id":"x","event":"pinned"}`)
	m := hmac.New(sha256.New, []byte("whsec_test"))
	m.Write([]byte("1767225600." + string(body)))
	want := "t=1767225600,v1=" + hex.EncodeToString(m.Sum(nil))
	if got := notify.Sign("whsec_test", at, body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1767225600, 0)
	body := []byte(`{"id":"x"}`)
	good := notify.Sign("s1", now, body)
	other := notify.Sign("s2", now, body)
	for _, c := range []struct {
		name, secret, header string
		body                 []byte
		want                 error
	}{
		{"good", "s1", good, body, nil},
		{"good among several v1 (secret rotation)", "s1", other + "," + good[strings.Index(good, "v1="):], body, nil},
		{"unknown schemes are ignored", "s1", good + ",v0=abc", body, nil},
		{"another secret", "s2", good, body, notify.ErrBadSignature},
		{"body changed", "s1", good, []byte(`{"id":"y"}`), notify.ErrBadSignature},
		{"timestamp changed", "s1", strings.Replace(good, "t=1767225600", "t=1767225601", 1), body, notify.ErrBadSignature},
		{"too old", "s1", notify.Sign("s1", now.Add(-6*time.Minute), body), body, notify.ErrStale},
		{"from the future", "s1", notify.Sign("s1", now.Add(6*time.Minute), body), body, notify.ErrStale},
		{"empty", "s1", "", body, notify.ErrBadSignature},
		{"no timestamp", "s1", good[strings.Index(good, "v1="):], body, notify.ErrBadSignature},
		{"no v1", "s1", "t=1767225600", body, notify.ErrBadSignature},
		{"two timestamps", "s1", "t=1767225600," + good, body, notify.ErrBadSignature},
		{"short v1", "s1", "t=1767225600,v1=abcd", body, notify.ErrBadSignature},
		{"signed timestamp", "s1", strings.Replace(good, "t=", "t=+", 1), body, notify.ErrBadSignature},
	} {
		err := notify.Verify(c.secret, c.header, c.body, now, 5*time.Minute)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

// Receivers parse the header from the outside world: it never panics, and
// what it accepts round-trips.
func FuzzParseSignature(f *testing.F) {
	f.Add(notify.Sign("s", time.Unix(1767225600, 0), []byte("{}")))
	f.Add("t=1,v1=00")
	f.Add("t=,v1=")
	f.Add(",,,=")
	f.Fuzz(func(t *testing.T, header string) {
		ts, sigs, err := notify.ParseSignature(header)
		if err != nil {
			return
		}
		n, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil || n < 0 || len(sigs) == 0 {
			t.Fatalf("accepted %q: ts %q, %d signatures", header, ts, len(sigs))
		}
		for _, s := range sigs {
			if len(s) != sha256.Size {
				t.Fatalf("accepted %q: a %d-byte signature", header, len(s))
			}
		}
	})
}

// Secrets are derived: the same for the same key and webhook, different
// for any other, recognizable, and never the key itself.
func TestSecretsAreDerivedPerWebhook(t *testing.T) {
	k1 := testKey
	k2, err := notify.ParseKey(strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	w1, w2 := uuid.New(), uuid.New()
	s := notify.Secret(k1, w1)
	if s != notify.Secret(k1, w1) {
		t.Error("the same key and webhook gave two secrets")
	}
	if s == notify.Secret(k1, w2) || s == notify.Secret(k2, w1) {
		t.Error("another webhook or key gave the same secret")
	}
	if !strings.HasPrefix(s, notify.SecretPrefix) || len(s) < len(notify.SecretPrefix)+50 || strings.Contains(s, hex.EncodeToString(k1)) {
		t.Errorf("secret %q", s)
	}
	if notify.KeyID(k1) == notify.KeyID(k2) || len(notify.KeyID(k1)) != 16 {
		t.Errorf("key ids %s, %s", notify.KeyID(k1), notify.KeyID(k2))
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32), strings.Repeat("ab", 31), strings.Repeat("ab", 33)} {
		if _, err := notify.ParseKey(bad); !errors.Is(err, notify.ErrInvalid) {
			t.Errorf("ParseKey(%q) = %v", bad, err)
		}
	}
	k, err := notify.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notify.ParseKey(k); err != nil {
		t.Errorf("NewKey gave %q: %v", k, err)
	}
}
