package publicnet_test

import (
	"net/netip"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/publicnet"
)

func TestAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "1.1.1.1": true, "2606:4700::1111": true, "64:ff9b::808:808": true, "2002:808:808::1": true,
		"127.0.0.1": false, "10.1.1.1": false, "192.168.0.1": false, "172.31.255.255": false, "169.254.1.1": false,
		"100.100.1.1": false, "0.0.0.0": false, "255.255.255.255": false, "224.0.0.1": false, "198.18.0.1": false,
		"::1": false, "::": false, "fe80::1": false, "fc00::1": false, "2001:db8::1": false, "::ffff:10.0.0.1": false,
		"64:ff9b::a00:1": false, "64:ff9b:1::1": false, "2002:a00:1::1": false,
	} {
		if got := publicnet.Addr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Addr(%s) = %v, want %v", addr, got, want)
		}
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
