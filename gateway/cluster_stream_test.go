package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// decodeStream reads a streamed answer of the ipfs-cluster routes as
// ipfs-cluster's client does (a json.Decoder over the body, one object
// after another), after checking it is one: 200 with objects, or 204 with
// none, as application/json.
func decodeStream[T any](t testing.TB, r response) []T {
	t.Helper()
	if r.status == http.StatusNoContent {
		if len(r.body) != 0 {
			t.Fatalf("204 with a body %q", r.body)
		}
		return nil
	}
	r.want(t, http.StatusOK, nil)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("stream Content-Type %q, want application/json", ct)
	}
	var out []T
	dec := json.NewDecoder(bytes.NewReader(r.body))
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("stream %s: %v", r.body, err)
		}
		out = append(out, v)
	}
	if n := bytes.Count(r.body, []byte("\n")); n != len(out) {
		t.Fatalf("%d objects on %d lines: %s", len(out), n, r.body)
	}
	return out
}

// statusesOf reads a stream of GlobalPinInfos as CID: status.
func statusesOf(t testing.TB, r response) map[string]api.TrackerStatus {
	t.Helper()
	out := map[string]api.TrackerStatus{}
	for _, st := range decodeStream[api.ClusterStatus](t, r) {
		if _, dup := out[st.CID]; dup {
			t.Fatalf("%s told twice", st.CID)
		}
		out[st.CID] = trackerStatus(t, st)
	}
	return out
}

// scene is one tenant's pins in every status pickup has, through the
// cluster routes and the PSA.
type scene struct {
	s                                      *gatewaytest.Stack
	c, psa                                 client
	queued, pinning, pinned, failed, retry string
	removed, twice                         string
	failedID, queuedID                     uuid.UUID
}

func newScene(t *testing.T) scene {
	s := gatewaytest.New(t, gateway.Config{})
	srv := s.Server(t)
	token := s.Token(t, "alice")
	sc := scene{s: s, c: basic(t, srv.URL, "alice", token), psa: bearer(t, srv.URL, token)}
	add := func() (string, uuid.UUID) {
		root := newCID(t).String()
		ps := sc.psa.addPin(`{"cid":"` + root + `"}`)
		return root, uuid.MustParse(ps.RequestID)
	}
	sc.queued, sc.queuedID = add()
	var id uuid.UUID
	sc.pinning, id = add()
	s.Claim(t, id)
	sc.pinned, id = add()
	s.Claim(t, id)
	s.Complete(t, id, newCID(t).String(), 1000)
	sc.failed, sc.failedID = add()
	s.Claim(t, sc.failedID)
	s.Fail(t, sc.failedID, pin.ReasonTooBig, "DAG over 1 KiB", pin.DefaultRetryPolicy())
	sc.retry, id = add()
	s.Claim(t, id)
	s.Fail(t, id, pin.ReasonLeaseExpired, "lease ran out", pin.DefaultRetryPolicy())
	sc.removed, id = add()
	sc.psa.do(http.MethodDelete, "/pins/"+id.String(), "").want(t, http.StatusAccepted, nil)
	// One CID asked for twice (as CIDv1 and CIDv0): ipfs-cluster's pinset
	// holds it once.
	sc.twice, _ = add()
	c, _ := cid.Decode(sc.twice)
	sc.psa.addPin(`{"cid":"` + cid.NewCidV0(c.Hash()).String() + `"}`)
	s.Sync(t)
	return sc
}

