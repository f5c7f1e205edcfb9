package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// The ipfs-cluster routes, in the shapes ipfs-cluster v1.1.6's REST API
// answers with (api.ClusterPin, api.ClusterStatus, api.ClusterError), for a
// one-peer "cluster" whose peer is the first delegate. A CID is pinned once
// per tenant: its pin is the tenant's newest live request for it, however
// it was made (here, or through the Pinning Service API).
//
// What pickup cannot do (replication factors, shards, allocations to
// peers, expiry, direct pins' single block) ipfs-cluster's clients still
// send: those parameters are accepted and checked as ipfs-cluster checks
// them, and ignored (pickup keeps one copy of each whole DAG, for good).
// A direct pin is refused: pickup would fetch the whole DAG under it.

// clusterPinParams are the query parameters ipfs-cluster reads on its pin
// routes (PinOptions.FromQuery), besides the meta-<key> ones: pickup uses
// name, origins and meta-*, and checks and ignores the others.
func clusterPinParams() []string {
	return []string{"name", "origins", "mode", "replication", "replication-min", "replication-max",
		"shard-size", "user-allocations", "expire-at", "expire-in", "pin-update", "local"}
}

// metaPrefix starts the query parameters that carry a pin's metadata.
const metaPrefix = "meta-"

// parseClusterPin reads the query of a pin command for c.
func parseClusterPin(c cidInput, q url.Values, allowPrivate bool) (pinInput, error) {
	in := pinInput{CID: c}
	if err := checkClusterParams(q, clusterPinParams(), true); err != nil {
		return in, err
	}
	for name, v := range q {
		key, ok := strings.CutPrefix(name, metaPrefix)
		if !ok || key == "" { // ipfs-cluster skips an empty key
			continue
		}
		if in.Meta == nil {
			in.Meta = map[string]string{}
		}
		in.Meta[key] = v[0]
	}
	if err := checkIgnoredPinOptions(q); err != nil {
		return in, err
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

// checkClusterParams refuses a query parameter a route does not take, or
// one given twice. meta says whether meta-<key> parameters are taken.
func checkClusterParams(q url.Values, names []string, meta bool) error {
	for name, v := range q {
		switch {
		case meta && strings.HasPrefix(name, metaPrefix):
		case !contains(names, name):
			return badRequest("unknown query parameter %.80q (this route takes %s)", name, strings.Join(names, ", "))
		}
		if len(v) != 1 {
			return badRequest("%.80s given %d times, at most once", name, len(v))
		}
	}
	return nil
}

// checkIgnoredPinOptions checks the pin options pickup ignores as
// ipfs-cluster checks them, so that a request ipfs-cluster refuses is
// refused here too, and refuses a direct pin.
func checkIgnoredPinOptions(q url.Values) error {
	// ipfs-cluster reads any other mode as recursive.
	if q.Get("mode") == "direct" {
		return badRequest("mode direct: pickup pins whole DAGs (recursive) only; it would fetch and keep every block under the CID")
	}
	for _, name := range []string{"replication", "replication-min", "replication-max"} {
		if v := q.Get(name); v != "" {
			if _, err := strconv.Atoi(v); err != nil {
				return badRequest("parameter %s invalid: %.80q is not an integer (replication factors are accepted and ignored: pickup keeps one copy)", name, v)
			}
		}
	}
	if v := q.Get("shard-size"); v != "" {
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return badRequest("parameter shard-size invalid: %.80q is not a size in bytes (accepted and ignored: pickup does not shard)", v)
		}
	}
	if v := q.Get("expire-at"); v != "" {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return badRequest("expire-at cannot be parsed: %.80q is not an RFC 3339 time (accepted and ignored: pickup's pins do not expire)", v)
		}
	} else if v := q.Get("expire-in"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			return badRequest("expire-in cannot be parsed: %.80q is not a duration (accepted and ignored: pickup's pins do not expire)", v)
		case d < time.Second:
			return badRequest("expire-in duration too short: %s, at least 1s", d)
		}
	}
	if v := q.Get("pin-update"); v != "" {
		if strings.ContainsFunc(v, notInCID) {
			return badRequest("error decoding update option parameter: %.80q is not a CID", v)
		}
		if _, err := cid.Decode(v); err != nil {
			return badRequest("error decoding update option parameter: %.80q is not a CID: %v", v, err)
		}
	}
	return nil
}

