// Package publicnet tells addresses and names on the public internet from
// those that lead into a local network. Everything an outside user hands
// pickup to dial (a pin's origins, a webhook's URL) goes through it, so that
// a request cannot make pickup reach into its own network.
package publicnet

import (
	"net/netip"
	"strings"
)

// Addr reports whether a is a unicast address routed on the public
// internet: not loopback, private, link-local, carrier-grade NAT,
// documentation, benchmarking or reserved. IPv6 addresses that embed an
// IPv4 one (mapped, NAT64, 6to4) are judged by it.
func Addr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 0:
			// 64:ff9b::/96, well-known NAT64: the last four bytes.
			return Addr(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b:
			// 64:ff9b:1::/48, local-use NAT64.
			return false
		case b[0] == 0x20 && b[1] == 0x02:
			// 2002::/16, 6to4: bytes 2 to 5.
			return Addr(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8:
			// 2001:db8::/32, documentation.
			return false
		}
		return true
	}
	b := a.As4()
	switch {
	case b[0] == 0, // "this network"
		b[0] == 100 && b[1]&0xc0 == 64,           // 100.64.0.0/10, carrier-grade NAT
		b[0] == 192 && b[1] == 0 && b[2] == 0,    // 192.0.0.0/24, protocol assignments
		b[0] == 192 && b[1] == 0 && b[2] == 2,    // 192.0.2.0/24, documentation
		b[0] == 198 && b[1]&0xfe == 18,           // 198.18.0.0/15, benchmarking
		b[0] == 198 && b[1] == 51 && b[2] == 100, // 198.51.100.0/24, documentation
		b[0] == 203 && b[1] == 0 && b[2] == 113,  // 203.0.113.0/24, documentation
		b[0] >= 240:                              // 240.0.0.0/4, reserved and broadcast
		return false
	}
	return true
}

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