// GET /pins with ipfs-cluster's parameters is the status of every pin,
// one per CID, filtered by ipfs-cluster's status names as ipfs-cluster
// reads them.
func TestClusterStatusAll(t *testing.T) {
	sc := newScene(t)
	v0 := func() string { c, _ := cid.Decode(sc.twice); return cid.NewCidV0(c.Hash()).String() }()
	all := map[string]api.TrackerStatus{sc.queued: "pin_queued", sc.pinning: "pinning", sc.pinned: "pinned",
		sc.failed: "pin_error", sc.retry: "pin_queued", v0: "pin_queued"}
	pick := func(cids ...string) map[string]api.TrackerStatus {
		out := map[string]api.TrackerStatus{}
		for _, c := range cids {
			out[c] = all[c]
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  map[string]api.TrackerStatus
	}{
		{"local=false&filter=&cids=", all}, // ipfs-cluster-ctl status
		{"local=true&filter=&cids=", all},
		{"filter=", all},
		{"local=false", all},
		{"filter=pinned", pick(sc.pinned)},
		{"filter=pinning", pick(sc.pinning)},
		{"filter=pin_error", pick(sc.failed)},
		{"filter=error", pick(sc.failed)},
		{"filter=pin_queued", pick(sc.queued, sc.retry, v0)},
		{"filter=queued", pick(sc.queued, sc.retry, v0)},
		{"filter=pinned,pin_error", pick(sc.pinned, sc.failed)},
		{"filter=lost,pinned", pick(sc.pinned)}, // unknown names are skipped, as by ipfs-cluster
		{"filter=undefined,pinning", pick(sc.pinning)},
		{"filter=unpinned", nil}, // the pinset holds live pins only
		{"filter=remote,sharded,unpin_queued,cluster_error", nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			got := statusesOf(t, sc.c.do(http.MethodGet, "/pins?"+tc.query, ""))
			if len(got) != len(tc.want) {
				t.Fatalf("statuses %v, want %v", got, tc.want)
			}
			for c, st := range tc.want {
				if got[c] != st {
					t.Fatalf("statuses %v, want %v", got, tc.want)
				}
			}
		})
	}
	// Newest first, as the views list.
	order := decodeStream[api.ClusterStatus](t, sc.c.do(http.MethodGet, "/pins?filter=&cids=", ""))
	if order[0].CID != v0 || order[len(order)-1].CID != sc.queued {
		t.Errorf("order %s ... %s, want newest first", order[0].CID, order[len(order)-1].CID)
	}
	// The error of a failed pin carries the reason.
	for _, st := range order {
		if st.CID == sc.failed && st.PeerMap[peerA].Error != "too_big: DAG over 1 KiB" {
			t.Errorf("failed pin's error %q", st.PeerMap[peerA].Error)
		}
	}
	// Another tenant sees none of them: 204, as ipfs-cluster answers an
	// empty stream.
	bob := basic(t, sc.c.base, "bob", sc.s.Token(t, "bob"))
	r := bob.do(http.MethodGet, "/pins?local=false&filter=&cids=", "")
	if r.status != http.StatusNoContent || len(decodeStream[api.ClusterStatus](t, r)) != 0 {
		t.Fatalf("bob's status of all: %d %s", r.status, r.body)
	}
	// The Pinning Service API's listing is still GET /pins without them.
	var list api.PinResults
	sc.psa.do(http.MethodGet, "/pins", "").want(t, http.StatusOK, &list)
	if list.Count != 1 || list.Results[0].Pin.CID != sc.pinned {
		t.Fatalf("PSA listing %+v, want the pinned pin", list)
	}
}

// Several CIDs at once: one status each, in the order asked, whatever the
// filter says (ipfs-cluster ignores it there); the answer streams with the
// X-Stream-Error trailer ipfs-cluster's client reads, empty.
func TestClusterStatusCIDs(t *testing.T) {
	sc := newScene(t)
	unknown := newCID(t).String()
	for _, query := range []string{
		"local=false&filter=&cids=%s,%s,%s,%s", // ipfs-cluster-ctl status C1 C2 ...
		"cids=%s,%s,%s,%s&filter=pinned",
		"cids=%s,%s&cids=%s,%s&local=true",
	} {
		t.Run(query, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, sc.c.base+"/pins?"+fmt.Sprintf(query, sc.failed, unknown, sc.removed, sc.pinned), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", sc.c.auth)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if _, ok := res.Trailer["X-Stream-Error"]; !ok || res.Trailer.Get("X-Stream-Error") != "" {
				t.Errorf("trailers %v, want an empty X-Stream-Error", res.Trailer)
			}
			got := decodeStream[api.ClusterStatus](t, response{status: res.StatusCode, header: res.Header, body: body})
			var cids []string
			var statuses []api.TrackerStatus
			for _, st := range got {
				cids = append(cids, st.CID)
				statuses = append(statuses, trackerStatus(t, st))
			}
			if !slices.Equal(cids, []string{sc.failed, unknown, sc.removed, sc.pinned}) ||
				!slices.Equal(statuses, []api.TrackerStatus{"pin_error", "unpinned", "unpinned", "pinned"}) {
				t.Fatalf("statuses %v %v", cids, statuses)
			}
		})
	}
}

