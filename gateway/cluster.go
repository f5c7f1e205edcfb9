package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// The ipfs-cluster-compatible routes, in the shapes web3-storage/pickup
// answered with (api.ClusterPin, api.ClusterStatus), for a one-peer
// "cluster" whose peer is the first delegate.

// clusterAddParams are the query parameters ipfs-cluster clients send with
// POST /pins/{cid}. pickup uses name, origins and meta-*; it accepts the
// others and ignores them, since it keeps one copy of a whole DAG whatever
// they say, but refuses modes it cannot honour.
func clusterAddParams() []string {
	return []string{"name", "origins", "mode", "replication-min", "replication-max",
		"shard-size", "user-allocations", "expire-at", "pin-update", "local"}
}

// parseClusterAdd reads POST /pins/{cid}.
func parseClusterAdd(seg string, q url.Values, allowPrivate bool) (pinInput, error) {
	c, err := parseCID(seg)
	if err != nil {
		return pinInput{}, badRequest("%q is neither a request id (a UUID) nor a CID: %v", seg, err)
	}
	in := pinInput{CID: cidInput{Text: seg, Canonical: canonicalCID(c)}}
	for name, v := range q {
		switch {
		case strings.HasPrefix(name, "meta-"):
			if len(v) != 1 {
				return in, badRequest("%s given %d times, at most once", name, len(v))
			}
			if in.Meta == nil {
				in.Meta = map[string]string{}
			}
			in.Meta[strings.TrimPrefix(name, "meta-")] = v[0]
		case !contains(clusterAddParams(), name):
			return in, badRequest("unknown query parameter %q (POST /pins/{cid} takes origins, name and meta-<key>)", name)
		case len(v) != 1:
			return in, badRequest("%s given %d times, at most once", name, len(v))
		}
	}
	if mode := q.Get("mode"); mode != "" && mode != "recursive" {
		return in, badRequest("mode %q: pickup pins whole DAGs (recursive) only", mode)
	}
	if name := q.Get("name"); name != "" {
		if err := checkName(name); err != nil {
			return in, badRequest("name: %v", err)
		}
		in.Name = name
	}
	if err := checkMeta(in.Meta); err != nil {
		return in, badRequest("meta: %v", err)
	}
	if s := q.Get("origins"); s != "" {
		origins, err := splitList("origins", []string{s})
		if err != nil {
			return in, err
		}
		if in.Origins, err = parseOrigins(origins, allowPrivate); err != nil {
			return in, badRequest("%v", err)
		}
	}
	return in, nil
}

// clusterAdd is POST /pins/{cid}. A second POST for a CID the tenant already
// pins (or is pinning) returns the existing pin; one that failed for good is
// queued again.
func (h *Handler) clusterAdd(w http.ResponseWriter, r *http.Request, seg string) {
	h.answer(w, r, func() (int, any, error) {
		tenant, err := h.authenticate(r, schemeBasic)
		if err != nil {
			return 0, nil, err
		}
		in, err := parseClusterAdd(seg, r.URL.Query(), h.cfg.AllowPrivateOrigins)
		if err != nil {
			return 0, nil, err
		}
		rec, err := h.pinCID(r, tenant, in)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, h.clusterPin(rec), nil
	})
}

// pinCID finds the tenant's live request for the CID, or makes one.
func (h *Handler) pinCID(r *http.Request, tenant string, in pinInput) (pin.Requested, error) {
	ctx := r.Context()
	if err := h.fresh.await(ctx, tenant); err != nil {
		return pin.Requested{}, err
	}
	prev := ""
	v, err := h.views.NewestByCID(ctx, tenant, in.CID.Canonical)
	switch {
	case err == nil:
		prev = v.RequestID.String()
		s, err := h.readPin(ctx, v.RequestID) // decide on the log, not the view
		if err != nil {
			return pin.Requested{}, err
		}
		if s.Exists && !s.Removed && s.Request.Tenant == tenant {
			if _, err := h.requeue(ctx, tenant, s); err != nil {
				return pin.Requested{}, err
			}
			return s.Request, nil
		}
	case !errors.Is(err, views.ErrNotFound):
		return pin.Requested{}, err
	}
	// The id follows from what was decided on, so that two of these racing
	// on the same state make one request, not two: the second append finds
	// the stream and answers from it.
	key := "cluster\x00" + in.CID.Canonical + "\x00" + prev
	rec, err := h.request(ctx, tenant, in, key, uuid.Nil)
	if errors.Is(err, errKeyReused) {
		// The racer asked with other options; its pin is the CID's pin.
		s, rerr := h.readPin(ctx, KeyedRequestID(tenant, key))
		if rerr != nil {
			return rec, rerr
		}
		return s.Request, nil
	}
	return rec, err
}