// errClusterNotPinned is the 404 of a command on a CID the tenant does not
// pin, in ipfs-cluster's words (its state.ErrNotFound).
var errClusterNotPinned = &apiError{status: http.StatusNotFound, reason: api.ReasonNotFound,
	details: "pin is not part of the pinset"}

// clusterTarget returns the CID a request to a cluster route names in its
// path: /pins/{cid}, /pins/{cid}/recover, /allocations/{cid}, or
// /pins/{ipfs|ipld}/{cid}. pickup fetches nothing to answer, so it
// resolves neither IPNS names nor paths inside a DAG.
func clusterTarget(path, route string) (cidInput, error) {
	var text string
	switch route {
	case RouteCID:
		seg := path[len("/pins/"):]
		c, err := parseCID(seg)
		if err != nil {
			return cidInput{}, badRequest("%.80q is neither a request id (a UUID) nor a CID: %v", seg, err)
		}
		return cidInput{Text: seg, Canonical: canonicalCID(c)}, nil
	case RouteRecover:
		text = strings.TrimSuffix(path[len("/pins/"):], recoverSuffix)
	case RouteAllocation:
		text = path[len(allocationsPrefix):]
	case RouteClusterPath:
		ns, rest, _ := strings.Cut(path[len("/pins/"):], "/")
		rest = strings.TrimSuffix(rest, "/")
		switch {
		case ns == "ipns":
			return cidInput{}, badRequest("/ipns/%.80s: pickup pins CIDs and does not resolve IPNS names; pin the CID the name points to", rest)
		case strings.Contains(rest, "/"):
			return cidInput{}, badRequest("/%s/%.80s: pickup pins whole DAGs by their root CID and does not resolve paths inside them; pin the CID the path leads to", ns, rest)
		}
		text = rest
	}
	c, err := parseCID(text)
	if err != nil {
		return cidInput{}, badRequest("%v", err)
	}
	return cidInput{Text: text, Canonical: canonicalCID(c)}, nil
}

// clusterCommand begins a request of the cluster routes about the one CID
// its path names: it authenticates the tenant, reads the CID, checks the
// query against params (and meta-<key> ones, with meta), and waits until
// the views show the tenant's writes.
func (h *Handler) clusterCommand(r *http.Request, params []string, meta bool) (string, cidInput, error) {
	tenant, err := h.authenticate(r, schemeBasic)
	if err != nil {
		return "", cidInput{}, err
	}
	c, err := clusterTarget(r.URL.Path, Route(r))
	if err == nil {
		err = checkClusterParams(r.URL.Query(), params, meta)
	}
	if err == nil {
		err = h.fresh.await(r.Context(), tenant)
	}
	return tenant, c, err
}

