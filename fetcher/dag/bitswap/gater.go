package bitswap

import (
	"net/netip"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/pickup-ipfs/pickup/internal/publicnet"
)

// publicOnly is a connection gater that refuses to dial addresses a
// request could use to make pickup reach into its own network: private,
// loopback, link-local, unspecified, CGNAT and other non-public ranges.
// It sees addresses after DNS resolution, so an origin named by a DNS name
// that resolves to a private address is refused too. (The gateway already
// drops such origins when they are given as IP addresses.) Inbound
// connections are not its concern.
type publicOnly struct{}

func (publicOnly) InterceptPeerDial(peer.ID) bool { return true }

func (publicOnly) InterceptAddrDial(_ peer.ID, a ma.Multiaddr) bool { return dialable(a) }

func (publicOnly) InterceptAccept(network.ConnMultiaddrs) bool { return true }

func (publicOnly) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}

func (publicOnly) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// dialable reports whether an address is one pickup may dial on a
// request's behalf: a public IP address. Addresses with no IP (relays,
// unresolved names) are left to libp2p, which resolves names before it
// asks again with the result.
func dialable(a ma.Multiaddr) bool {
	ip, err := manet.ToIP(a)
	if err != nil {
		return true
	}
	addr, ok := netip.AddrFromSlice(ip)
	return ok && publicnet.Addr(addr)
}
