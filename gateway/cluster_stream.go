package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// The ipfs-cluster routes that answer with a stream, and their dispatch.

// serveCluster serves the ipfs-cluster routes (ClusterRoute): route is
// Route's name for r.
func (h *Handler) serveCluster(w http.ResponseWriter, r *http.Request, route string) {
	type method struct {
		name  string
		serve http.HandlerFunc
	}
	var methods []method
	switch route {
	case RouteClusterList: // GET only, by Route
		methods = []method{{http.MethodGet, h.clusterStatuses}}
	case RouteCID:
		methods = []method{{http.MethodGet, h.clusterGet}, {http.MethodPost, h.clusterAdd}, {http.MethodDelete, h.clusterRemove}}
	case RouteClusterPath:
		methods = []method{{http.MethodPost, h.clusterAdd}, {http.MethodDelete, h.clusterRemove}}
	case RouteRecover:
		methods = []method{{http.MethodPost, h.clusterRecover}}
	case RouteRecoverAll:
		methods = []method{{http.MethodPost, h.clusterRecoverAll}}
	case RouteAllocations:
		methods = []method{{http.MethodGet, h.clusterAllocations}}
	case RouteAllocation:
		methods = []method{{http.MethodGet, h.clusterAllocation}}
	case RouteClusterOther:
		h.writeError(w, r, &apiError{status: http.StatusNotFound, reason: api.ReasonNotFound,
			details: fmt.Sprintf("not found: pickup does not serve ipfs-cluster's %s %.80s; it serves the pin commands "+
				"(pin add, pin rm, pin ls, status, recover)", r.Method, r.URL.Path)})
		return
	}
	var allow []string
	for _, m := range methods {
		if r.Method == m.name {
			m.serve(w, r)
			return
		}
		allow = append(allow, m.name)
	}
	h.methodNotAllowed(w, r, strings.Join(allow, ", "))
}

// clusterStream writes ipfs-cluster's streamed answers as its REST API
// does: JSON objects one a line, flushed as they go, 204 when there are
// none; an error before the first object is the whole answer, one after it
// goes in the X-Stream-Error trailer, which ipfs-cluster's client reads.
type clusterStream struct {
	h   *Handler
	w   http.ResponseWriter
	r   *http.Request
	enc *json.Encoder
	n   int
}

func (h *Handler) newClusterStream(w http.ResponseWriter, r *http.Request) *clusterStream {
	return &clusterStream{h: h, w: w, r: r, enc: json.NewEncoder(w)}
}

// streamErrorTrailer is the trailer that carries an error after the first
// object.
const streamErrorTrailer = "X-Stream-Error"

