package tests

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/fetcher/dag/bitswap"
)

// delegateSeed is the libp2p seed the fetchers of these tests share.
const delegateSeed = "the seed every fetcher of the delegates tests derives its key from"

// bitswapFetcherEnv makes a role's fetcher take bitswap connections on
// loopback with the shared seed, and leaves the gateway with no configured
// delegates: it answers the live fetchers.
func bitswapFetcherEnv(extra ...string) []string {
	return append([]string{"PICKUP_DELEGATES=", "PICKUP_SOURCES=gateway,bitswap", "PICKUP_LIBP2P_LISTEN=/ip4/127.0.0.1/tcp/0",
		"PICKUP_LIBP2P_SEED=" + delegateSeed, "PICKUP_PRESENCE_TTL=3s"}, extra...)
}

// slotPeer is the peer id of a slot's key under seed.
func slotPeer(t *testing.T, seed string, slot int) string {
	t.Helper()
	key, err := bitswap.SlotKey([]byte(seed), slot)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// peersOf are the peer ids the delegates name, each once, in order.
func peersOf(t *testing.T, delegates []string) []string {
	t.Helper()
	var ids []string
	for _, d := range delegates {
		m, err := multiaddr.NewMultiaddr(d)
		if err != nil {
			t.Fatalf("delegate %q: %v", d, err)
		}
		info, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			t.Fatalf("delegate %q: %v", d, err)
		}
		if !slices.Contains(ids, info.ID.String()) {
			ids = append(ids, info.ID.String())
		}
	}
	return ids
}

