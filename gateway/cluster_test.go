package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
	"github.com/pickup-ipfs/pickup/pin"
)

// trackerStatus checks st names the delegate's peer, and nothing else, and
// returns the pin's status there.
func trackerStatus(t testing.TB, st api.ClusterStatus) api.TrackerStatus {
	t.Helper()
	p, ok := st.PeerMap[peerA]
	if !ok || len(st.PeerMap) != 1 {
		t.Fatalf("peer_map %+v, want one entry for the delegate's peer %s", st.PeerMap, peerA)
	}
	if p.IPFSPeerID != peerA || len(p.IPFSPeerAddresses) != 1 || p.IPFSPeerAddresses[0] != gatewaytest.Delegate {
		t.Fatalf("peer %+v does not name the delegate", p)
	}
	return p.Status
}

func TestClusterRoutes(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	srv := s.Server(t)
	token := s.Token(t, "alice")
	c := basic(t, srv.URL, "alice", token)
	root := newCID(t)
	v0 := cid.NewCidV0(root.Hash()).String()
	origin := "/ip4/8.8.8.8/tcp/4001/p2p/" + peerA

	var added api.ClusterPin
	c.do(http.MethodPost, "/pins/"+v0+"?origins="+url.QueryEscape(origin+",/ip4/127.0.0.1/tcp/1/p2p/"+peerA)+"&name=photos&meta-app=a&replication-min=-1&replication-max=-1&mode=recursive", "").
		want(t, http.StatusOK, &added)
	if added.CID != v0 || added.Type != "pin" || added.Mode != "recursive" || added.Name != "photos" || added.Metadata["app"] != "a" ||
		len(added.Origins) != 1 || added.Origins[0] != origin || added.ReplicationFactorMin != -1 || added.MaxDepth != -1 || added.Allocations == nil {
		t.Fatalf("POST answered %+v", added)
	}

	// A second POST for the same content (as CIDv1 this time) is the same pin.
	var again api.ClusterPin
	c.do(http.MethodPost, "/pins/"+root.String(), "").want(t, http.StatusOK, &again)
	if !again.Timestamp.Equal(added.Timestamp.Time) || again.CID != v0 {
		t.Fatalf("second POST answered %+v, want the existing pin %+v", again, added)
	}

	var st api.ClusterStatus
	c.do(http.MethodGet, "/pins/"+root.String(), "").want(t, http.StatusOK, &st)
	if got := trackerStatus(t, st); got != "pin_queued" || st.CID != root.String() || st.Name != "photos" || !st.Created.Equal(added.Timestamp.Time) {
		t.Fatalf("GET answered %+v (status %s)", st, got)
	}
	// The PSA sees the same pin.
	var list api.PinResults
	bearer(t, srv.URL, token).do(http.MethodGet, "/pins?status=queued", "").want(t, http.StatusOK, &list)
	if list.Count != 1 {
		t.Fatalf("PSA listing %+v, want the one cluster pin", list)
	}
	id := uuid.MustParse(list.Results[0].RequestID)

	// A failed pin is queued again by another POST.
	s.Claim(t, id)
	s.Fail(t, id, pin.ReasonTooBig, "DAG over 31 GiB", pin.DefaultRetryPolicy())
	s.Sync(t)
	c.do(http.MethodGet, "/pins/"+v0, "").want(t, http.StatusOK, &st)
	if got := trackerStatus(t, st); got != "pin_error" || st.PeerMap[peerA].Error != "too_big: DAG over 31 GiB" || st.PeerMap[peerA].AttemptCount != 1 {
		t.Fatalf("failed pin shows %+v", st.PeerMap)
	}
	c.do(http.MethodPost, "/pins/"+v0, "").want(t, http.StatusOK, &again)
	if state := s.Pin(t, id); state.Phase != pin.PhaseQueued || state.Failures != 0 {
		t.Fatalf("after a second POST the failed pin is %s with %d failures, want queued afresh", state.Phase, state.Failures)
	}
	c.do(http.MethodGet, "/pins/"+v0, "").want(t, http.StatusOK, &st)
	if got := trackerStatus(t, st); got != "pin_queued" {
		t.Fatalf("requeued pin shows %s", got)
	}

	// Several CIDs at once, one JSON document per line, in the order asked.
	other := newCID(t)
	r := c.do(http.MethodGet, "/pins?cids="+other.String()+","+root.String(), "")
	r.want(t, http.StatusOK, nil)
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	var lines []api.ClusterStatus
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		var l api.ClusterStatus
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 2 || lines[0].CID != other.String() || trackerStatus(t, lines[0]) != "unpinned" || lines[1].CID != root.String() || trackerStatus(t, lines[1]) != "pin_queued" {
		t.Fatalf("ndjson answer %s", r.body)
	}

	// After the PSA deletes it, the CID is unpinned, and a POST makes a new
	// request.
	bearer(t, srv.URL, token).do(http.MethodDelete, "/pins/"+id.String(), "").want(t, http.StatusAccepted, nil)
	c.do(http.MethodGet, "/pins/"+root.String(), "").want(t, http.StatusOK, &st)
	if got := trackerStatus(t, st); got != "unpinned" {
		t.Fatalf("deleted pin shows %s", got)
	}
	c.do(http.MethodPost, "/pins/"+root.String(), "").want(t, http.StatusOK, &again)
	bearer(t, srv.URL, token).do(http.MethodGet, "/pins?status=queued", "").want(t, http.StatusOK, &list)
	if list.Count != 1 || list.Results[0].RequestID == id.String() {
		t.Fatalf("after a new POST the PSA lists %+v, want one new request", list)
	}
}

// Concurrent POSTs of one CID by one tenant make one request.
func TestClusterAddRace(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	srv := s.Server(t)
	token := s.Token(t, "alice")
	c := basic(t, srv.URL, "alice", token)
	root := newCID(t).String()
	done := make(chan response, 8)
	for range cap(done) {
		go func() { done <- c.do(http.MethodPost, "/pins/"+root, "") }()
	}
	var first api.ClusterPin
	for i := range cap(done) {
		var p api.ClusterPin
		(<-done).want(t, http.StatusOK, &p)
		if i == 0 {
			first = p
		} else if !p.Timestamp.Equal(first.Timestamp.Time) {
			t.Fatalf("racing POSTs answered different pins: %v and %v", first.Timestamp, p.Timestamp)
		}
	}
	var list api.PinResults
	bearer(t, srv.URL, token).do(http.MethodGet, "/pins?status=queued", "").want(t, http.StatusOK, &list)
	if list.Count != 1 {
		t.Fatalf("%d requests for one CID", list.Count)
	}
}
