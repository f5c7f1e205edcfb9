package gateway

import (
	"fmt"
	"net/netip"

	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/internal/publicnet"
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
		return ok && publicnet.Addr(a)
	case ma.P_DNS, ma.P_DNS4, ma.P_DNS6, ma.P_DNSADDR:
		return !publicnet.LocalName(first.Value())
	case ma.P_P2P:
		return true
	}
	// unix sockets, zones, and anything else name something local.
	return false
}

func parseMultiaddr(s string) (ma.Multiaddr, error) { return ma.NewMultiaddr(s) }

// noDelegatePeer is the peer ipfs-cluster answers name when there are no
// delegates: its shapes key every status by a peer id, and this one, the
// SHA-256 of a fixed phrase, is no node's.
func noDelegatePeer() string {
	h, _ := mh.Sum([]byte("pickup: no delegates"), mh.SHA2_256, -1) // cannot fail for SHA2_256
	return h.B58String()
}
