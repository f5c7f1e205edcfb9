// Package publicnet tells addresses and names on the public internet from
// those that lead into a local network. Everything an outside user hands
// pickup to dial (a pin's origins, a webhook's URL, where a gateway
// redirects the fetcher) goes through it, so that a request cannot make
// pickup reach into its own network. Its functions are pure: they never
// resolve or dial. Package publichttp builds the HTTP clients that apply
// them at every redirect and every dial.
package publicnet

import (
	"net/netip"
	"strings"
)

// Policy says which addresses pickup's outgoing connections may reach.
// The zero Policy allows public addresses only.
type Policy struct {
	// AllowPrivate lets connections reach loopback, private, link-local and
	// every other non-public address (PICKUP_ALLOW_PRIVATE_ORIGINS,
	// PICKUP_ALLOW_PRIVATE_WEBHOOKS: tests and single-machine set-ups).
	AllowPrivate bool
}

// Addr reports whether the policy lets a connection reach a.
func (p Policy) Addr(a netip.Addr) bool { return p.AllowPrivate || Addr(a) }

// Host reports whether the policy lets a request name host (a URL's
// Hostname: an IP literal or a DNS name). A name that passes may still
// resolve into a private network: the dial checks the address too.
func (p Policy) Host(host string) bool {
	if p.AllowPrivate {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return Addr(a)
	}
	return host != "" && !LocalName(host)
}

// Range is one entry of the table Addr judges by: a block of the IANA IPv4
// or IPv6 Special-Purpose Address Registry, or another block that is not
// global unicast.
type Range struct {
	Prefix netip.Prefix
	// Name and RFC are the registry's.
	Name, RFC string
	// Public is the registry's "Globally Reachable" (false for "N/A").
	Public bool
	// Embedded is the byte offset of an IPv4 address inside an IPv6 one:
	// such an address is judged by the IPv4 address it leads to. Zero for
	// none.
	Embedded int
}

