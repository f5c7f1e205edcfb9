package gateway_test

import (
	"fmt"
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
	lines := decodeStream[api.ClusterStatus](t, r)
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

// Every form of pin command ipfs-cluster's clients send is a pin: both
// paths, the options ipfs-cluster-ctl always sends (some empty), and the
// ones pickup checks and ignores. name, meta-* and origins are kept.
func TestClusterPinForms(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{AllowPrivateOrigins: true})
	srv := s.Server(t)
	token := s.Token(t, "alice")
	c := basic(t, srv.URL, "alice", token)
	origin := "/ip4/127.0.0.1/tcp/4001/p2p/" + peerA
	// ipfs-cluster-ctl v1.1.6's `pin add CID` (PinOptions.ToQuery, sorted by url.Values.Encode).
	ctl := "mode=recursive&name=&replication-max=0&replication-min=0&shard-size=0&user-allocations="
	for _, tc := range []struct {
		name, path, query string
		wantName          string
		wantMeta          map[string]string
		wantOrigins       int
	}{
		{"ctl pin add", "/pins/ipfs/%s", ctl, "", nil, 0},
		{"ctl pin add with name and metadata", "/pins/ipfs/%s",
			"meta-app=photos&meta-k%3Dv=x%3Dy&mode=recursive&name=holiday&replication-max=0&replication-min=0&shard-size=0&user-allocations=",
			"holiday", map[string]string{"app": "photos", "k=v": "x=y"}, 0},
		{"ctl pin add with everything pickup ignores", "/pins/ipfs/%s",
			"expire-at=2027-01-02T03%3A04%3A05Z&mode=recursive&name=x&replication-max=3&replication-min=2&shard-size=1048576&user-allocations=" +
				peerA + "%2C" + peerA + "&pin-update=" + newCID(t).String(),
			"x", nil, 0},
		{"ctl pin update", "/pins/ipfs/%s", "mode=recursive&name=&pin-update=" + newCID(t).String() + "&replication-max=0&replication-min=0&shard-size=0&user-allocations=", "", nil, 0},
		{"go client Pin", "/pins/%s", ctl + "&meta-a=b", "", map[string]string{"a": "b"}, 0},
		{"ipld path with a trailing slash", "/pins/ipld/%s/", "", "", nil, 0},
		{"bare", "/pins/%s", "", "", nil, 0},
		{"replication override, expire-in, local", "/pins/%s", "replication=-1&expire-in=1h&local=false", "", nil, 0},
		{"an unknown mode is recursive, as in ipfs-cluster", "/pins/%s", "mode=deep", "", nil, 0},
		{"an empty meta key is skipped, as in ipfs-cluster", "/pins/%s", "meta-=x&meta-b=c", "", map[string]string{"b": "c"}, 0},
		{"origins", "/pins/ipfs/%s", "origins=" + url.QueryEscape(origin), "", nil, 1},
		{"v0 CID", "/pins/ipfs/%s", ctl, "", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newCID(t).String()
			if tc.name == "v0 CID" {
				root = cid.NewCidV0(newCID(t).Hash()).String()
			}
			var p api.ClusterPin
			target := fmt.Sprintf(tc.path, root)
			if tc.query != "" {
				target += "?" + tc.query
			}
			c.do(http.MethodPost, target, "").want(t, http.StatusOK, &p)
			if p.CID != root || p.Name != tc.wantName || len(p.Metadata) != len(tc.wantMeta) || len(p.Origins) != tc.wantOrigins ||
				p.Type != "pin" || p.Mode != "recursive" || p.ReplicationFactorMin != -1 || p.ReplicationFactorMax != -1 ||
				p.MaxDepth != -1 || !p.ExpireAt.IsZero() || p.Timestamp.IsZero() {
				t.Fatalf("POST %s answered %+v", target, p)
			}
			for k, v := range tc.wantMeta {
				if p.Metadata[k] != v {
					t.Fatalf("metadata %v, want %v", p.Metadata, tc.wantMeta)
				}
			}
			// The Pinning Service API sees the same pin.
			var list api.PinResults
			bearer(t, srv.URL, token).do(http.MethodGet, "/pins?cid="+root, "").want(t, http.StatusOK, &list)
			if list.Count != 1 || list.Results[0].Pin.Name != tc.wantName || len(list.Results[0].Pin.Meta) != len(tc.wantMeta) {
				t.Fatalf("PSA listing %+v", list)
			}
			// And the status route, by the same text.
			var st api.ClusterStatus
			c.do(http.MethodGet, "/pins/"+root+"?local=false", "").want(t, http.StatusOK, &st)
			if trackerStatus(t, st) != api.TrackerPinQueued || st.CID != root || st.Name != tc.wantName {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

// Unpinning a CID removes every live request of the tenant for it, in
// either path form, answers with the pin, and leaves the CID unpinned; a
// CID not pinned is 404 in ipfs-cluster's words.
func TestClusterUnpin(t *testing.T) {
	for _, form := range []string{"/pins/%s", "/pins/ipfs/%s"} {
		t.Run(form, func(t *testing.T) {
			s := gatewaytest.New(t, gateway.Config{})
			srv := s.Server(t)
			token := s.Token(t, "alice")
			c, psa := basic(t, srv.URL, "alice", token), bearer(t, srv.URL, token)
			root := newCID(t)
			v0 := cid.NewCidV0(root.Hash()).String()
			c.do(http.MethodPost, "/pins/ipfs/"+root.String()+"?name=first", "").want(t, http.StatusOK, nil)
			// The same content through the PSA, as CIDv0, and another CID.
			psa.addPin(`{"cid":"` + v0 + `","name":"second"}`)
			kept := psa.addPin(`{"cid":"` + newCID(t).String() + `"}`)

			var p api.ClusterPin
			c.do(http.MethodDelete, fmt.Sprintf(form, root.String()), "").want(t, http.StatusOK, &p)
			if p.CID != v0 || p.Name != "second" || p.Type != "pin" {
				t.Fatalf("DELETE answered %+v, want the newest request", p)
			}
			var st api.ClusterStatus
			c.do(http.MethodGet, "/pins/"+v0, "").want(t, http.StatusOK, &st)
			if got := trackerStatus(t, st); got != api.TrackerUnpinned {
				t.Fatalf("after unpin the CID is %s", got)
			}
			var list api.PinResults
			psa.do(http.MethodGet, "/pins?status=queued,pinning,pinned,failed", "").want(t, http.StatusOK, &list)
			if list.Count != 1 || list.Results[0].RequestID != kept.RequestID {
				t.Fatalf("after unpin the PSA lists %+v, want only the other CID", list)
			}
			c.do(http.MethodDelete, fmt.Sprintf(form, root.String()), "").wantClusterError(t, http.StatusNotFound, "pin is not part of the pinset")
			// Another tenant cannot unpin alice's pins, nor tell them from none.
			bob := basic(t, srv.URL, "bob", s.Token(t, "bob"))
			bob.do(http.MethodDelete, "/pins/"+kept.Pin.CID, "").wantClusterError(t, http.StatusNotFound, "pin is not part of the pinset")
		})
	}
}