// GET /allocations is ipfs-cluster's pinset: every live pin, one per CID,
// in every status, as Pins; its filter takes ipfs-cluster's pin types.
func TestClusterAllocations(t *testing.T) {
	sc := newScene(t)
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{"?filter=all", 6}, // ipfs-cluster-ctl pin ls
		{"", 6},
		{"?filter=", 6},
		{"?filter=pin", 6},
		{"?filter=pin,meta-pin", 6},
		{"?filter=shard-pin,nope", 0}, // some known type: not refused, as in ipfs-cluster
		{"?filter=meta-pin,clusterdag-pin,shard-pin", 0},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			pins := decodeStream[api.ClusterPin](t, sc.c.do(http.MethodGet, "/allocations"+tc.filter, ""))
			if len(pins) != tc.want {
				t.Fatalf("%d pins, want %d", len(pins), tc.want)
			}
			for _, p := range pins {
				if p.Type != "pin" || p.CID == sc.removed || p.CID == sc.twice {
					t.Fatalf("allocation %+v", p)
				}
			}
		})
	}
	var p api.ClusterPin
	sc.c.do(http.MethodGet, "/allocations/"+sc.failed, "").want(t, http.StatusOK, &p)
	if p.CID != sc.failed || p.Type != "pin" || p.MaxDepth != -1 {
		t.Fatalf("allocation of one CID: %+v", p)
	}
	sc.c.do(http.MethodGet, "/allocations/"+sc.removed, "").wantClusterError(t, http.StatusNotFound, "pin is not part of the pinset")
}

// recover queues a pin that failed for good again, and answers its
// status; a pin in any other state is left as it is, and a CID not pinned
// is unpinned, as ipfs-cluster answers. Recovering every pin does the same
// for each failed one and streams their statuses.
func TestClusterRecover(t *testing.T) {
	sc := newScene(t)
	for _, tc := range []struct {
		cid  string
		want api.TrackerStatus
	}{
		{sc.failed, "pin_queued"},
		{sc.pinned, "pinned"},
		{sc.pinning, "pinning"},
		{sc.retry, "pin_queued"},
		{sc.removed, "unpinned"},
		{newCID(t).String(), "unpinned"},
	} {
		var st api.ClusterStatus
		sc.c.do(http.MethodPost, "/pins/"+tc.cid+"/recover?local=false", "").want(t, http.StatusOK, &st)
		if got := trackerStatus(t, st); got != tc.want || st.CID != tc.cid {
			t.Errorf("recover %s: %s, want %s", tc.cid, got, tc.want)
		}
	}
	if st := sc.s.Pin(t, sc.failedID); st.Phase != pin.PhaseQueued || st.Failures != 0 {
		t.Fatalf("recovered pin is %s with %d failures, want queued afresh", st.Phase, st.Failures)
	}

	// A pin that just failed for good shows as pin_error before the retry
	// decider dead-letters it: recover waits for the decider, and queues it.
	sc.s.Claim(t, sc.failedID)
	sc.s.Decide(t, sc.failedID, func(st pin.State) (pin.Payload, error) {
		return st.Fail(gatewaytest.Fetcher, st.Attempt, pin.ReasonTooBig, "too big again", true)
	})
	sc.s.Sync(t)
	var st api.ClusterStatus
	sc.c.do(http.MethodGet, "/pins/"+sc.failed, "").want(t, http.StatusOK, &st)
	if got := trackerStatus(t, st); got != api.TrackerPinError {
		t.Fatalf("a pin failed for good, not yet dead-lettered, shows %s", got)
	}
	decided := make(chan struct{})
	go func() {
		defer close(decided)
		time.Sleep(50 * time.Millisecond)
		sc.s.Decide(t, sc.failedID, func(st pin.State) (pin.Payload, error) { return st.DecideRetry(pin.DefaultRetryPolicy()) })
	}()
	sc.c.do(http.MethodPost, "/pins/"+sc.failed+"/recover", "").want(t, http.StatusOK, &st)
	<-decided
	if got := trackerStatus(t, st); got != api.TrackerPinQueued {
		t.Fatalf("recover right after the failure: %s, want pin_queued", got)
	}

	// Two pins failed for good (one is the recovered pin again); recovering
	// every pin queues both and tells of them alone.
	sc.s.Claim(t, sc.failedID)
	sc.s.Fail(t, sc.failedID, pin.ReasonTooBig, "still too big", pin.DefaultRetryPolicy())
	sc.s.Claim(t, sc.queuedID)
	sc.s.Fail(t, sc.queuedID, pin.ReasonTooBig, "too big", pin.DefaultRetryPolicy())
	sc.s.Sync(t)
	got := statusesOf(t, sc.c.do(http.MethodPost, "/pins/recover?local=false", ""))
	if len(got) != 2 || got[sc.failed] != "pin_queued" || got[sc.queued] != "pin_queued" {
		t.Fatalf("recover all told %v", got)
	}
	// Nothing left in error: an empty stream.
	if r := sc.c.do(http.MethodPost, "/pins/recover", ""); r.status != http.StatusNoContent {
		t.Fatalf("recover all with nothing failed: %d %s", r.status, r.body)
	}
}

