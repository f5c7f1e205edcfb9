package publicnet_test

import (
	"net/netip"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/publicnet"
	"github.com/pickup-ipfs/pickup/tenant"
)

// registry is every block of the IANA IPv4 and IPv6 Special-Purpose
// Address Registries, written out here from the registries themselves (not
// from the package's table), with the verdict its "Globally Reachable"
// column gives ("N/A" is not public), plus the blocks that are not global
// unicast without being listed there. Each is checked at its first and
// last address. The forms that embed an IPv4 address (mapped, NAT64,
// 6to4) are judged by it: TestAddr covers them.
var registry = []struct {
	prefix string
	public bool
}{
	{"0.0.0.0/8", false}, {"0.0.0.0/32", false}, {"10.0.0.0/8", false}, {"100.64.0.0/10", false},
	{"127.0.0.0/8", false}, {"169.254.0.0/16", false}, {"172.16.0.0/12", false},
	{"192.0.0.0/29", false}, {"192.0.0.8/32", false}, {"192.0.0.9/32", true}, {"192.0.0.10/32", true},
	{"192.0.0.170/32", false}, {"192.0.0.171/32", false}, {"192.0.0.0/24", false},
	{"192.0.2.0/24", false}, {"192.31.196.0/24", true}, {"192.52.193.0/24", true}, {"192.88.99.0/24", false},
	{"192.168.0.0/16", false}, {"198.18.0.0/15", false}, {"198.51.100.0/24", false}, {"203.0.113.0/24", false},
	{"240.0.0.0/4", false}, {"255.255.255.255/32", false}, {"224.0.0.0/4", false},

	{"::1/128", false}, {"::/128", false}, {"64:ff9b:1::/48", false}, {"100::/64", false}, {"100:0:0:1::/64", false},
	{"2001::/23", false}, {"2001::/32", false}, {"2001:1::1/128", true}, {"2001:1::2/128", true}, {"2001:1::3/128", true},
	{"2001:2::/48", false}, {"2001:3::/32", true}, {"2001:4:112::/48", true}, {"2001:10::/28", false},
	{"2001:20::/28", true}, {"2001:30::/28", true}, {"2001:db8::/32", false}, {"2620:4f:8000::/48", true},
	{"3fff::/20", false}, {"5f00::/16", false}, {"fc00::/7", false}, {"fe80::/10", false},
	{"::/96", false}, {"::ffff:0:0:0/96", false}, {"fec0::/10", false}, {"ff00::/8", false},
}

func last(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := range b {
		if bit := i * 8; bit+8 > p.Bits() {
			keep := max(p.Bits()-bit, 0)
			b[i] |= byte(0xff >> keep)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestAddrRegistry(t *testing.T) {
	for _, e := range registry {
		p := netip.MustParsePrefix(e.prefix)
		for _, a := range []netip.Addr{p.Addr(), last(p)} {
			if got := publicnet.Addr(a); got != e.public {
				t.Errorf("Addr(%s) in %s = %v, want %v", a, e.prefix, got, e.public)
			}
		}
	}
}

// TestRanges checks the package's table against the registry above: every
// entry of one is in the other, with the same verdict.
func TestRanges(t *testing.T) {
	want := map[string]bool{}
	for _, e := range registry {
		want[netip.MustParsePrefix(e.prefix).String()] = e.public
	}
	seen := map[string]bool{}
	for _, r := range publicnet.Ranges() {
		s := r.Prefix.String()
		seen[s] = true
		if r.Name == "" || r.RFC == "" {
			t.Errorf("%s: no name or RFC", s)
		}
		if r.Embedded > 0 {
			continue // judged by the IPv4 address inside, below
		}
		if pub, ok := want[s]; !ok {
			t.Errorf("%s is in the table but not in the test's registry", s)
		} else if pub != r.Public {
			t.Errorf("%s: table says public %v, registry %v", s, r.Public, pub)
		}
	}
	for _, e := range registry {
		if !seen[netip.MustParsePrefix(e.prefix).String()] {
			t.Errorf("%s is in the registry but not in the table", e.prefix)
		}
	}
	for _, embedding := range []string{"::ffff:0:0/96", "64:ff9b::/96", "2002::/16"} {
		if !seen[netip.MustParsePrefix(embedding).String()] {
			t.Errorf("%s is not in the table", embedding)
		}
	}
}

func TestAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		// Public.
		"8.8.8.8": true, "1.1.1.1": true, "2606:4700::1111": true, "192.0.0.9": true, "2001:1::1": true,
		"223.255.255.255": true, "11.0.0.1": true, "172.32.0.1": true, "2a00:1450::1": true,
		// The usual private ones.
		"127.0.0.1": false, "10.1.1.1": false, "192.168.0.1": false, "172.31.255.255": false, "169.254.1.1": false,
		"100.100.1.1": false, "0.0.0.0": false, "255.255.255.255": false, "224.0.0.1": false, "198.18.0.1": false,
		"::1": false, "::": false, "fe80::1": false, "fe80::1%eth0": false, "fc00::1": false, "fd12:3456::1": false,
		"2001:db8::1": false, "3fff::1": false, "ff02::1": false, "ff0e::1": false,
		// IPv4-mapped (::ffff:0:0/96): the IPv4 address decides.
		"::ffff:10.0.0.1": false, "::ffff:127.0.0.1": false, "::ffff:8.8.8.8": true,
		// IPv4-compatible (::/96), deprecated: never public.
		"::7f00:1": false, "::127.0.0.1": false, "::8.8.8.8": false, "::a00:1": false,
		// IPv4-translated (::ffff:0:0:0/96): never public.
		"::ffff:0:7f00:1": false, "::ffff:0:808:808": false,
		// NAT64: the well-known prefix is judged by the IPv4 address, the
		// local-use one is never public.
		"64:ff9b::808:808": true, "64:ff9b::a00:1": false, "64:ff9b::7f00:1": false, "64:ff9b::c0a8:1": false,
		"64:ff9b:1::1": false, "64:ff9b:1::808:808": false,
		// 6to4 (2002::/16): the IPv4 address in bytes 2 to 5.
		"2002:808:808::1": true, "2002:a00:1::1": false, "2002:7f00:1::1": false, "2002:c0a8:101::1": false,
		"2002:a9fe:101::1": false,
		// Teredo (2001::/32), whatever it embeds.
		"2001:0:4136:e378:8000:63bf:3fff:fdd2": false, "2001::1": false,
		// Site-local (fec0::/10), deprecated.
		"fec0::1": false, "feff::1": false,
		// Outside 2000::/3: reserved by the IETF.
		"4000::1": false, "1::1": false, "e000::1": false, "::2": false,
	} {
		if got := publicnet.Addr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Addr(%s) = %v, want %v", addr, got, want)
		}
	}
	if publicnet.Addr(netip.Addr{}) {
		t.Error("the zero Addr is public")
	}
}

