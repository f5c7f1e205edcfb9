package gateway

import (
	"net/http"
	"net/url"
	"strings"
)

// Routes, as Route names them: the patterns of the package documentation's
// table, never a raw path, so that metrics and logs group requests without
// making a series per pin or per CID.
const (
	RoutePins     = "/pins"
	RouteRequest  = "/pins/{requestid}"
	RouteTimeline = "/pins/{requestid}/timeline"
	RoutePage     = "/"
	RouteUI       = "/ui/{asset}"
	RouteOther    = "other"

	// The ipfs-cluster routes (ClusterRoute).

	// RouteClusterList is ipfs-cluster's GET /pins: the statuses of the
	// CIDs named by cids, or of every pin (filtered by filter) when cids is
	// empty. A GET /pins with any of cids, local or filter takes it; the
	// Pinning Service API's listing has none of them.
	RouteClusterList = "/pins?cids"
	RouteCID         = "/pins/{cid}"
	RouteClusterPath = "/pins/{ipfs|ipld|ipns}/{path}"
	RouteRecover     = "/pins/{cid}/recover"
	RouteRecoverAll  = "/pins/recover"
	RouteAllocations = "/allocations"
	RouteAllocation  = "/allocations/{cid}"
	// RouteClusterOther is the rest of ipfs-cluster's REST API (peers,
	// /add, /id, /version, health, metrics, ipfs gc, tokens), which pickup
	// does not serve: 404 in ipfs-cluster's shape, saying so, so that
	// ipfs-cluster-ctl prints why instead of retrying.
	RouteClusterOther = "ipfs-cluster-other"
	recoverSuffix     = "/recover"
	allocationsPrefix = "/allocations/"
)

// ClusterRoute reports whether a route, as Route names it, is one of the
// ipfs-cluster routes, whose errors are ipfs-cluster's {"code","message"}.
func ClusterRoute(route string) bool {
	switch route {
	case RouteClusterList, RouteCID, RouteClusterPath, RouteRecover, RouteRecoverAll, RouteAllocations, RouteAllocation,
		RouteClusterOther:
		return true
	}
	return false
}

// clusterListing reports whether a GET /pins is ipfs-cluster's status
// listing rather than the Pinning Service API's: it carries one of the
// parameters only ipfs-cluster's clients send (ipfs-cluster-ctl and the Go
// client send all three, `local=false&filter=&cids=`, for every status
// command).
func clusterListing(q url.Values) bool {
	return q.Has("cids") || q.Has("local") || q.Has("filter")
}

// clusterOther reports whether path is one of the routes of ipfs-cluster's
// REST API (v1.1.6, api/rest/restapi.go) that pickup does not serve.
func clusterOther(path string) bool {
	switch path {
	case "/id", "/version", "/peers", "/add", "/health", "/ipfs/gc", "/token", "/monitor/metrics":
		return true
	}
	for _, prefix := range []string{"/peers/", "/health/", "/monitor/metrics/"} {
		if strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}

// clusterKeyType reports whether a path segment is one of the namespaces
// of ipfs-cluster's pin-by-path routes, POST and DELETE
// /pins/{ipfs|ipld|ipns}/{path}.
func clusterKeyType(s string) bool { return s == "ipfs" || s == "ipld" || s == "ipns" }

// Route names the route a request takes through ServeHTTP: one of the
// Route* constants, whatever the path holds. ServeHTTP dispatches on it.
func Route(r *http.Request) string {
	path := r.URL.Path
	switch {
	case path == "/pins":
		if r.Method == http.MethodGet && clusterListing(r.URL.Query()) {
			return RouteClusterList
		}
		return RoutePins
	case path == "/pins"+recoverSuffix:
		return RouteRecoverAll
	case path == "/":
		return RoutePage
	case strings.HasPrefix(path, "/ui/"):
		return RouteUI
	case path == RouteAllocations:
		return RouteAllocations
	case clusterOther(path):
		return RouteClusterOther
	case strings.HasPrefix(path, allocationsPrefix):
		if seg := path[len(allocationsPrefix):]; seg != "" && !strings.Contains(seg, "/") {
			return RouteAllocation
		}
	case strings.HasPrefix(path, "/pins/"):
		first, rest, nested := strings.Cut(path[len("/pins/"):], "/")
		_, isID := requestID(first)
		switch {
		case first == "":
		case !nested && isID:
			return RouteRequest
		case !nested:
			return RouteCID
		case clusterKeyType(first):
			return RouteClusterPath
		case rest == timelineSuffix[1:] && isID:
			return RouteTimeline
		case rest == recoverSuffix[1:] && !isID:
			// No CID has a request id's form.
			return RouteRecover
		}
	}
	return RouteOther
}
