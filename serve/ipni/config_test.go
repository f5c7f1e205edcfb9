package ipni_test

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/serve/ipni"
)

// TestConfigValidate: what cannot work is refused before anything runs.
func TestConfigValidate(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	gw := multiaddr.StringCast("/ip4/127.0.0.1/tcp/8080/http")
	for _, tc := range []struct {
		name string
		cfg  ipni.Config
		ok   bool
	}{
		{"complete", ipni.Config{Key: key, HTTPAddr: gw, Indexers: []string{"https://cid.contact", "http://127.0.0.1:3001/announce"}}, true},
		{"no indexers", ipni.Config{Key: key, HTTPAddr: gw}, true},
		{"no key", ipni.Config{HTTPAddr: gw}, false},
		{"no HTTP address", ipni.Config{Key: key}, false},
		{"negative chunk size", ipni.Config{Key: key, HTTPAddr: gw, ChunkSize: -1}, false},
		{"negative batch", ipni.Config{Key: key, HTTPAddr: gw, BatchSize: -1}, false},
		{"an indexer that is not a URL", ipni.Config{Key: key, HTTPAddr: gw, Indexers: []string{"cid.contact"}}, false},
		{"an indexer of another scheme", ipni.Config{Key: key, HTTPAddr: gw, Indexers: []string{"ftp://cid.contact"}}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	if _, err := ipni.New(ipni.Config{Key: key, HTTPAddr: gw}, ipni.Deps{}); err == nil {
		t.Error("New without a log and a carpark: no error")
	}
}
