package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"

	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/api"
	logembedded "github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
	"github.com/pickup-ipfs/pickup/presence"
)

// Two peer ids of fetcher slots (bitswap.SlotKey of a test seed).
const (
	slotPeer0 = "12D3KooWLYddiuv1m7YvJzDiMuht5eLRXe2wZ52si7Hz7XpdhchL"
	slotPeer1 = "12D3KooWGSWpBMRciWLh5S516vEnL8X2E5YRhR4CUiVDrdap81bi"
)

// liveGateway is a gateway with no configured delegates that answers the
// fetchers announced in the stack's log (read afresh on every answer).
func liveGateway(t *testing.T, s *gatewaytest.Stack) *httptest.Server {
	t.Helper()
	dir := presence.NewDirectory(presence.DirectoryConfig{CacheTTL: -1}, s.Log, nil, nil)
	h, err := gateway.New(gateway.Config{}, gateway.Deps{Log: s.Log, Views: s.Views, Tokens: s.Views, Checkpoints: s.Views, Delegates: dir})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// announce leases a slot in the log for a fetcher dialed at addrs, as a
// fetcher does (its libp2p host is not needed here: the gateway reads
// strings).
func announce(t *testing.T, s *gatewaytest.Stack, peerID string, addrs ...string) *presence.Lease {
	t.Helper()
	bind := func(context.Context, int) (presence.Endpoint, func(), error) {
		return presence.Endpoint{PeerID: peerID, Addrs: addrs}, func() {}, nil
	}
	l, err := presence.Acquire(context.Background(), presence.Config{Instance: t.Name()}, presence.Deps{Log: s.Log}, bind)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestNoDelegates: with no fetcher live and none configured, POST /pins
// answers 503 NO_DELEGATES with Retry-After and appends nothing (the
// spec's PinStatus names at least one delegate; an address nobody listens
// at would be a lie); ipfs-cluster's routes, whose shapes need no address,
// still pin, naming a peer id that decodes and is no node's.
func TestNoDelegates(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	srv := liveGateway(t, s)
	token := s.Token(t, "alice")
	head, _ := s.Log.Head(context.Background())
	c := newCID(t).String()
	res := bearer(t, srv.URL, token).do(http.MethodPost, "/pins", `{"cid":"`+c+`"}`)
	res.wantError(t, http.StatusServiceUnavailable, "NO_DELEGATES", "No fetcher is live")
	if ra := res.header.Get("Retry-After"); ra != "30" {
		t.Errorf("Retry-After %q, want 30", ra)
	}
	if after, _ := s.Log.Head(context.Background()); after != head {
		t.Errorf("the refused POST moved the log from %d to %d", head, after)
	}
	bearer(t, srv.URL, token).do(http.MethodGet, "/pins", "").wantError(t, http.StatusServiceUnavailable, "NO_DELEGATES", "")

	var pinned api.ClusterPin
	basic(t, srv.URL, "alice", token).do(http.MethodPost, "/pins/"+c, "").want(t, http.StatusOK, &pinned)
	var st api.ClusterStatus
	basic(t, srv.URL, "alice", token).do(http.MethodGet, "/pins/"+c, "").want(t, http.StatusOK, &st)
	if len(st.PeerMap) != 1 {
		t.Fatalf("peer map %v, want one peer", st.PeerMap)
	}
	for id, p := range st.PeerMap {
		if _, err := mh.FromB58String(id); err != nil {
			t.Errorf("peer id %q does not decode: %v", id, err)
		}
		if len(p.IPFSPeerAddresses) != 0 {
			t.Errorf("addresses %v with no fetcher live", p.IPFSPeerAddresses)
		}
	}
}

// TestLiveDelegates: the gateway answers the addresses the live fetchers
// announced in the log, in slot order, on POST, GET and the listing; the
// ipfs-cluster peer is the first fetcher's; a withdrawn fetcher is no
// longer named, and with none left POST answers 503 again.
func TestLiveDelegates(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	srv := liveGateway(t, s)
	token := s.Token(t, "alice")
	a0 := "/ip4/198.51.100.1/tcp/4001/p2p/" + slotPeer0
	a1 := "/ip4/198.51.100.2/udp/4001/quic-v1/p2p/" + slotPeer1
	first := announce(t, s, slotPeer0, a0)
	second := announce(t, s, slotPeer1, a1)
	if first.Slot() != 0 || second.Slot() != 1 {
		t.Fatalf("slots %d and %d, want 0 and 1", first.Slot(), second.Slot())
	}
	c := newCID(t).String()
	var ps api.PinStatus
	bearer(t, srv.URL, token).do(http.MethodPost, "/pins", `{"cid":"`+c+`"}`).want(t, http.StatusAccepted, &ps)
	if want := []string{a0, a1}; !slices.Equal(ps.Delegates, want) {
		t.Errorf("POST delegates %v, want %v", ps.Delegates, want)
	}
	var got api.PinStatus
	bearer(t, srv.URL, token).do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &got)
	if !slices.Equal(got.Delegates, ps.Delegates) {
		t.Errorf("GET delegates %v, want %v", got.Delegates, ps.Delegates)
	}
	var st api.ClusterStatus
	basic(t, srv.URL, "alice", token).do(http.MethodGet, "/pins/"+c, "").want(t, http.StatusOK, &st)
	if p, ok := st.PeerMap[slotPeer0]; !ok || !slices.Equal(p.IPFSPeerAddresses, []string{a0, a1}) {
		t.Errorf("cluster peer map %+v, want %s with both addresses", st.PeerMap, slotPeer0)
	}

	if err := first.Withdraw(context.Background()); err != nil {
		t.Fatal(err)
	}
	bearer(t, srv.URL, token).do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &got)
	if want := []string{a1}; !slices.Equal(got.Delegates, want) {
		t.Errorf("after a withdrawal: delegates %v, want %v", got.Delegates, want)
	}
	if err := second.Withdraw(context.Background()); err != nil {
		t.Fatal(err)
	}
	bearer(t, srv.URL, token).do(http.MethodPost, "/pins", `{"cid":"`+newCID(t).String()+`"}`).
		wantError(t, http.StatusServiceUnavailable, "NO_DELEGATES", "")
}

