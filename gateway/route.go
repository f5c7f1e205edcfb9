package gateway

import (
	"net/http"
	"strings"
)

// Routes, as Route names them: the patterns of the package documentation's
// table, never a raw path, so that metrics and logs group requests without
// making a series per pin or per CID.
const (
	RoutePins        = "/pins"
	RouteClusterList = "/pins?cids"
	RouteRequest     = "/pins/{requestid}"
	RouteTimeline    = "/pins/{requestid}/timeline"
	RouteCID         = "/pins/{cid}"
	RoutePage        = "/"
	RouteUI          = "/ui/{asset}"
	RouteOther       = "other"
)

// Route names the route a request takes through ServeHTTP: one of the
// Route* constants, whatever the path holds.
func Route(r *http.Request) string {
	path := r.URL.Path
	switch {
	case path == "/pins":
		if r.Method == http.MethodGet && r.URL.Query().Has("cids") {
			return RouteClusterList
		}
		return RoutePins
	case path == "/":
		return RoutePage
	case strings.HasPrefix(path, "/ui/"):
		return RouteUI
	case strings.HasPrefix(path, "/pins/"):
		seg := path[len("/pins/"):]
		if id, ok := strings.CutSuffix(seg, "/timeline"); ok {
			if _, ok := requestID(id); ok {
				return RouteTimeline
			}
			return RouteOther
		}
		if seg == "" || strings.Contains(seg, "/") {
			return RouteOther
		}
		if _, ok := requestID(seg); ok {
			return RouteRequest
		}
		return RouteCID
	}
	return RouteOther
}