// The listings of the cluster routes go past one page of the views.
func TestClusterListsEveryPage(t *testing.T) {
	if testing.Short() || runtime.GOOS == "wasip1" {
		// The paging is the same code everywhere; 1,001 POSTs take 20 s
		// under wazero.
		t.Skip("1,001 pins: not in -short, nor under wasip1")
	}
	s := gatewaytest.New(t, gateway.Config{})
	srv := s.Server(t)
	c := basic(t, srv.URL, "alice", s.Token(t, "alice"))
	const n = 1001 // views.MaxListLimit + 1
	for range n {
		c.do(http.MethodPost, "/pins/"+newCID(t).String(), "").want(t, http.StatusOK, nil)
	}
	if got := len(statusesOf(t, c.do(http.MethodGet, "/pins?local=false&filter=&cids=", ""))); got != n {
		t.Errorf("status of all told %d CIDs, want %d", got, n)
	}
	if got := len(decodeStream[api.ClusterPin](t, c.do(http.MethodGet, "/allocations?filter=all", ""))); got != n {
		t.Errorf("allocations told %d pins, want %d", got, n)
	}
}

// failingViews is the view store failing from its nth listing on, as a
// database cut off mid-answer would.
type failingViews struct {
	gateway.Views
	mu    sync.Mutex
	lists int
	after int
}

func (f *failingViews) List(ctx context.Context, q views.ListQuery) (views.ListResult, error) {
	f.mu.Lock()
	f.lists++
	n := f.lists
	f.mu.Unlock()
	if n > f.after {
		return views.ListResult{}, errors.New("connection reset by peer")
	}
	return f.Views.List(ctx, q)
}

// An error after the first object of a stream goes in the X-Stream-Error
// trailer, which ipfs-cluster's client turns into its error; one before
// is the whole answer, in ipfs-cluster's shape.
func TestClusterStreamError(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	token := s.Token(t, "alice")
	fv := &failingViews{Views: s.Views, after: 1}
	h, err := gateway.New(gateway.Config{Delegates: []string{gatewaytest.Delegate}},
		gateway.Deps{Log: s.Log, Views: fv, Tokens: s.Views, Checkpoints: s.Views})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := basic(t, srv.URL, "alice", token)
	a, b := newCID(t).String(), newCID(t).String()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/pins?local=false&filter=&cids="+a+","+b, nil)
	req.Header.Set("Authorization", c.auth)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	got := decodeStream[api.ClusterStatus](t, response{status: res.StatusCode, header: res.Header, body: body})
	if len(got) != 1 || got[0].CID != a || res.Trailer.Get("X-Stream-Error") == "" {
		t.Fatalf("stream cut after %d objects, trailers %v", len(got), res.Trailer)
	}
	// Failing from the first listing: the error is the answer.
	fv.mu.Lock()
	fv.after = 0
	fv.mu.Unlock()
	r := c.do(http.MethodGet, "/pins?local=false&filter=&cids=", "")
	var e api.ClusterError
	r.want(t, r.status, &e)
	if r.status < 500 || e.Code != r.status || e.Message == "" {
		t.Fatalf("status of all with the views failing: %d %s", r.status, r.body)
	}
}