// TestConfiguredDelegatesWin: configured delegates replace the live ones.
func TestConfiguredDelegatesWin(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	announce(t, s, slotPeer0, "/ip4/198.51.100.1/tcp/4001/p2p/"+slotPeer0)
	dir := presence.NewDirectory(presence.DirectoryConfig{}, s.Log, nil, nil)
	h, err := gateway.New(gateway.Config{Delegates: []string{gatewaytest.Delegate}},
		gateway.Deps{Log: s.Log, Views: s.Views, Tokens: s.Views, Checkpoints: s.Views, Delegates: dir})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	var ps api.PinStatus
	bearer(t, srv.URL, s.Token(t, "alice")).do(http.MethodPost, "/pins", `{"cid":"`+newCID(t).String()+`"}`).want(t, http.StatusAccepted, &ps)
	if want := []string{gatewaytest.Delegate}; !slices.Equal(ps.Delegates, want) {
		t.Errorf("delegates %v, want the configured %v", ps.Delegates, want)
	}
}

// TestDelegatesUnreadable: when the live fetchers cannot be read (here, a
// closed handle on the log), POST /pins answers 503 with Retry-After and
// appends nothing.
func TestDelegatesUnreadable(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	closed, err := logembedded.Open(context.Background(), filepath.Join(s.Dir, "events.db"), logembedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	h, err := gateway.New(gateway.Config{}, gateway.Deps{Log: s.Log, Views: s.Views, Tokens: s.Views, Checkpoints: s.Views,
		Delegates: presence.NewDirectory(presence.DirectoryConfig{}, closed, nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	token := s.Token(t, "alice")
	head, _ := s.Log.Head(context.Background())
	res := bearer(t, srv.URL, token).do(http.MethodPost, "/pins", `{"cid":"`+newCID(t).String()+`"}`)
	res.wantError(t, http.StatusServiceUnavailable, api.ReasonUnavailable, "could not be read")
	if res.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if after, _ := s.Log.Head(context.Background()); after != head {
		t.Errorf("the refused POST moved the log from %d to %d", head, after)
	}
}