// dialDelegates dials every delegate from a real libp2p peer on loopback,
// and checks that the peer answering is the one the delegate names.
func dialDelegates(t *testing.T, delegates []string) {
	t.Helper()
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, d := range delegates {
		info, err := peer.AddrInfoFromString(d)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(d, "/ip4/127.0.0.1/") {
			t.Fatalf("delegate %s: not on loopback", d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = h.Connect(ctx, *info)
		cancel()
		if err != nil {
			t.Fatalf("dial delegate %s: %v", d, err)
		}
		conns := h.Network().ConnsToPeer(info.ID)
		if len(conns) == 0 || conns[0].RemotePeer() != info.ID {
			t.Fatalf("dialed %s: connected to %v, want peer %s", d, conns, info.ID)
		}
	}
}

// postRaw is POST /pins without the client, for answers it would not
// decode.
func postRaw(t *testing.T, c *cluster, base, cid string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/pins", strings.NewReader(`{"cid":"`+cid+`"}`))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// waitDelegates polls the pin until its delegates name exactly peers.
func waitDelegates(t *testing.T, cl *client, id string, peers []string) api.PinStatus {
	t.Helper()
	var ps api.PinStatus
	waitUntil(t, 60*time.Second, "delegates "+strings.Join(peers, ", "), func() bool {
		ps = cl.get(id)
		return slices.Equal(peersOf(t, ps.Delegates), peers)
	})
	return ps
}

// TestDelegatesAreTheLiveFetchers runs the roles as separate processes on
// one embedded log: a gateway without PICKUP_DELEGATES starts, and refuses
// pins (503 NO_DELEGATES, Retry-After) while no fetcher is live; two
// fetchers take slots 0 and 1; POST /pins answers their real loopback
// addresses, and a libp2p peer that dials them meets the peer ids of
// slots 0 and 1. A fetcher that stops is dropped; restarted, it is named
// again with its old peer id; one killed drops out once its announcement
// expires.
func TestDelegatesAreTheLiveFetchers(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"}, "PICKUP_DELEGATES=")
	c.start("projector", []string{"projector"})
	root := c.file(64<<10, 61)

	resp := postRaw(t, c, gw.api(), root.String())
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("POST with no fetcher: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}

	first := c.start("fetcher", []string{"fetcher"}, bitswapFetcherEnv()...)
	second := c.start("fetcher", []string{"fetcher"}, bitswapFetcherEnv()...)
	p0, p1 := slotPeer(t, delegateSeed, 0), slotPeer(t, delegateSeed, 1)
	cl := c.client(gw.api())
	var ps api.PinStatus
	waitUntil(t, 30*time.Second, "POST /pins accepted", func() bool {
		return postRaw(t, c, gw.api(), c.file(1<<10, 62).String()).StatusCode == http.StatusAccepted
	})
	ps = cl.add(root.String(), "delegates")
	if got := peersOf(t, ps.Delegates); !slices.Equal(got, []string{p0, p1}) {
		t.Fatalf("POST delegates %v (peers %v), want the peers of slots 0 and 1 %v", ps.Delegates, got, []string{p0, p1})
	}
	dialDelegates(t, ps.Delegates)
	if _, final := cl.waitStatus(ps.RequestID, 60*time.Second); final.Status != api.StatusPinned {
		t.Fatalf("pin ended %s: %v", final.Status, final.Info)
	}

	if err := second.stop(t); err != nil {
		t.Fatalf("fetcher stopped with %v", err)
	}
	waitDelegates(t, cl, ps.RequestID, []string{p0})
	c.start("fetcher", []string{"fetcher"}, bitswapFetcherEnv()...)
	again := waitDelegates(t, cl, ps.RequestID, []string{p0, p1})
	dialDelegates(t, again.Delegates)

	first.kill(t)
	waitDelegates(t, cl, ps.RequestID, []string{p1})

	// The log's other followers take the slots' streams in their stride:
	// the views rebuilt from the log equal the live ones, and the
	// operator's tools print the slots' events.
	if out, err := c.pickup("replay", "--verify"); err != nil {
		t.Fatalf("replay --verify over the presence events: %v\n%s", err, out)
	}
	out, err := c.pickup("events", "cat", "fetcher-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "FetcherAnnounced") || !strings.Contains(out, "FetcherWithdrawn") || !strings.Contains(out, p1) {
		t.Errorf("events cat fetcher-1 shows no announcement and withdrawal of %s:\n%s", p1, out)
	}
}

// TestRunDelegatesStable: `pickup run` answers its fetcher's address, with
// the same peer id after a restart (the seed is kept in its file, created
// once with mode 0600).
func TestRunDelegatesStable(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	seedFile := filepath.Join(c.dir, "libp2p.seed")
	env := []string{"PICKUP_DELEGATES=", "PICKUP_SOURCES=gateway,bitswap", "PICKUP_LIBP2P_LISTEN=/ip4/127.0.0.1/tcp/0", "PICKUP_LIBP2P_SEED_FILE=" + seedFile}
	var peers [][]string
	for i := range 2 {
		run := c.start("run", []string{"run"}, env...)
		ps := c.client(run.api()).add(c.file(1<<10, uint64(70+i)).String(), "run")
		if len(ps.Delegates) == 0 {
			t.Fatalf("start %d: no delegates", i)
		}
		dialDelegates(t, ps.Delegates)
		peers = append(peers, peersOf(t, ps.Delegates))
		if err := run.stop(t); err != nil {
			t.Fatalf("run stopped with %v", err)
		}
	}
	if !slices.Equal(peers[0], peers[1]) || len(peers[0]) != 1 {
		t.Errorf("delegates' peers %v, then %v after a restart: want one, the same", peers[0], peers[1])
	}
	seed, err := os.ReadFile(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := slotPeer(t, strings.TrimRight(string(seed), "\n"), 0); peers[0][0] != want {
		t.Errorf("peer %s, want slot 0's of the seed file, %s", peers[0][0], want)
	}
	if info, _ := os.Stat(seedFile); info.Mode().Perm() != 0o600 {
		t.Errorf("seed file mode %v, want 0600", info.Mode().Perm())
	}
}

// TestRunWithoutBitswap: `pickup run` whose only source is a trustless
// gateway takes no bitswap connections, so no delegate exists: rather than
// answer an address nobody listens at (or an empty list, which the spec
// forbids), POST /pins answers 503 NO_DELEGATES with Retry-After; with
// --delegates it pins.
func TestRunWithoutBitswap(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	run := c.start("run", []string{"run"}, "PICKUP_DELEGATES=", "PICKUP_SOURCES=gateway")
	root := c.file(64<<10, 3)
	if resp := postRaw(t, c, run.api(), root.String()); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("POST: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	run.stop(t)
	run = c.start("run", []string{"run"}, "PICKUP_SOURCES=gateway") // the cluster's PICKUP_DELEGATES
	cl := c.client(run.api())
	ps := cl.add(root.String(), "static delegates")
	if _, final := cl.waitStatus(ps.RequestID, 60*time.Second); final.Status != api.StatusPinned {
		t.Fatalf("pin ended %s, info %v", final.Status, final.Info)
	}
}
