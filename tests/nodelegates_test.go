package tests

import (
	"testing"
	"time"
)

// TestRunWithoutBitswap: `pickup run` whose only source is a trustless
// gateway (no fetcher takes bitswap connections) starts, advertises no
// delegates rather than addresses nobody listens at, and pins.
func TestRunWithoutBitswap(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	run := c.start("run", []string{"run"}, "PICKUP_DELEGATES=", "PICKUP_SOURCES=gateway")
	cl := c.client(run.api())
	root := c.file(64<<10, 3)
	ps := cl.add(root.String(), "no-delegates")
	if ps.Delegates == nil || len(ps.Delegates) != 0 {
		t.Errorf("delegates %#v, want an empty list", ps.Delegates)
	}
	if _, final := cl.waitStatus(ps.RequestID, 60*time.Second); final.Status != "pinned" {
		t.Fatalf("pin ended %s, info %v", final.Status, final.Info)
	}
}
