package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/pickup-ipfs/pickup/gateway"
)

// Route names every request by its pattern, so that metrics and logs group
// requests without a value per pin.
func TestRoute(t *testing.T) {
	const (
		id  = "4744de57-17fb-4df1-8643-a0fab3ccea62"
		cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
	)
	for _, c := range []struct{ method, target, want string }{
		{"GET", "/pins", gateway.RoutePins},
		{"POST", "/pins", gateway.RoutePins},
		{"GET", "/pins?status=queued&limit=5", gateway.RoutePins},
		{"GET", "/pins?cids=" + cid, gateway.RouteClusterList},
		{"POST", "/pins?cids=" + cid, gateway.RoutePins},
		{"GET", "/pins/" + id, gateway.RouteRequest},
		{"DELETE", "/pins/" + id, gateway.RouteRequest},
		{"GET", "/pins/" + id + "/timeline", gateway.RouteTimeline},
		{"GET", "/pins/" + cid, gateway.RouteCID},
		{"POST", "/pins/" + cid + "?origins=/ip4/1.2.3.4/tcp/4001", gateway.RouteCID},
		{"GET", "/pins/" + cid + "/timeline", gateway.RouteOther},
		// ipfs-cluster's routes.
		{"GET", "/pins?local=false&filter=&cids=", gateway.RouteClusterList},
		{"GET", "/pins?filter=pinned", gateway.RouteClusterList},
		{"GET", "/pins?local=true", gateway.RouteClusterList},
		{"POST", "/pins?local=true", gateway.RoutePins},
		{"DELETE", "/pins/" + cid, gateway.RouteCID},
		{"POST", "/pins/ipfs/" + cid + "?mode=recursive&name=", gateway.RouteClusterPath},
		{"DELETE", "/pins/ipfs/" + cid, gateway.RouteClusterPath},
		{"POST", "/pins/ipld/" + cid + "/", gateway.RouteClusterPath},
		{"POST", "/pins/ipns/example.com/a", gateway.RouteClusterPath},
		{"POST", "/pins/" + cid + "/recover?local=false", gateway.RouteRecover},
		{"POST", "/pins/" + id + "/recover", gateway.RouteOther},
		{"POST", "/pins/recover", gateway.RouteRecoverAll},
		{"POST", "/pins//recover", gateway.RouteOther},
		{"GET", "/allocations?filter=all", gateway.RouteAllocations},
		{"GET", "/allocations/" + cid, gateway.RouteAllocation},
		{"GET", "/allocations/", gateway.RouteOther},
		{"GET", "/allocations/a/b", gateway.RouteOther},
		{"GET", "/id", gateway.RouteClusterOther},
		{"GET", "/version", gateway.RouteClusterOther},
		{"GET", "/peers", gateway.RouteClusterOther},
		{"DELETE", "/peers/" + cid, gateway.RouteClusterOther},
		{"POST", "/add?local=true", gateway.RouteClusterOther},
		{"GET", "/health/graph", gateway.RouteClusterOther},
		{"GET", "/monitor/metrics/freespace", gateway.RouteClusterOther},
		{"POST", "/ipfs/gc", gateway.RouteClusterOther},
		{"GET", "/ipfs/" + cid, gateway.RouteOther},
		{"GET", "/pins/a/b", gateway.RouteOther},
		{"GET", "/pins/", gateway.RouteOther},
		{"GET", "/", gateway.RoutePage},
		{"GET", "/ui/page.js", gateway.RouteUI},
		{"GET", "/ui/throughput", gateway.RouteUI},
		{"GET", "/metrics", gateway.RouteOther},
		{"GET", "/pinsx", gateway.RouteOther},
	} {
		if got := gateway.Route(httptest.NewRequest(c.method, c.target, nil)); got != c.want {
			t.Errorf("%s %s: route %q, want %q", c.method, c.target, got, c.want)
		}
	}
}

// Whatever the path, the route is one of a few names: a label value never
// comes from the request.
func FuzzRoute(f *testing.F) {
	for _, p := range []string{"/pins", "/pins/x", "/pins/4744de57-17fb-4df1-8643-a0fab3ccea62/timeline", "/ui/", "/", "//pins",
		"/pins/ipfs/x/y", "/pins/x/recover", "/pins/recover", "/allocations/x"} {
		f.Add("GET", p)
	}
	routes := []string{gateway.RoutePins, gateway.RouteClusterList, gateway.RouteRequest, gateway.RouteTimeline,
		gateway.RouteCID, gateway.RouteClusterPath, gateway.RouteRecover, gateway.RouteRecoverAll,
		gateway.RouteAllocations, gateway.RouteAllocation, gateway.RouteClusterOther, gateway.RoutePage, gateway.RouteUI, gateway.RouteOther}
	f.Fuzz(func(t *testing.T, method, path string) {
		r := &http.Request{Method: method, URL: httptest.NewRequest("GET", "/", nil).URL}
		r.URL.Path = path
		if got := gateway.Route(r); !slices.Contains(routes, got) {
			t.Fatalf("Route(%q %q) = %q, not one of %v", method, path, got, routes)
		}
	})
}
