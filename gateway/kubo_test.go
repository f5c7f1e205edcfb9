package gateway_test

import (
	"context"
	"strings"
	"testing"

	pinclient "github.com/ipfs/boxo/pinning/remote/client"
	"github.com/ipfs/go-cid"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
)

// kubo's `ipfs pin remote` runs boxo's pinning/remote/client (formerly
// go-pinning-service-http-client): these are its calls, in the order kubo's
// commands make them, against the real gateway.
func TestKuboRemotePinningClient(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	srv := s.Server(t)
	ctx := context.Background()
	// `ipfs pin remote service add mysrv <endpoint> <key>`
	c := pinclient.NewClient(srv.URL, s.Token(t, "alice"))

	// `ipfs pin remote add --service=mysrv --name=photos --background <cid>`
	root := newCID(t)
	origin := ma.StringCast("/ip4/8.8.8.8/tcp/4001/p2p/" + peerA)
	added, err := c.Add(ctx, root, pinclient.PinOpts.WithName("photos"), pinclient.PinOpts.WithOrigins(origin))
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	if added.GetStatus() != pinclient.StatusQueued || !added.GetPin().GetCid().Equals(root) || added.GetPin().GetName() != "photos" {
		t.Fatalf("add returned %s", added)
	}
	if d := added.GetDelegates(); len(d) != 1 || d[0].String() != gatewaytest.Delegate {
		t.Fatalf("delegates %v, want the configured one (kubo connects to them)", d)
	}
	// Without --background, kubo polls the status until it is pinned.
	got, err := c.GetStatusByID(ctx, added.GetRequestId())
	if err != nil || got.GetRequestId() != added.GetRequestId() || !got.GetCreated().Equal(added.GetCreated()) {
		t.Fatalf("status: %v, %v", got, err)
	}

	// `ipfs pin remote ls --service=mysrv --cid=<cid> --name=photos --status=queued`
	found, err := c.LsSync(ctx, pinclient.PinOpts.FilterCIDs(root), pinclient.PinOpts.FilterName("photos"),
		pinclient.PinOpts.FilterStatus(pinclient.StatusQueued))
	if err != nil || len(found) != 1 || found[0].GetRequestId() != added.GetRequestId() {
		t.Fatalf("ls: %v, %v", found, err)
	}
	// The default listing shows pinned pins only.
	if pinned, err := c.LsSync(ctx); err != nil || len(pinned) != 0 {
		t.Fatalf("default ls: %v, %v", pinned, err)
	}

	// ls pages through more than one batch (the client asks 10 at a time).
	var more []cid.Cid
	for range 23 {
		r := newCID(t)
		more = append(more, r)
		if _, err := c.Add(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.LsSync(ctx, pinclient.PinOpts.FilterStatus(pinclient.StatusQueued, pinclient.StatusPinning, pinclient.StatusPinned, pinclient.StatusFailed))
	if err != nil || len(all) != 24 {
		t.Fatalf("ls over 3 pages: %d pins, %v; want 24", len(all), err)
	}

	// `ipfs pin remote service ls --stat`: one listing of limit 1 per status.
	for _, st := range []pinclient.Status{pinclient.StatusQueued, pinclient.StatusPinning, pinclient.StatusPinned, pinclient.StatusFailed} {
		_, count, err := c.LsBatchSync(ctx, pinclient.PinOpts.FilterStatus(st), pinclient.PinOpts.Limit(1))
		want := 0
		if st == pinclient.StatusQueued {
			want = 24
		}
		if err != nil || count != want {
			t.Fatalf("stat %s: %d, %v; want %d", st, count, err, want)
		}
	}

	// Replace (kubo has no command for it; the client does).
	next := newCID(t)
	repl, err := c.Replace(ctx, added.GetRequestId(), next, pinclient.PinOpts.WithName("photos v2"))
	if err != nil || repl.GetRequestId() == added.GetRequestId() || !repl.GetPin().GetCid().Equals(next) {
		t.Fatalf("replace: %v, %v", repl, err)
	}

	// `ipfs pin remote rm --service=mysrv --cid=<cid> --force`: list by
	// CID in every status, delete each.
	for _, r := range append(more, next) {
		ps, err := c.LsSync(ctx, pinclient.PinOpts.FilterCIDs(r), pinclient.PinOpts.FilterStatus(pinclient.StatusQueued, pinclient.StatusPinning, pinclient.StatusPinned, pinclient.StatusFailed))
		if err != nil || len(ps) != 1 {
			t.Fatalf("ls --cid %s: %v, %v", r, ps, err)
		}
		if err := c.DeleteByID(ctx, ps[0].GetRequestId()); err != nil {
			t.Fatalf("rm: %v", err)
		}
	}
	left, err := c.LsSync(ctx, pinclient.PinOpts.FilterStatus(pinclient.StatusQueued))
	if err != nil || len(left) != 0 {
		t.Fatalf("after rm: %v, %v", left, err)
	}

	// Errors reach the user with the spec's reason and details.
	_, err = c.GetStatusByID(ctx, added.GetRequestId())
	if err == nil || !strings.Contains(err.Error(), `reason: "NOT_FOUND"`) {
		t.Fatalf("status of a replaced pin: %v, want NOT_FOUND", err)
	}
	_, err = pinclient.NewClient(srv.URL, "wrong").LsSync(ctx)
	if err == nil || !strings.Contains(err.Error(), `reason: "UNAUTHORIZED"`) {
		t.Fatalf("ls with a wrong key: %v, want UNAUTHORIZED", err)
	}
	_, err = c.Add(ctx, cid.NewCidV1(cid.Libp2pKey, root.Hash()))
	if err == nil || !strings.Contains(err.Error(), `reason: "BAD_REQUEST"`) || !strings.Contains(err.Error(), "libp2p-key") {
		t.Fatalf("add of an unverifiable codec: %v, want BAD_REQUEST naming the codec", err)
	}
}
