package bitswap_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/fetcher/dag/bitswap"
)

const seed = "0123456789abcdef0123456789abcdef"

// TestSlotKey: a slot's key is the ed25519 key seeded by
// HMAC-SHA256(seed, "pickup fetcher libp2p key <slot>"), computed here
// from the contract's words; each slot has its own; a seed under 32 bytes
// is refused. The peer ids are pinned: another derivation would change
// every deployment's delegates.
func TestSlotKey(t *testing.T) {
	want := []string{"12D3KooWLYddiuv1m7YvJzDiMuht5eLRXe2wZ52si7Hz7XpdhchL", "12D3KooWGSWpBMRciWLh5S516vEnL8X2E5YRhR4CUiVDrdap81bi"}
	for slot, id := range want {
		key, err := bitswap.SlotKey([]byte(seed), slot)
		if err != nil {
			t.Fatal(err)
		}
		mac := hmac.New(sha256.New, []byte(seed))
		mac.Write([]byte("pickup fetcher libp2p key " + string(rune('0'+slot))))
		direct, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(mac.Sum(nil)))
		if err != nil {
			t.Fatal(err)
		}
		if !key.Equals(direct) {
			t.Errorf("slot %d: the key is not the contract's derivation", slot)
		}
		got, err := libp2ppeer.IDFromPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != id {
			t.Errorf("slot %d: peer %s, want %s", slot, got, id)
		}
	}
	if _, err := bitswap.SlotKey([]byte(seed[:31]), 0); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("a 31-byte seed: %v, want a refusal", err)
	}
}

// TestStableIdentity: a host started with a slot's key has the same peer
// id on every start, and a peer on loopback that dials it by its
// addresses finds that peer id.
func TestStableIdentity(t *testing.T) {
	key, err := bitswap.SlotKey([]byte(seed), 3)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := libp2ppeer.IDFromPrivateKey(key)
	client, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for range 2 {
		s, err := bitswap.New(bitswap.Config{AllowPrivate: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, PrivateKey: key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Host().ID() != want {
			t.Errorf("peer %s, want %s", s.Host().ID(), want)
		}
		info, err := libp2ppeer.AddrInfoFromP2pAddr(s.Addrs()[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Connect(context.Background(), *info); err != nil {
			t.Fatalf("dial %s: %v", s.Addrs()[0], err)
		}
		if conns := client.Network().ConnsToPeer(want); len(conns) == 0 || conns[0].RemotePeer() != want {
			t.Errorf("connected to %v, want %s", conns, want)
		}
		client.Network().ClosePeer(want)
		s.Close()
	}
}

// TestAnnounceAddrs: announced addresses replace the listen addresses in
// Addrs (with the host's /p2p/ added); a public IPv4 replaces the listen
// addresses' own, loopback ones dropped; an announce address that does
// not parse is refused.
func TestAnnounceAddrs(t *testing.T) {
	s, err := bitswap.New(bitswap.Config{AllowPrivate: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		AnnounceAddrs: []string{"/dns4/fetcher.example/tcp/4001", "/ip4/198.51.100.7/udp/4001/quic-v1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := s.Host().ID().String()
	got := addrs(s)
	if want := "/dns4/fetcher.example/tcp/4001/p2p/" + id + " /ip4/198.51.100.7/udp/4001/quic-v1/p2p/" + id; got != want {
		t.Errorf("addrs %s, want %s", got, want)
	}

	public, err := bitswap.New(bitswap.Config{AllowPrivate: true, ListenAddrs: []string{"/ip4/0.0.0.0/tcp/0"},
		PublicIPv4: netip.MustParseAddr("203.0.113.9")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer public.Close()
	port := ""
	for _, a := range public.Host().Network().ListenAddresses() {
		if p, err := a.ValueForProtocol(multiaddr.P_TCP); err == nil {
			port = p
		}
	}
	if got, want := addrs(public), "/ip4/203.0.113.9/tcp/"+port+"/p2p/"+public.Host().ID().String(); got != want {
		t.Errorf("addrs with a public IP %s, want %s", got, want)
	}

	if _, err := bitswap.New(bitswap.Config{AnnounceAddrs: []string{"/ip4/1.2.3.4/tcp"}}, nil); err == nil {
		t.Error("a bad announce address was accepted")
	}
}

func addrs(s *bitswap.Source) string {
	var out []string
	for _, a := range s.Addrs() {
		out = append(out, a.String())
	}
	slices.Sort(out) // libp2p keeps its own order
	return strings.Join(out, " ")
}
