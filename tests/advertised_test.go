package tests

import (
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/internal/ipnitest"
)

// TestAdvertisedToIPNI: the serving role of a real deployment (pickup
// gateway, projector, fetcher and serve processes) advertises what it pins
// to the real IPNI indexer (storetheindex, told by announcements over
// HTTP): the indexer then names the serving peer for every block of every
// pinned DAG. The serving role killed with SIGKILL while pins go on, and
// started again on the same log and key, goes on with the same chain: the
// indexer ingests what was pinned while it was down and after. A pin
// removed and collected is withdrawn: its blocks are named no more, the
// others still are.
func TestAdvertisedToIPNI(t *testing.T) {
	ix := ipnitest.Start(t)
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"}, "PICKUP_GC_GRACE=2s", "PICKUP_GC_PERIOD=300ms")
	c.start("fetcher", []string{"fetcher"})
	announce := "PICKUP_IPNI_INDEXERS=" + ix.IngestURL
	srv := c.startServe(announce)
	sp := srv.peerOf(t)
	cl := c.client(gw.api())

	// The blocks of each pinned root, read from the carpark once pinned
	// (a removed root's CAR is collected).
	blocks := map[cid.Cid][]carBlock{}
	pinned := func(root cid.Cid) {
		t.Helper()
		blocks[root] = blocksOf(t, c.object(c.carpark, root.String()+"/"+root.String()+".car"))
	}
	// named reports whether the indexer names the serving peer for every
	// block of root (with want false: for none).
	named := func(t *testing.T, root cid.Cid, want bool) bool {
		t.Helper()
		for _, b := range blocks[root] {
			provs, err := ix.FindCID(b.cid)
			if err != nil {
				t.Fatalf("find %s: %v", b.cid, err)
			}
			found := false
			for _, p := range provs {
				found = found || p.Provider.ID == sp.ID.String()
			}
			if found != want {
				return false
			}
		}
		return true
	}
	advertised := func(t *testing.T, roots ...cid.Cid) {
		t.Helper()
		for _, r := range roots {
			waitUntil(t, 90*time.Second, "the indexer names pickup for every block of "+r.String(), func() bool { return named(t, r, true) })
		}
	}

	first, firstReq := c.pinAndServe(t, cl, srv.serveURL(), 1<<20+17, 61)
	pinned(first)
	advertised(t, first)

	// Killed, the serving role misses a pin, which its next start
	// advertises after the first's, on the same chain.
	srv.kill(t)
	whileDown := c.file(2<<20+5, 62)
	ps := cl.add(whileDown.String(), "while the serving role is down")
	if _, final := cl.waitStatus(ps.RequestID, 90*time.Second); final.Status != "pinned" {
		t.Fatalf("pin of %s ended %s: %v", whileDown, final.Status, final.Info)
	}
	pinned(whileDown)
	srv = c.startServe(announce)
	if again := srv.peerOf(t); again.ID != sp.ID {
		t.Fatalf("the serving peer after a restart is %s, was %s", again.ID, sp.ID)
	}
	after, _ := c.pinAndServe(t, cl, srv.serveURL(), 700<<10+3, 63)
	pinned(after)
	advertised(t, whileDown, after, first)

	cl.remove(firstReq)
	waitUntil(t, 90*time.Second, "the indexer names pickup for no block of the removed "+first.String(), func() bool { return named(t, first, false) })
	advertised(t, whileDown, after)
}