func (h *Handler) clusterPin(r pin.Requested) api.ClusterPin {
	meta := r.Meta
	if meta == nil {
		meta = map[string]string{}
	}
	origins := r.Origins
	if origins == nil {
		origins = []string{}
	}
	// The zero ExpireAt is ipfs-cluster's "never".
	return api.ClusterPin{
		ReplicationFactorMin: -1, ReplicationFactorMax: -1, Name: r.Name, Mode: "recursive",
		Metadata: meta, Origins: origins, CID: r.CID, Type: "pin",
		Allocations: []string{}, MaxDepth: -1, Timestamp: api.Time{Time: r.Created},
	}
}

// clusterGet is GET /pins/{cid}.
func (h *Handler) clusterGet(w http.ResponseWriter, r *http.Request, seg string) {
	h.answer(w, r, func() (int, any, error) {
		tenant, err := h.authenticate(r, schemeBasic)
		if err != nil {
			return 0, nil, err
		}
		c, err := parseCID(seg)
		if err != nil {
			return 0, nil, badRequest("%q is neither a request id (a UUID) nor a CID: %v", seg, err)
		}
		for name := range r.URL.Query() {
			if name != "local" {
				return 0, nil, badRequest("unknown query parameter %q (GET /pins/{cid} takes none)", name)
			}
		}
		if err := h.fresh.await(r.Context(), tenant); err != nil {
			return 0, nil, err
		}
		st, err := h.clusterStatusOf(r, tenant, seg, canonicalCID(c))
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, st, nil
	})
}

// clusterStatusOf tells the tenant's newest request for a CID; a CID the
// tenant never asked for (or removed) is "unpinned", as ipfs-cluster says.
func (h *Handler) clusterStatusOf(r *http.Request, tenant, text, canonical string) (api.ClusterStatus, error) {
	v, err := h.views.NewestByCID(r.Context(), tenant, canonical)
	if err != nil && !errors.Is(err, views.ErrNotFound) {
		return api.ClusterStatus{}, err
	}
	now := api.Time{Time: h.now()}
	peer := api.ClusterPeerInfo{PeerName: "pickup", IPFSPeerID: h.peer, IPFSPeerAddresses: h.cfg.Delegates,
		Status: api.TrackerUnpinned, Timestamp: now}
	st := api.ClusterStatus{CID: text, Allocations: []string{}, Origins: []string{}, Created: now}
	if err == nil {
		peer.Status = api.TrackerStatus(v.ClusterStatus)
		if v.Removed {
			peer.Status = api.TrackerUnpinned
		}
		peer.Timestamp = api.Time{Time: v.UpdatedAt}
		peer.AttemptCount = v.Attempt
		if peer.Status == api.TrackerPinError {
			peer.Error = fmt.Sprintf("%s: %s", v.FailureReason, v.FailureMessage)
		}
		st.Name, st.Created, st.Metadata = v.Name, api.Time{Time: v.Created}, v.Meta
		if v.Origins != nil {
			st.Origins = v.Origins
		}
	}
	st.PeerMap = map[string]api.ClusterPeerInfo{h.peer: peer}
	return st, nil
}

// maxClusterCIDs bounds GET /pins?cids=.
const maxClusterCIDs = 1000

// parseClusterList reads the query of GET /pins?cids=a,b: the CIDs as
// asked, and their canonical forms. Every refusal is a 400.
func parseClusterList(q url.Values) (cids, canonical []string, err error) {
	for name, v := range q {
		switch {
		case name == "local":
		case name != "cids":
			return nil, nil, badRequest("unknown query parameter %.80q (GET /pins?cids= takes only cids)", name)
		default:
			if cids, err = splitList("cids", v); err != nil {
				return nil, nil, err
			}
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

// clusterList is GET /pins?cids=a,b: one GlobalPinInfo per CID, in the
// order asked, as newline-delimited JSON.
func (h *Handler) clusterList(w http.ResponseWriter, r *http.Request) {
	tenant, err := h.authenticate(r, schemeBasic)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	cids, canonical, err := parseClusterList(r.URL.Query())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.fresh.await(r.Context(), tenant); err != nil {
		h.writeError(w, r, err)
		return
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	for i, s := range cids {
		st, err := h.clusterStatusOf(r, tenant, s, canonical[i])
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		enc.Encode(st)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	w.Write(out.Bytes())
}