// send writes one object.
func (s *clusterStream) send(v any) error {
	if s.n == 0 {
		s.w.Header().Set("Content-Type", "application/json")
		s.w.Header().Set("Trailer", streamErrorTrailer)
		s.w.WriteHeader(http.StatusOK)
	}
	s.n++
	if err := s.enc.Encode(v); err != nil {
		return err
	}
	// Through the metrics' wrappers too; a writer that cannot flush (on
	// Lambda the answer is buffered whole) sends it at the end.
	if err := http.NewResponseController(s.w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// end finishes the answer, with err if the stream stopped on one.
func (s *clusterStream) end(err error) {
	switch {
	case s.n == 0 && err != nil:
		s.h.writeError(s.w, s.r, err)
	case s.n == 0:
		s.w.WriteHeader(http.StatusNoContent)
	case err != nil:
		status, _, details := errorStatus(err)
		if status >= 500 {
			s.h.log.LogAttrs(s.r.Context(), slog.LevelError, "stream failed",
				slog.String("path", s.r.URL.Path), slog.Int("objects", s.n), slog.Any("err", err))
		}
		s.w.Header().Set(streamErrorTrailer, details)
	default:
		// ipfs-cluster sets it empty too, for browsers' sake.
		s.w.Header().Set(streamErrorTrailer, "")
	}
}

// maxClusterCIDs bounds GET /pins?cids=.
const maxClusterCIDs = 1000

// clusterListParams are the query parameters of ipfs-cluster's GET /pins.
func clusterListParams() []string { return []string{"cids", "local", "filter"} }

// parseClusterList reads the CIDs of GET /pins?cids=a,b: as asked, and
// their canonical forms; none (cids empty or absent) asks for every pin.
// Every refusal is a 400.
func parseClusterList(q url.Values) (cids, canonical []string, err error) {
	for name := range q {
		if !contains(clusterListParams(), name) {
			return nil, nil, badRequest("unknown query parameter %.80q (GET /pins?cids= takes cids, local and filter)", name)
		}
	}
	// ipfs-cluster's clients send cids= (empty) to ask for every pin.
	if v := q["cids"]; !(len(v) == 1 && v[0] == "") {
		if cids, err = splitList("cids", v); err != nil {
			return nil, nil, err
		}
	}
	if len(cids) > maxClusterCIDs {
		return nil, nil, badRequest("cids: %d CIDs, at most %d", len(cids), maxClusterCIDs)
	}
	canonical = make([]string, len(cids))
	for i, s := range cids {
		c, err := parseCID(s)
		if err != nil {
			return nil, nil, badRequest("cids: %v", err)
		}
		canonical[i] = canonicalCID(c)
	}
	return cids, canonical, nil
}

// parseStatusFilter reads the filter of GET /pins as ipfs-cluster does: a
// comma-separated list of its status names (api.TrackerStatusNames), of
// which unknown ones are skipped; empty means every status, and a filter
// that names no status (or only "undefined") is refused, as ipfs-cluster
// refuses it. It returns the statuses of pickup's that match (nil: every
// one; empty and not nil: none, as for unpinned: the listing holds live
// pins only).
func parseStatusFilter(s string) ([]pin.Status, error) {
	if s == "" {
		return nil, nil
	}
	var known bool
	var out []pin.Status
	add := func(st pin.Status) {
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	for name := range strings.SplitSeq(s, ",") {
		if !slices.Contains(api.TrackerStatusNames(), name) {
			continue
		}
		if name != "undefined" {
			known = true
		}
		switch api.TrackerStatus(name) {
		case api.TrackerPinQueued, "queued":
			add(pin.StatusQueued)
		case api.TrackerPinning:
			add(pin.StatusPinning)
		case api.TrackerPinned:
			add(pin.StatusPinned)
		case api.TrackerPinError, "error":
			add(pin.StatusFailed)
		}
	}
	if !known {
		names := slices.DeleteFunc(api.TrackerStatusNames(), func(n string) bool { return n == "undefined" })
		return nil, badRequest("invalid filter value %.80q: want a comma-separated list of %s", s, strings.Join(names, ", "))
	}
	if out == nil {
		out = []pin.Status{}
	}
	return out, nil
}

// clusterStatuses is ipfs-cluster's GET /pins: with cids, one GlobalPinInfo
// per CID in the order asked (filter does not apply, as in ipfs-cluster);
// without, one per CID the tenant pins, newest first, in the statuses
// filter names.
func (h *Handler) clusterStatuses(w http.ResponseWriter, r *http.Request) {
	tenant, err := h.authenticate(r, schemeBasic)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	cids, canonical, err := parseClusterList(q)
	var statuses []pin.Status
	if err == nil && len(cids) == 0 {
		statuses, err = parseStatusFilter(q.Get("filter"))
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.fresh.await(r.Context(), tenant); err != nil {
		h.writeError(w, r, err)
		return
	}
	s := h.newClusterStream(w, r)
	if len(cids) > 0 {
		asked := make([]cidInput, len(cids))
		for i, text := range cids {
			asked[i] = cidInput{Text: text, Canonical: canonical[i]}
		}
		s.end(h.sendStatuses(s, r, tenant, asked))
		return
	}
	if statuses != nil && len(statuses) == 0 {
		s.end(nil)
		return
	}
	s.end(h.eachCID(r, views.ListQuery{Tenant: tenant, Statuses: statuses}, func(v views.Pin) error {
		return s.send(h.clusterStatus(r.Context(), v.CID, &v))
	}))
}

// eachCID is eachPin for ipfs-cluster's pinset, which holds one pin per
// CID: of a tenant's live requests for one CID, only the newest.
func (h *Handler) eachCID(r *http.Request, q views.ListQuery, fn func(views.Pin) error) error {
	seen := map[string]bool{}
	return h.eachPin(r, q, func(v views.Pin) error {
		c, err := views.CanonicalCID(v.CID)
		if err != nil {
			return err
		}
		if seen[c] {
			return nil
		}
		seen[c] = true
		return fn(v)
	})
}

// parsePinTypeFilter reads the filter of GET /allocations as ipfs-cluster
// does: a comma-separated list of pin types (api.PinTypeNames), empty for
// all; refused only when it names no known type. It reports whether plain
// pins ("pin", the only type pickup holds) are asked for.
func parsePinTypeFilter(s string) (bool, error) {
	if s == "" {
		return true, nil
	}
	known, pins := false, false
	for name := range strings.SplitSeq(s, ",") {
		if name == "" || slices.Contains(api.PinTypeNames(), name) {
			known = true
			pins = pins || name == "" || name == "pin" || name == "all"
		}
	}
	if !known {
		return false, badRequest("invalid filter value %.80q: want a comma-separated list of %s", s, strings.Join(api.PinTypeNames(), ", "))
	}
	return pins, nil
}

// clusterAllocations is GET /allocations: ipfs-cluster's pinset, every
// CID the tenant pins (in any status), newest first, as Pins.
func (h *Handler) clusterAllocations(w http.ResponseWriter, r *http.Request) {
	tenant, err := h.authenticate(r, schemeBasic)
	var pins bool
	if err == nil {
		err = checkClusterParams(r.URL.Query(), []string{"filter"}, false)
	}
	if err == nil {
		pins, err = parsePinTypeFilter(r.URL.Query().Get("filter"))
	}
	if err == nil {
		err = h.fresh.await(r.Context(), tenant)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	s := h.newClusterStream(w, r)
	if !pins {
		s.end(nil)
		return
	}
	s.end(h.eachCID(r, views.ListQuery{Tenant: tenant}, func(v views.Pin) error {
		return s.send(h.clusterPin(requestOf(v)))
	}))
}

// clusterRecoverAll is POST /pins/recover: every pin of the tenant that
// failed for good is queued again, and the answer is the status of each
// CID recovered, as ipfs-cluster's is of the pins it queued again.
func (h *Handler) clusterRecoverAll(w http.ResponseWriter, r *http.Request) {
	tenant, err := h.reader(r, schemeBasic)
	if err == nil {
		err = checkClusterParams(r.URL.Query(), []string{"local"}, false)
	}
	// Every failed request is queued again; each CID is told once.
	var recovered []cidInput
	seen := map[string]bool{}
	if err == nil {
		err = h.eachPin(r, views.ListQuery{Tenant: tenant, Statuses: []pin.Status{pin.StatusFailed}}, func(v views.Pin) error {
			ok, err := h.recoverPin(r, tenant, v.RequestID)
			if err != nil || !ok {
				return err
			}
			c, err := views.CanonicalCID(v.CID)
			if err == nil && !seen[c] {
				seen[c] = true
				recovered = append(recovered, cidInput{Text: v.CID, Canonical: c})
			}
			return err
		})
	}
	if err == nil {
		err = h.fresh.await(r.Context(), tenant)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	s := h.newClusterStream(w, r)
	s.end(h.sendStatuses(s, r, tenant, recovered))
}

// sendStatuses sends the status of each CID, in order, until an error.
func (h *Handler) sendStatuses(s *clusterStream, r *http.Request, tenant string, cids []cidInput) error {
	for _, c := range cids {
		st, err := h.clusterStatusOf(r, tenant, c)
		if err == nil {
			err = s.send(st)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
