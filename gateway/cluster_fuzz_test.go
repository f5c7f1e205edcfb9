package gateway

import (
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/pin"
)

// The parsers of the ipfs-cluster routes' input: whatever a client sends,
// an answer is a refusal as a 400, or what the route's handler can trust.

func FuzzParseStatusFilter(f *testing.F) {
	for _, s := range append(api.TrackerStatusNames(), "", "pinned,pin_error", "lost,pinned", "undefined", ",", "queued,queued", "PINNED") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		statuses, err := parseStatusFilter(s)
		if err != nil {
			refusedAs400(t, err)
			return
		}
		if s == "" && statuses != nil {
			t.Fatalf("an empty filter selects %v, want every status (nil)", statuses)
		}
		seen := map[pin.Status]bool{}
		for _, st := range statuses {
			if seen[st] || !slices.Contains([]pin.Status{pin.StatusQueued, pin.StatusPinning, pin.StatusPinned, pin.StatusFailed}, st) {
				t.Fatalf("filter %q selects %v", s, statuses)
			}
			seen[st] = true
		}
	})
}

func FuzzParsePinTypeFilter(f *testing.F) {
	for _, s := range append(api.PinTypeNames(), "", "pin,meta-pin", "shard-pin,nope", "nope", ",", "PIN") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pins, err := parsePinTypeFilter(s)
		if err != nil {
			refusedAs400(t, err)
			return
		}
		if want := s == "" || slices.ContainsFunc(strings.Split(s, ","), func(n string) bool { return n == "" || n == "pin" || n == "all" }); pins != want {
			t.Fatalf("filter %q: plain pins %v, want %v", s, pins, want)
		}
	})
}

func FuzzClusterTarget(f *testing.F) {
	const v1 = "bafybeifpaez32hlrz5tmr7scndxtjgw3auuloyuyxblynqmjw5saapewmu"
	for _, p := range []string{"/pins/" + v1, "/pins/ipfs/" + v1, "/pins/ipld/" + v1 + "/", "/pins/ipfs/" + v1 + "/a/b",
		"/pins/ipns/example.com", "/pins/" + v1 + "/recover", "/allocations/" + v1, "/pins/ipfs/", "/pins/ipfs//",
		"/pins/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN/recover", "/pins/b\n" + v1[1:]} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL = &url.URL{Path: path}
		route := Route(r)
		if !ClusterRoute(route) || route == RouteClusterList || route == RouteAllocations || route == RouteRecoverAll {
			return
		}
		c, err := clusterTarget(path, route)
		if err != nil {
			refusedAs400(t, err)
			return
		}
		parsed, err := parseCID(c.Text)
		if err != nil || canonicalCID(parsed) != c.Canonical || !strings.Contains(path, c.Text) {
			t.Fatalf("%s (%s): accepted %+v (%v)", path, route, c, err)
		}
	})
}

// What ipfs-cluster-ctl sends for every pin add is accepted.
func FuzzParseClusterPin(f *testing.F) {
	const v1 = "bafybeifpaez32hlrz5tmr7scndxtjgw3auuloyuyxblynqmjw5saapewmu"
	for _, q := range []string{"mode=recursive&name=&replication-max=0&replication-min=0&shard-size=0&user-allocations=",
		"expire-at=2027-01-02T03%3A04%3A05Z&meta-a=b&mode=recursive&name=x&pin-update=" + v1,
		"replication=x", "expire-in=1ms", "meta-=x", "mode=direct", "origins=%2Fp2p%2F" + peerA} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		in, err := parseClusterPin(cidInput{Text: v1, Canonical: v1}, q, false)
		if err != nil {
			refusedAs400(t, err)
			return
		}
		if q.Get("mode") == "direct" || len(in.Origins) > MaxOrigins || checkMeta(in.Meta) != nil || checkName(in.Name) != nil {
			t.Fatalf("accepted %q as %+v", raw, in)
		}
		if _, ok := in.Meta[""]; ok {
			t.Fatalf("accepted an empty meta key from %q", raw)
		}
	})
}