func TestPolicy(t *testing.T) {
	strict, open := publicnet.Policy{}, publicnet.Policy{AllowPrivate: true}
	for _, c := range []struct {
		host         string
		strict, open bool
	}{
		{"8.8.8.8", true, true}, {"127.0.0.1", false, true}, {"::1", false, true}, {"::7f00:1", false, true},
		{"example.com", true, true}, {"localhost", false, true}, {"gateway.internal", false, true}, {"", false, true},
	} {
		if got := strict.Host(c.host); got != c.strict {
			t.Errorf("strict Host(%q) = %v", c.host, got)
		}
		if got := open.Host(c.host); got != c.open {
			t.Errorf("private allowed: Host(%q) = %v", c.host, got)
		}
	}
	if strict.Addr(netip.MustParseAddr("10.0.0.1")) || !open.Addr(netip.MustParseAddr("10.0.0.1")) {
		t.Error("Policy.Addr does not follow AllowPrivate")
	}
}

func TestLocalName(t *testing.T) {
	for name, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "printer.local": true, "db.internal": true, "nas.home.arpa": true,
		"router.lan": true, "intranet": true, "peer.example.com": false, "ipfs.io": false, "node.localhost.example": false,
	} {
		if got := publicnet.LocalName(name); got != want {
			t.Errorf("LocalName(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestWebhookURLs: tenant's check of a webhook's URL keeps to the table.
func TestWebhookURLs(t *testing.T) {
	for _, u := range []string{"https://[::7f00:1]/", "https://[::ffff:0:7f00:1]/", "https://[fec0::1]/", "https://[64:ff9b:1::1]/", "https://[2002:a00:1::1]/"} {
		if _, err := tenant.CheckWebhookURL(u, false); err == nil {
			t.Errorf("webhook %s accepted", u)
		}
	}
	if _, err := tenant.CheckWebhookURL("https://[2606:4700::1111]/hook", false); err != nil {
		t.Errorf("public webhook refused: %v", err)
	}
}

// FuzzAddr checks what Addr promises whatever the address: a public one is
// none of what the standard library calls loopback, private, link-local,
// multicast or unspecified (nor is the IPv4 address it embeds), and an
// IPv6 one is global unicast (2000::/3) or leads to a public IPv4 address.
func FuzzAddr(f *testing.F) {
	for _, s := range []string{"8.8.8.8", "127.0.0.1", "::7f00:1", "::ffff:0:7f00:1", "64:ff9b::808:808", "2002:a00:1::1", "fec0::1", "2606:4700::1111", "2001::1"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	nat64, sixToFour := netip.MustParsePrefix("64:ff9b::/96"), netip.MustParsePrefix("2002::/16")
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok || !publicnet.Addr(a) {
			return
		}
		for _, x := range []netip.Addr{a, a.Unmap()} {
			if x.IsLoopback() || x.IsPrivate() || x.IsLinkLocalUnicast() || x.IsLinkLocalMulticast() || x.IsMulticast() || x.IsUnspecified() || x.IsInterfaceLocalMulticast() {
				t.Fatalf("Addr(%s) is public, but it is %s", a, x)
			}
		}
		if !a.Is6() || a.Is4In6() {
			return
		}
		s := a.As16()
		switch {
		case nat64.Contains(a):
			if !publicnet.Addr(netip.AddrFrom4([4]byte(s[12:16]))) {
				t.Fatalf("NAT64 %s is public, its IPv4 address is not", a)
			}
		case sixToFour.Contains(a):
			if !publicnet.Addr(netip.AddrFrom4([4]byte(s[2:6]))) {
				t.Fatalf("6to4 %s is public, its IPv4 address is not", a)
			}
		case !netip.MustParsePrefix("2000::/3").Contains(a):
			t.Fatalf("%s is public outside 2000::/3", a)
		}
	})
}
