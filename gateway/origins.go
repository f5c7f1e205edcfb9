package gateway

import (
	"fmt"
	"net/netip"
	"strings"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/pin"
)

// MaxOrigins is the most origins a request may carry, as the spec allows.
const MaxOrigins = pin.MaxOrigins

// parseOrigins checks a request's origins and returns the ones the fetchers
// may dial, as normalised multiaddr strings. Each must parse as a multiaddr
// and end with /p2p/<peer id> (the spec's MUST); at most MaxOrigins, none
// twice. Addresses that lead into a private network (private, loopback,
// link-local, unspecified and other non-public ranges, local DNS names, unix
// sockets) are dropped, not refused, unless allowPrivate: clients such as
// kubo send all their addresses, and a pin request must not make pickup dial
// into its own network.
func parseOrigins(origins []string, allowPrivate bool) ([]string, error) {
	if len(origins) > MaxOrigins {
		return nil, fmt.Errorf("%d origins, at most %d", len(origins), MaxOrigins)
	}
	kept := make([]string, 0, len(origins))
	seen := make(map[string]int, len(origins))
	for i, s := range origins {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("origins[%d] %q is not a multiaddr: %w", i, s, err)
		}
		if _, err := peerOf(m); err != nil {
			return nil, fmt.Errorf("origins[%d] %q: %w", i, s, err)
		}
		norm := m.String()
		if j, ok := seen[norm]; ok {
			return nil, fmt.Errorf("origins[%d] %q repeats origins[%d]", i, s, j)
		}
		seen[norm] = i
		if allowPrivate || dialsOut(m) {
			kept = append(kept, norm)
		}
	}
	return kept, nil
}

// peerOf returns the peer id an origin or delegate ends with.
func peerOf(m ma.Multiaddr) (string, error) {
	if len(m) == 0 || m[len(m)-1].Code() != ma.P_P2P {
		return "", fmt.Errorf("does not end with /p2p/<peer id>")
	}
	return m[len(m)-1].Value(), nil
}

// dialsOut reports whether dialling m reaches beyond the machine's own
// networks. Only the first component is dialled (a relay address dials the
// relay); a bare /p2p/<peer id> dials nothing until routing finds the peer,
// and the fetcher's own dial filter applies then. DNS names are kept unless
// they name the local machine or network: what they resolve to is the
// fetcher's to check when it dials.
func dialsOut(m ma.Multiaddr) bool {
	first := m[0]
	switch first.Code() {
	case ma.P_IP4, ma.P_IP6:
		a, ok := netip.AddrFromSlice(first.RawValue())
		return ok && publicIP(a)
	case ma.P_DNS, ma.P_DNS4, ma.P_DNS6, ma.P_DNSADDR:
		return !localName(first.Value())
	case ma.P_P2P:
		return true
	}
	// unix sockets, zones, and anything else name something local.
	return false
}

// publicIP reports whether a is a unicast address routed on the public
// internet. IPv6 addresses that embed an IPv4 one (NAT64, 6to4) are judged
// by it.
func publicIP(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 0:
			// 64:ff9b::/96, well-known NAT64: the last four bytes.
			return publicIP(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b:
			// 64:ff9b:1::/48, local-use NAT64: anything, so nothing.
			return false
		case b[0] == 0x20 && b[1] == 0x02:
			// 2002::/16, 6to4: bytes 2 to 5.
			return publicIP(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
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

// localName reports whether a DNS name can only mean this machine or its
// local network.
func localName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "localhost" {
		return true
	}
	for _, suffix := range []string{".localhost", ".local", ".internal", ".home.arpa", ".lan"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

func parseMultiaddr(s string) (ma.Multiaddr, error) { return ma.NewMultiaddr(s) }
