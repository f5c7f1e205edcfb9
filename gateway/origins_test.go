package gateway

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

const (
	peerA = "12D3KooWArSKMUUeLk3z2m5LKyb9wGyFL1BtWCT7Gq7Apoo77PUR"
	peerB = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
)

func TestParseOrigins(t *testing.T) {
	public := "/ip4/8.8.8.8/tcp/4001/p2p/" + peerA
	many := make([]string, MaxOrigins+1)
	for i := range many {
		many[i] = fmt.Sprintf("/ip4/8.8.8.%d/tcp/4001/p2p/%s", i+1, peerA)
	}
	for _, tc := range []struct {
		name    string
		in      []string
		private bool
		want    []string // kept, when the input is accepted
		problem string   // part of the refusal's message
	}{
		{"none", nil, false, []string{}, ""},
		{"public ip4", []string{public}, false, []string{public}, ""},
		{"public ip6 quic", []string{"/ip6/2606:4700::1111/udp/4001/quic-v1/p2p/" + peerA}, false, []string{"/ip6/2606:4700::1111/udp/4001/quic-v1/p2p/" + peerA}, ""},
		{"dns name", []string{"/dns4/example.com/tcp/443/wss/p2p/" + peerB}, false, []string{"/dns4/example.com/tcp/443/wss/p2p/" + peerB}, ""},
		{"bare peer id", []string{"/p2p/" + peerA}, false, []string{"/p2p/" + peerA}, ""},
		{"relay through a public relay", []string{"/ip4/8.8.4.4/tcp/4001/p2p/" + peerB + "/p2p-circuit/p2p/" + peerA}, false,
			[]string{"/ip4/8.8.4.4/tcp/4001/p2p/" + peerB + "/p2p-circuit/p2p/" + peerA}, ""},
		{"ipfs alias normalised to p2p", []string{"/ip4/8.8.8.8/tcp/4001/ipfs/" + peerA}, false, []string{public}, ""},
		{"ip4 private, loopback, link-local, unspecified and special ranges dropped", []string{
			"/ip4/10.1.2.3/tcp/4001/p2p/" + peerA,
			"/ip4/192.168.1.1/tcp/4001/p2p/" + peerA,
			"/ip4/172.16.0.1/tcp/4001/p2p/" + peerA,
			"/ip4/127.0.0.1/tcp/4001/p2p/" + peerA,
			"/ip4/169.254.169.254/tcp/80/p2p/" + peerA,
			"/ip4/0.0.0.0/tcp/4001/p2p/" + peerA,
			"/ip4/100.64.0.1/tcp/4001/p2p/" + peerA,
			"/ip4/198.18.0.1/tcp/4001/p2p/" + peerA,
			"/ip4/203.0.113.7/tcp/4001/p2p/" + peerA,
			"/ip4/255.255.255.255/tcp/4001/p2p/" + peerA,
			"/ip4/224.0.0.1/tcp/4001/p2p/" + peerA,
			public,
		}, false, []string{public}, ""},
		{"ip6 and local names dropped", []string{
			"/ip6/::1/tcp/4001/p2p/" + peerA,
			"/ip6/::/tcp/4001/p2p/" + peerA,
			"/ip6/fe80::1/tcp/4001/p2p/" + peerA,
			"/ip6/fd00::1/tcp/4001/p2p/" + peerA,
			"/ip6/::ffff:10.0.0.1/tcp/4001/p2p/" + peerA,
			"/ip6/64:ff9b::a00:1/tcp/4001/p2p/" + peerA,
			"/ip6/2002:c0a8:101::1/tcp/4001/p2p/" + peerA,
			"/ip6/2001:db8::1/tcp/4001/p2p/" + peerA,
			"/ip6zone/eth0/ip6/fe80::1/tcp/4001/p2p/" + peerA,
			"/dns4/localhost/tcp/4001/p2p/" + peerA,
			"/dns/printer.local/tcp/4001/p2p/" + peerA,
			"/dns6/db.internal/tcp/4001/p2p/" + peerA,
			public,
		}, false, []string{public}, ""},
		{"private kept when allowed", []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + peerA}, true, []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + peerA}, ""},
		{"NAT64 of a public address kept", []string{"/ip6/64:ff9b::808:808/tcp/4001/p2p/" + peerA}, false, []string{"/ip6/64:ff9b::808:808/tcp/4001/p2p/" + peerA}, ""},
		{"not a multiaddr", []string{"8.8.8.8:4001"}, false, nil, `origins[0] "8.8.8.8:4001" is not a multiaddr`},
		{"unknown protocol", []string{"/ip4/8.8.8.8/tcpx/1/p2p/" + peerA}, false, nil, "is not a multiaddr"},
		{"bad peer id", []string{"/ip4/8.8.8.8/tcp/4001/p2p/notapeer"}, false, nil, "is not a multiaddr"},
		{"no peer id", []string{"/ip4/8.8.8.8/tcp/4001"}, false, nil, "does not end with /p2p/<peer id>"},
		{"unix socket (its path swallows the peer id)", []string{"/unix/tmp/ipfs.sock/p2p/" + peerA}, false, nil, "does not end with /p2p/<peer id>"},
		{"peer id not last", []string{"/p2p/" + peerA + "/tcp/1"}, false, nil, "does not end with /p2p/<peer id>"},
		{"repeated", []string{public, "/ip4/8.8.8.8/tcp/4001/ipfs/" + peerA}, false, nil, "origins[1] \"/ip4/8.8.8.8/tcp/4001/ipfs/" + peerA + "\" repeats origins[0]"},
		{"repeated private still refused", []string{"/ip4/10.0.0.1/tcp/1/p2p/" + peerA, "/ip4/10.0.0.1/tcp/1/p2p/" + peerA}, false, nil, "repeats"},
		{"too many", many, false, nil, "21 origins, at most 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOrigins(tc.in, tc.private)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("parseOrigins = %q, %v; want an error mentioning %q", got, err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseOrigins: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("kept %q, want %q", got, tc.want)
			}
		})
	}
}