// Ranges returns the table Addr judges by (as of the registries of
// 2025-06). Where ranges nest, the longest prefix decides. Addresses in
// none of them are public, except IPv6 ones outside 2000::/3, the only
// block IANA allocates global unicast from (RFC 4291, section 2.4).
func Ranges() []Range {
	p := netip.MustParsePrefix
	return []Range{
		// IPv4 Special-Purpose Address Registry.
		{Prefix: p("0.0.0.0/8"), Name: "this network", RFC: "RFC 791"},
		{Prefix: p("0.0.0.0/32"), Name: "this host on this network", RFC: "RFC 1122"},
		{Prefix: p("10.0.0.0/8"), Name: "private-use", RFC: "RFC 1918"},
		{Prefix: p("100.64.0.0/10"), Name: "shared address space (carrier-grade NAT)", RFC: "RFC 6598"},
		{Prefix: p("127.0.0.0/8"), Name: "loopback", RFC: "RFC 1122"},
		{Prefix: p("169.254.0.0/16"), Name: "link local", RFC: "RFC 3927"},
		{Prefix: p("172.16.0.0/12"), Name: "private-use", RFC: "RFC 1918"},
		{Prefix: p("192.0.0.0/24"), Name: "IETF protocol assignments", RFC: "RFC 6890"},
		{Prefix: p("192.0.0.0/29"), Name: "IPv4 service continuity prefix", RFC: "RFC 7335"},
		{Prefix: p("192.0.0.8/32"), Name: "IPv4 dummy address", RFC: "RFC 7600"},
		{Prefix: p("192.0.0.9/32"), Name: "port control protocol anycast", RFC: "RFC 7723", Public: true},
		{Prefix: p("192.0.0.10/32"), Name: "traversal using relays around NAT anycast", RFC: "RFC 8155", Public: true},
		{Prefix: p("192.0.0.170/32"), Name: "NAT64/DNS64 discovery", RFC: "RFC 8880"},
		{Prefix: p("192.0.0.171/32"), Name: "NAT64/DNS64 discovery", RFC: "RFC 8880"},
		{Prefix: p("192.0.2.0/24"), Name: "documentation (TEST-NET-1)", RFC: "RFC 5737"},
		{Prefix: p("192.31.196.0/24"), Name: "AS112-v4", RFC: "RFC 7535", Public: true},
		{Prefix: p("192.52.193.0/24"), Name: "AMT", RFC: "RFC 7450", Public: true},
		{Prefix: p("192.88.99.0/24"), Name: "deprecated 6to4 relay anycast", RFC: "RFC 7526"},
		{Prefix: p("192.168.0.0/16"), Name: "private-use", RFC: "RFC 1918"},
		{Prefix: p("198.18.0.0/15"), Name: "benchmarking", RFC: "RFC 2544"},
		{Prefix: p("198.51.100.0/24"), Name: "documentation (TEST-NET-2)", RFC: "RFC 5737"},
		{Prefix: p("203.0.113.0/24"), Name: "documentation (TEST-NET-3)", RFC: "RFC 5737"},
		{Prefix: p("240.0.0.0/4"), Name: "reserved", RFC: "RFC 1112"},
		{Prefix: p("255.255.255.255/32"), Name: "limited broadcast", RFC: "RFC 919"},
		// Not unicast, so not in the registry.
		{Prefix: p("224.0.0.0/4"), Name: "multicast", RFC: "RFC 5771"},

		// IPv6 Special-Purpose Address Registry.
		{Prefix: p("::1/128"), Name: "loopback", RFC: "RFC 4291"},
		{Prefix: p("::/128"), Name: "unspecified", RFC: "RFC 4291"},
		{Prefix: p("::ffff:0:0/96"), Name: "IPv4-mapped", RFC: "RFC 4291", Embedded: 12},
		{Prefix: p("64:ff9b::/96"), Name: "IPv4-IPv6 translation (well-known NAT64)", RFC: "RFC 6052", Embedded: 12},
		{Prefix: p("64:ff9b:1::/48"), Name: "IPv4-IPv6 translation, local use", RFC: "RFC 8215"},
		{Prefix: p("100::/64"), Name: "discard-only", RFC: "RFC 6666"},
		{Prefix: p("100:0:0:1::/64"), Name: "dummy IPv6 prefix", RFC: "RFC 9780"},
		{Prefix: p("2001::/23"), Name: "IETF protocol assignments", RFC: "RFC 2928"},
		// Teredo hides its client's IPv4 address (inverted) and goes
		// through relays pickup does not choose: never followed.
		{Prefix: p("2001::/32"), Name: "Teredo", RFC: "RFC 4380"},
		{Prefix: p("2001:1::1/128"), Name: "port control protocol anycast", RFC: "RFC 7723", Public: true},
		{Prefix: p("2001:1::2/128"), Name: "traversal using relays around NAT anycast", RFC: "RFC 8155", Public: true},
		{Prefix: p("2001:1::3/128"), Name: "DNS-SD service registration protocol anycast", RFC: "RFC 9665", Public: true},
		{Prefix: p("2001:2::/48"), Name: "benchmarking", RFC: "RFC 5180"},
		{Prefix: p("2001:3::/32"), Name: "AMT", RFC: "RFC 7450", Public: true},
		{Prefix: p("2001:4:112::/48"), Name: "AS112-v6", RFC: "RFC 7535", Public: true},
		{Prefix: p("2001:10::/28"), Name: "deprecated ORCHID", RFC: "RFC 4843"},
		{Prefix: p("2001:20::/28"), Name: "ORCHIDv2", RFC: "RFC 7343", Public: true},
		{Prefix: p("2001:30::/28"), Name: "drone remote ID protocol entity tags", RFC: "RFC 9374", Public: true},
		{Prefix: p("2001:db8::/32"), Name: "documentation", RFC: "RFC 3849"},
		{Prefix: p("2002::/16"), Name: "6to4", RFC: "RFC 3056", Embedded: 2},
		{Prefix: p("2620:4f:8000::/48"), Name: "direct delegation AS112 service", RFC: "RFC 7534", Public: true},
		{Prefix: p("3fff::/20"), Name: "documentation", RFC: "RFC 9637"},
		{Prefix: p("5f00::/16"), Name: "segment routing (SRv6) SIDs", RFC: "RFC 9602"},
		{Prefix: p("fc00::/7"), Name: "unique-local", RFC: "RFC 4193"},
		{Prefix: p("fe80::/10"), Name: "link-local unicast", RFC: "RFC 4291"},
		// Outside 2000::/3, so refused anyway; listed to be named.
		{Prefix: p("::/96"), Name: "IPv4-compatible (deprecated)", RFC: "RFC 4291"},
		{Prefix: p("::ffff:0:0:0/96"), Name: "IPv4-translated (SIIT)", RFC: "RFC 2765"},
		{Prefix: p("fec0::/10"), Name: "site-local (deprecated)", RFC: "RFC 3879"},
		{Prefix: p("ff00::/8"), Name: "multicast", RFC: "RFC 4291"},
	}
}

// globalUnicast6 is the block IANA allocates IPv6 global unicast from.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// Addr reports whether a is a unicast address routed on the public
// internet: in no block of Ranges that the IANA registries do not call
// globally reachable. IPv6 addresses that embed an IPv4 one (mapped,
// NAT64, 6to4) are judged by it; every other IPv6 address outside
// 2000::/3 (IPv4-compatible, IPv4-translated, site-local, ...) is not
// public.
func Addr(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("")
	r, ok := lookup(a)
	if ok && r.Embedded > 0 {
		b := a.As16()
		return Addr(netip.AddrFrom4([4]byte(b[r.Embedded : r.Embedded+4])))
	}
	if ok {
		return r.Public
	}
	return a.Is4() || globalUnicast6.Contains(a)
}

// lookup returns the most specific range holding a.
func lookup(a netip.Addr) (Range, bool) {
	var best Range
	found := false
	for _, r := range ranges {
		if r.Prefix.Contains(a) && (!found || r.Prefix.Bits() > best.Prefix.Bits()) {
			best, found = r, true
		}
	}
	return best, found
}

// ranges is Ranges, built once: Addr runs at every dial.
var ranges = Ranges()

// LocalName reports whether a DNS name can only mean this machine or its
// local network.
func LocalName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "localhost" || !strings.Contains(name, ".") {
		// A single label resolves through the local search domains.
		return true
	}
	for _, suffix := range []string{".localhost", ".local", ".internal", ".home.arpa", ".lan", ".localdomain", ".intranet", ".corp", ".private"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}
