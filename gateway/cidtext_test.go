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

// TestOriginsInEmbeddedIPv4Forms proves that origins at the IPv6 forms that
// lead to loopback or a local network (IPv4-compatible, IPv4-translated,
// site-local, unique-local, NAT64 of a private address, 6to4 of one) are
// dropped with private origins off, as publicnet's table says.
func TestOriginsInEmbeddedIPv4Forms(t *testing.T) {
	const peer = "12D3KooWArSKMUUeLk3z2m5LKyb9wGyFL1BtWCT7Gq7Apoo77PUR"
	var private []string
	for _, ip := range []string{"::7f00:1", "::a00:1", "::ffff:0:7f00:1", "fec0::1", "fd00::1", "64:ff9b::a00:1", "2002:c0a8:101::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"} {
		private = append(private, "/ip6/"+ip+"/tcp/4001/p2p/"+peer)
	}
	kept, err := parseOrigins(private, false)
	if err != nil || len(kept) != 0 {
		t.Fatalf("kept %q (%v), want none", kept, err)
	}
	if kept, err := parseOrigins(private, true); err != nil || len(kept) != len(private) {
		t.Fatalf("private origins allowed: kept %q (%v)", kept, err)
	}
	if kept, err := parseOrigins([]string{"/ip6/2606:4700::1111/tcp/4001/p2p/" + peer, "/ip6/64:ff9b::808:808/tcp/1/p2p/" + peer}, false); err != nil || len(kept) != 2 {
		t.Fatalf("public origins: kept %q (%v)", kept, err)
	}
}
