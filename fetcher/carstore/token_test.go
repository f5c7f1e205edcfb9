package carstore

import (
	"crypto/sha256"
	"errors"
	"testing"
)

// A Checksum survives its trip through the event log: what String writes,
// parseChecksumToken reads back the same.
func TestChecksumTokenRoundTrip(t *testing.T) {
	tok := checksumToken{full: sha256.Sum256([]byte("car")), composite: compositeChecksum([][sha256.Size]byte{sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))})}
	got, err := parseChecksumToken(tok.String())
	if err != nil || got != tok {
		t.Fatalf("parse(%q) = %+v, %v; want %+v", tok.String(), got, err, tok)
	}
}

// Checksums come back from the event log, written by other versions or
// damaged: parsing any string either gives a token that prints back the
// same, or ErrInvalid, and never panics.
func FuzzParseChecksumToken(f *testing.F) {
	tok := checksumToken{full: sha256.Sum256([]byte("car")), composite: compositeChecksum([][sha256.Size]byte{sha256.Sum256(nil)})}
	for _, s := range []string{tok.String(), "", "v1:", "v1::", "v2:00:AA-1", "v1:" + tok.String()[3:70] + ":x-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseChecksumToken(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("parse(%q): %v, not ErrInvalid", s, err)
			}
			return
		}
		if again, err := parseChecksumToken(tok.String()); err != nil || again != tok {
			t.Fatalf("parse(%q) gave %+v, which reads back as %+v, %v", s, tok, again, err)
		}
	})
}
