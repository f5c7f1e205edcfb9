package routing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/routing/http/client"
	"github.com/ipfs/boxo/routing/http/types"
	"github.com/ipfs/boxo/routing/http/types/iter"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/internal/servetest"
	"github.com/pickup-ipfs/pickup/serve/bitswap"
	"github.com/pickup-ipfs/pickup/serve/routing"
)

// endpoint is the routing handler over a carpark, mounted at /routing/v1/
// of a loopback server, and the provider it answers.
func endpoint(t *testing.T, park *servetest.Carpark) (string, bitswap.Provider) {
	t.Helper()
	key, _, err := bitswap.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	gw, err := bitswap.GatewayAddr("https://serve.example.com")
	if err != nil {
		t.Fatal(err)
	}
	prov := bitswap.Provider{Key: key, Gateway: gw, Addrs: []multiaddr.Multiaddr{
		multiaddr.StringCast("/dns4/serve.example.com/tcp/4002"), multiaddr.StringCast("/dns4/serve.example.com/udp/4002/quic-v1")}}
	h, err := routing.New(routing.Config{Provider: prov}, routing.Deps{Blocks: park.Blocks})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/routing/v1/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, prov
}

func records[T any](t *testing.T, it iter.ResultIter[T], err error) []T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []T
	for it.Next() {
		r := it.Val()
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		out = append(out, r.Val)
	}
	return out
}

func strs(addrs []types.Multiaddr) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// TestFindProviders: boxo's routing client, asking for every block of a
// pinned DAG, gets one record, the serving peer with its libp2p and
// gateway addresses and both protocols; for a block never pinned here,
// and for every block once the pin is removed, nothing (an empty list:
// boxo answers 200, as IPIP-0513 says).
func TestFindProviders(t *testing.T) {
	park := servetest.New(t)
	dag := park.Pin(t, 1<<20+3, 5)
	other := servetest.New(t).Pin(t, 200<<10, 6)
	url, prov := endpoint(t, park)
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, _ := prov.ID()
	wantAddrs := []string{"/dns4/serve.example.com/tcp/4002", "/dns4/serve.example.com/udp/4002/quic-v1", "/dns/serve.example.com/tcp/443/https"}
	for _, b := range dag.Blocks {
		it, err := c.FindProviders(ctx, b.CID)
		recs := records(t, it, err)
		if len(recs) != 1 {
			t.Fatalf("providers of %s: %d records, want 1", b.CID, len(recs))
		}
		rec, ok := recs[0].(*types.PeerRecord)
		if !ok || rec.Schema != types.SchemaPeer || rec.ID == nil || *rec.ID != id {
			t.Fatalf("providers of %s: %#v, want the peer %s", b.CID, recs[0], id)
		}
		if !slices.Equal(strs(rec.Addrs), wantAddrs) || !slices.Equal(rec.Protocols, []string{"transport-bitswap", "transport-ipfs-gateway-http"}) {
			t.Fatalf("providers of %s: addrs %v, protocols %v", b.CID, strs(rec.Addrs), rec.Protocols)
		}
	}
	// A CIDv0 of a pinned dag-pb block names the same block.
	v0 := cid.NewCidV0(dag.Root.Hash())
	if it, err := c.FindProviders(ctx, v0); len(records(t, it, err)) != 1 {
		t.Errorf("providers of the root as CIDv0: none")
	}
	none := func(what string, k cid.Cid) {
		t.Helper()
		if it, err := c.FindProviders(ctx, k); len(records(t, it, err)) != 0 {
			t.Errorf("providers of %s (%s): want none", k, what)
		}
		resp, err := http.Get(url + "/routing/v1/providers/" + k.String())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"Providers":[]}` {
			t.Errorf("GET providers of %s (%s): %d %s, want 200 and no provider (IPIP-0513)", k, what, resp.StatusCode, body)
		}
	}
	for _, b := range other.Blocks {
		none("never pinned here", b.CID)
	}
	park.Release(dag)
	for _, b := range dag.Blocks {
		none("removed", b.CID)
	}
}

// TestFindPeers: the serving peer's ID answers its addresses; any other
// peer, nothing; IPNS is not served.
func TestFindPeers(t *testing.T) {
	url, prov := endpoint(t, servetest.New(t))
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, _ := prov.ID()
	it, err := c.FindPeers(ctx, id)
	recs := records(t, it, err)
	if len(recs) != 1 || *recs[0].ID != id || len(recs[0].Addrs) != 3 {
		t.Fatalf("peers %s: %+v", id, recs)
	}
	otherKey, _, _ := bitswap.NewKey()
	otherID, _ := peer.IDFromPrivateKey(otherKey)
	it, err = c.FindPeers(ctx, otherID)
	if recs := records(t, it, err); len(recs) != 0 {
		t.Errorf("another peer: %+v, want none", recs)
	}
	resp, err := http.Get(url + "/routing/v1/ipns/k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("GET an IPNS record: %d, want an error", resp.StatusCode)
	}
}