// clusterAdd is POST /pins/{cid} and POST /pins/{ipfs|ipld}/{cid}. A
// second POST for a CID the tenant already pins (or is pinning) returns
// the existing pin; one that failed for good is queued again.
func (h *Handler) clusterAdd(w http.ResponseWriter, r *http.Request) {
	h.answer(w, r, func() (int, any, error) {
		tenant, err := h.authenticate(r, schemeBasic)
		if err != nil {
			return 0, nil, err
		}
		c, err := clusterTarget(r.URL.Path, Route(r))
		if err != nil {
			return 0, nil, err
		}
		in, err := parseClusterPin(c, r.URL.Query(), h.cfg.AllowPrivateOrigins)
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
		s, err := h.awaitDeadLetter(r, v.RequestID) // decide on the log, not the view
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

// clusterPin is ipfs-cluster's Pin of a request: recursive, of type pin,
// on every peer (replication -1), never expiring (the zero ExpireAt).
func (h *Handler) clusterPin(r pin.Requested) api.ClusterPin {
	meta := r.Meta
	if meta == nil {
		meta = map[string]string{}
	}
	origins := r.Origins
	if origins == nil {
		origins = []string{}
	}
	return api.ClusterPin{
		ReplicationFactorMin: -1, ReplicationFactorMax: -1, Name: r.Name, Mode: "recursive",
		Metadata: meta, Origins: origins, CID: r.CID, Type: "pin",
		Allocations: []string{}, MaxDepth: -1, Timestamp: api.Time{Time: r.Created},
	}
}

// requestOf is what clusterPin needs of a pin as the views show it.
func requestOf(v views.Pin) pin.Requested {
	return pin.Requested{CID: v.CID, Name: v.Name, Origins: v.Origins, Meta: v.Meta, Created: v.Created}
}

// clusterRemove is DELETE /pins/{cid} and DELETE /pins/{ipfs|ipld}/{cid}:
// every live request of the tenant for the CID is removed (ipfs-cluster
// holds one pin per CID), and the newest is the answer. A CID the tenant
// does not pin is 404.
func (h *Handler) clusterRemove(w http.ResponseWriter, r *http.Request) {
	h.answer(w, r, func() (int, any, error) {
		tenant, c, err := h.clusterCommand(r, clusterPinParams(), true)
		if err != nil {
			return 0, nil, err
		}
		live, err := h.liveByCID(r, tenant, c.Canonical, nil)
		if err != nil {
			return 0, nil, err
		}
		if len(live) == 0 {
			return 0, nil, errClusterNotPinned
		}
		for _, v := range live {
			if err := h.removeRequest(r.Context(), tenant, v.RequestID, uuid.Nil); err != nil && !errors.Is(err, errNotFound) {
				return 0, nil, err
			}
		}
		return http.StatusOK, h.clusterPin(requestOf(live[0])), nil
	})
}

// liveByCID returns the tenant's live requests for a canonical CID, newest
// first, in the given statuses (nil: any).
func (h *Handler) liveByCID(r *http.Request, tenant, canonical string, statuses []pin.Status) ([]views.Pin, error) {
	var out []views.Pin
	err := h.eachPin(r, views.ListQuery{Tenant: tenant, CIDs: []string{canonical}, Statuses: statuses}, func(v views.Pin) error {
		out = append(out, v)
		return nil
	})
	return out, err
}

// eachPin calls fn with every pin q selects, newest first, a page at a
// time (q.Limit is the page size; zero is the most a page holds). It stops
// at fn's first error and returns it.
func (h *Handler) eachPin(r *http.Request, q views.ListQuery, fn func(views.Pin) error) error {
	if q.Limit == 0 {
		q.Limit = views.MaxListLimit
	}
	for {
		res, err := h.views.List(r.Context(), q)
		if err != nil {
			return fmt.Errorf("list pins: %w", err)
		}
		for _, v := range res.Pins {
			if err := fn(v); err != nil {
				return err
			}
		}
		if len(res.Pins) < q.Limit {
			return nil
		}
		// Created is unique per tenant: the next page starts just past
		// this one.
		q.Before = res.Pins[len(res.Pins)-1].Created
	}
}

// clusterGet is GET /pins/{cid}.
func (h *Handler) clusterGet(w http.ResponseWriter, r *http.Request) {
	h.answer(w, r, func() (int, any, error) {
		tenant, c, err := h.clusterCommand(r, []string{"local"}, false)
		if err != nil {
			return 0, nil, err
		}
		st, err := h.clusterStatusOf(r, tenant, c)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, st, nil
	})
}

// clusterStatusOf tells the tenant's newest live request for a CID; a CID
// the tenant never asked for (or removed) is "unpinned", as ipfs-cluster
// says.
func (h *Handler) clusterStatusOf(r *http.Request, tenant string, c cidInput) (api.ClusterStatus, error) {
	v, err := h.newestLive(r, tenant, c.Canonical)
	if err != nil {
		return api.ClusterStatus{}, err
	}
	return h.clusterStatus(r.Context(), c.Text, v), nil
}

// newestLive returns the tenant's newest live request for a canonical CID,
// its pin in ipfs-cluster's pinset, or nil.
func (h *Handler) newestLive(r *http.Request, tenant, canonical string) (*views.Pin, error) {
	res, err := h.views.List(r.Context(), views.ListQuery{Tenant: tenant, CIDs: []string{canonical}, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("newest pin of %s: %w", canonical, err)
	}
	if len(res.Pins) == 0 {
		return nil, nil
	}
	return &res.Pins[0], nil
}

// clusterStatus is ipfs-cluster's GlobalPinInfo of a pin (nil: none),
// asked for as text: the pin's status on the one peer, named by the first
// delegate's peer id, with the delegates as its addresses. ipfs-cluster's
// shapes need no address: with no fetcher live, the peer is
// noDelegatePeer, with none.
func (h *Handler) clusterStatus(ctx context.Context, text string, v *views.Pin) api.ClusterStatus {
	now := api.Time{Time: h.now()}
	id, addrs := noDelegatePeer(), []string{}
	if delegates, err := h.delegates(ctx); err == nil {
		first, _ := parseMultiaddr(delegates[0]) // delegates parsed them all
		id, _ = peerOf(first)
		addrs = delegates
	}
	peer := api.ClusterPeerInfo{PeerName: "pickup", IPFSPeerID: id, IPFSPeerAddresses: addrs,
		Status: api.TrackerUnpinned, Timestamp: now}
	st := api.ClusterStatus{CID: text, Allocations: []string{}, Origins: []string{}, Created: now}
	if v != nil {
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
	st.PeerMap = map[string]api.ClusterPeerInfo{id: peer}
	return st
}

// clusterRecover is POST /pins/{cid}/recover: the tenant's live requests
// for the CID that failed for good are queued again (what ipfs-cluster's
// recover does for a pin in error), and the answer is the CID's status
// after; any other pin is left as it is, and a CID the tenant does not pin
// is "unpinned", as ipfs-cluster answers.
func (h *Handler) clusterRecover(w http.ResponseWriter, r *http.Request) {
	h.answer(w, r, func() (int, any, error) {
		tenant, c, err := h.clusterCommand(r, []string{"local"}, false)
		if err != nil {
			return 0, nil, err
		}
		failed, err := h.liveByCID(r, tenant, c.Canonical, []pin.Status{pin.StatusFailed})
		if err != nil {
			return 0, nil, err
		}
		for _, v := range failed {
			if _, err := h.recoverPin(r, tenant, v.RequestID); err != nil {
				return 0, nil, err
			}
		}
		if err := h.fresh.await(r.Context(), tenant); err != nil {
			return 0, nil, err
		}
		st, err := h.clusterStatusOf(r, tenant, c)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, st, nil
	})
}

// recoverPin queues pin id again if it failed for good, and reports
// whether it did.
func (h *Handler) recoverPin(r *http.Request, tenant string, id uuid.UUID) (bool, error) {
	s, err := h.awaitDeadLetter(r, id)
	if err != nil {
		return false, err
	}
	if own(s, tenant) != nil || s.Phase != pin.PhaseDeadLettered {
		return false, nil // removed, or retried already, since the view was read
	}
	after, err := h.requeue(r.Context(), tenant, s)
	if err != nil {
		return false, err
	}
	return after.Phase != pin.PhaseDeadLettered, nil
}

// awaitDeadLetter reads pin id from its stream. A pin that failed for good
// shows as failed (pin_error) from its failure on, but it is the retry
// decider that dead-letters it, within its period (1 s by default), and
// only a dead-lettered pin can be queued again: so that a recover right
// after the failure is not a silent no-op, it waits for that, up to
// ReadWait (2 s by default), and returns the pin as it then is.
func (h *Handler) awaitDeadLetter(r *http.Request, id uuid.UUID) (pin.State, error) {
	deadline := time.Now().Add(h.cfg.ReadWait)
	pause := time.Millisecond
	for {
		s, err := h.readPin(r.Context(), id)
		awaiting := err == nil && s.Phase == pin.PhaseFailed && s.LastFailure != nil && s.LastFailure.Permanent && !s.Removed
		if !awaiting || !time.Now().Add(pause).Before(deadline) {
			return s, err
		}
		t := time.NewTimer(pause)
		select {
		case <-r.Context().Done():
			t.Stop()
			return s, r.Context().Err()
		case <-t.C:
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// clusterAllocation is GET /allocations/{cid}: the tenant's pin of the
// CID, as ipfs-cluster's Pin, or 404.
func (h *Handler) clusterAllocation(w http.ResponseWriter, r *http.Request) {
	h.answer(w, r, func() (int, any, error) {
		tenant, c, err := h.clusterCommand(r, nil, false)
		if err != nil {
			return 0, nil, err
		}
		v, err := h.newestLive(r, tenant, c.Canonical)
		switch {
		case err != nil:
			return 0, nil, err
		case v == nil:
			return 0, nil, errClusterNotPinned
		}
		return http.StatusOK, h.clusterPin(requestOf(*v)), nil
	})
}
