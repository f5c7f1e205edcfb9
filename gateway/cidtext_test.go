package gateway

import (
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"
)

// TestParseCIDRefusesWhitespaceAndControls proves that a CID with any
// whitespace, control or format character, anywhere and in any multibase,
// is refused (Go's base32 and base64 decoders skip CR and LF: "b\nafkrei..."
// decoded before), and that base256emoji, the multibase beyond ASCII, is
// not caught by the rule.
func TestParseCIDRefusesWhitespaceAndControls(t *testing.T) {
	c := cid.MustParse("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	var forms []string
	for _, base := range []multibase.Encoding{multibase.Base32, multibase.Base58BTC, multibase.Base64, multibase.Base64url, multibase.Base16, multibase.Base256Emoji} {
		s, err := c.StringOfBase(base)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseCID(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		forms = append(forms, s)
	}
	v0 := cid.NewCidV0(cid.MustParse("QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN").Hash()).String()
	forms = append(forms, v0)
	for _, bad := range []string{"\n", "\r", "\r\n", "\t", " ", "\v", "\f", "\x00", "\x1b", "\x1b[31m", "\x7f",
		"\u0085", "\u00a0", "\u1680", "\u2000", "\u2028", "\u2029", "\u3000", "\u200b", "\u200e", "\u202e", "\u2066", "\ufeff", "\xff"} {
		for _, s := range forms {
			_, first := cutFirstRune(s)
			for _, in := range []string{bad + s, s + bad, first + bad + s[len(first):], s[:len(s)/2] + bad + s[len(s)/2:]} {
				if _, err := parseCID(in); err == nil {
					t.Errorf("parseCID(%q) accepted", in)
				} else if !strings.Contains(err.Error(), "not a CID") {
					t.Errorf("parseCID(%q): %v", in, err)
				}
			}
		}
	}
}

func cutFirstRune(s string) (rest, first string) {
	for i := range s {
		if i > 0 {
			return s[i:], s[:i]
		}
	}
	return "", s
}
