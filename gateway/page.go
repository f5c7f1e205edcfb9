package gateway

import (
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/gateway/ui"
)

// The status page (package gateway/ui) and the two reads it needs beyond
// the Pinning Service API, under the same authorization.

// throughputPath is the page's throughput chart.
const throughputPath = ui.AssetPrefix + "throughput"

// timelineSuffix ends the path of a pin's timeline: /pins/{requestid}/timeline.
const timelineSuffix = "/timeline"

// servePage serves GET / and the page's assets, and the throughput chart.
func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == throughputPath {
		if r.Method != http.MethodGet {
			h.methodNotAllowed(w, r, "GET")
			return
		}
		h.throughput(w, r)
		return
	}
	if !h.page.Has(r.URL.Path) {
		h.writeError(w, r, errNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	h.page.ServeHTTP(w, r)
}

// timelinePath reads /pins/{requestid}/timeline.
func timelinePath(path string) (uuid.UUID, bool) {
	seg, ok := strings.CutPrefix(path, "/pins/")
	if !ok {
		return uuid.Nil, false
	}
	seg, ok = strings.CutSuffix(seg, timelineSuffix)
	if !ok {
		return uuid.Nil, false
	}
	return requestID(seg)
}

// timeline is GET /pins/{requestid}/timeline: the pin's story from its
// events, read from the log (so never behind the views). It is authorized
// as GET /pins/{requestid} is: another tenant's pin, or a removed one, is
// not found.
func (h *Handler) timeline(w http.ResponseWriter, r *http.Request, id uuid.UUID) {
	h.answer(w, r, func() (int, any, error) {
		tenant, err := h.authenticate(r, schemeBearer)
		if err != nil {
			return 0, nil, err
		}
		s, events, err := h.pins.Read(r.Context(), id)
		switch {
		case err != nil:
			return 0, nil, err
		case !s.Exists || s.Request.Tenant != tenant || s.Removed:
			return 0, nil, errNotFound
		}
		return http.StatusOK, ui.TimelineOf(id, events), nil
	})
}

// throughput is GET /ui/throughput: the tenant's bytes stored per minute
// over the last hour, approximated from one listing (see ui.Throughput).
func (h *Handler) throughput(w http.ResponseWriter, r *http.Request) {
	h.answer(w, r, func() (int, any, error) {
		tenant, err := h.authenticate(r, schemeBearer)
		if err != nil {
			return 0, nil, err
		}
		if len(r.URL.RawQuery) > 0 {
			return 0, nil, badRequest("this route takes no query parameters")
		}
		now := h.now()
		res, err := h.views.List(r.Context(), ui.ThroughputQuery(tenant, now))
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, ui.ThroughputOf(res, now), nil
	})
}
