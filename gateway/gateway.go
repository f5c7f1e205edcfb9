// Package gateway is pickup's HTTP face: the IPFS Pinning Service API
// (reference/ipfs-pinning-service.yaml, all of it) and the
// ipfs-cluster-compatible routes web3-storage/pickup served, as
// ipfs-cluster's own CLI and Go client use them. Commands append
// their events to the log, decided on the pin's stream as the log holds it;
// reads answer from the projections' views, after waiting (briefly and
// boundedly) for the views to reach the writes a client must see.
//
// The Handler is a plain http.Handler built from small interfaces, so the
// same code serves a plain server (`pickup gateway`) and AWS Lambda (package
// gateway/awslambda). The package is WASM-clean: no sockets, files or cgo;
// it builds for GOOS=js and passes its tests under GOOS=wasip1.
//
// # Routes
//
//	GET    /pins                   PSA listing (none of cids, local, filter)
//	POST   /pins                   PSA add (202); honours Idempotency-Key
//	POST   /pins?cid=…             the same with the DAG as a CAR body (Content-Type application/vnd.ipld.car; upload.go)
//	GET    /pins/{requestid}       PSA status
//	POST   /pins/{requestid}       PSA replace (202): a new request id; the old one is gone
//	DELETE /pins/{requestid}       PSA remove (202)
//	GET    /pins/{requestid}/timeline  the pin's timeline from its events (for the status page)
//	GET    /                       the status page (package gateway/ui), its assets under /ui/
//	GET    /ui/throughput          the tenant's bytes stored per minute over the last hour (for the page)
//
// and ipfs-cluster's REST API, as ipfs-cluster v1.1.6 serves it for its pin
// commands (ipfs-cluster-ctl and its Go client), for a one-peer cluster
// (cluster*.go):
//
//	POST   /pins/{cid}             pin (200, a Pin); again for a failed pin queues it again
//	POST   /pins/{ipfs|ipld}/{cid} the same (what ipfs-cluster-ctl sends)
//	DELETE /pins/{cid}             unpin (200, the Pin): every live request of the tenant for the CID
//	DELETE /pins/{ipfs|ipld}/{cid} the same
//	GET    /pins/{cid}             status of one CID (a GlobalPinInfo)
//	GET    /pins?cids=a,b          status of several, in the order asked, one JSON object a line
//	GET    /pins?filter=&cids=     status of every pin, filtered by ipfs-cluster's status names
//	POST   /pins/{cid}/recover     queue a failed pin again; its status
//	POST   /pins/recover           the same for every failed pin; their statuses, one a line
//	GET    /allocations            every pin (ipfs-cluster's pinset), one Pin a line
//	GET    /allocations/{cid}      one pin
//
// The rest of ipfs-cluster's API (/id, /version, /peers, /add, /health,
// /monitor/metrics, /ipfs/gc, /token) is not served: 404, saying so.
//
// /pins/{x} is a request id when x is a UUID in its canonical 36-character
// form, and a CID otherwise: a CID never has that form (a CIDv0 is 46
// characters of base58; a CIDv1 starts with a multibase prefix and is longer).
// Errors on the ipfs-cluster routes are ipfs-cluster's {"code","message"},
// elsewhere the Pinning Service API's Failure.
//
// # Authorization
//
// `Authorization: Bearer <token>` (the PSA's scheme) or `Basic
// base64(<tenant>:<token>)` (what ipfs-cluster clients send) on every route;
// a 401 carries the spec's body and a challenge in the route's scheme.
// Tokens are looked up by their SHA-256 and remembered for
// Config.TokenCacheTTL. Another tenant's pin is not found (404), exactly
// like a pin that never existed.
//
// # Listings
//
// GET /pins takes the spec's cid (up to 10, any CID version or base), name
// and match, status, before and after (RFC 3339), limit (1 to 1000, default
// 10) and meta (a JSON object), and refuses any other parameter. Without a
// status it lists pinned pins only, as the spec says for a listing "when no
// filter is provided"; a search by cid, name or meta finds pins in every
// status. created has microsecond precision and is unique per tenant: page
// with before=<oldest created>, and stop when count equals the results
// read.
//
// # Idempotency
//
// A POST /pins (or a replace) with an Idempotency-Key header gets a request
// id derived from the tenant and the key (KeyedRequestID): a retry finds
// that stream, appends nothing and answers the first answer; the same key
// with a different Pin is refused with 422 IDEMPOTENCY_KEY_REUSED.
//
// # Delegates
//
// Every PinStatus names 1 to 20 delegates: Config.Delegates when set, or
// else the live fetchers Deps.Delegates names (presence.Directory, wired
// in cmd/pickup: the gateway imports no presence type). With none, the
// Pinning Service API's routes answer 503 NO_DELEGATES with Retry-After
// and change nothing; ipfs-cluster's routes, whose shapes need no address,
// answer as a peer that is no node's (noDelegatePeer).
//
// # Info
//
// PinStatus.info holds strings under the api.Info* keys: attempt, bytes, blocks
// and source while pinning; car_cid and car_bytes once pinned;
// failure_reason, failure_message and failures after a failure, retry_at
// while a retry waits; status_details, a line for people, always.
package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/gateway/ui"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// Log is what the gateway needs of the event log. eventlog.Store is one.
type Log interface {
	// Append writes events to stream if it is in the expected state (see
	// eventlog.Store.Append for every outcome).
	Append(ctx context.Context, stream string, expected eventlog.Expected, events ...eventlog.Proposed) (eventlog.AppendResult, error)
	// ReadStream returns up to limit events of stream from revision from.
	ReadStream(ctx context.Context, stream string, from uint64, dir eventlog.Direction, limit int) ([]eventlog.Event, error)
	// Head returns the position of the last event in the log.
	Head(ctx context.Context) (eventlog.Position, error)
}

// Views is what the gateway reads of pins. Implementations are safe for
// concurrent use; views.Reader is one.
type Views interface {
	// Pin returns the tenant's live pin request, or an error wrapping
	// views.ErrNotFound.
	Pin(ctx context.Context, tenant string, requestID uuid.UUID) (views.Pin, error)
	// List returns a page of the tenant's live pins matching q, newest
	// first, and the count of all matches.
	List(ctx context.Context, q views.ListQuery) (views.ListResult, error)
	// NewestByCID returns the tenant's newest request for a canonical CID,
	// removed or not, or an error wrapping views.ErrNotFound.
	NewestByCID(ctx context.Context, tenant, canonicalCID string) (views.Pin, error)
}

// Delegates names the live fetchers. presence.Directory is one.
type Delegates interface {
	// Delegates returns the multiaddrs (each ending in /p2p/<peer id>) at
	// which live fetchers take a pin's DAG, in the order to answer them;
	// none when no fetcher is live. It is called on every answer that
	// names delegates: an implementation caches.
	Delegates(ctx context.Context) ([]string, error)
}

// Deps are the parts a Handler is built from. A views.Reader serves as
// Views, Tokens and Checkpoints at once.
type Deps struct {
	Log         Log
	Views       Views
	Tokens      Tokens
	Checkpoints Checkpoints
	// Delegates names the live fetchers, when Config.Delegates is empty;
	// nil names none.
	Delegates Delegates
	// Uploads is the uploads area that CAR uploads (POST /pins with
	// Content-Type application/vnd.ipld.car) are received into; nil
	// refuses them (413, as on AWS Lambda, whose request bodies are capped
	// at 6 MB).
	Uploads Uploads
	// Pinned tells whether a root is pinned already, so that a CAR upload
	// of it is answered without reading its body; nil reads every body.
	Pinned Pinned
	// Logger receives the gateway's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Handler serves the API. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	log    *slog.Logger
	events Log
	// pins is the write path of pin streams: every command commits
	// through it.
	pins   *pinlog.Committer
	views  Views
	tokens *tokenCache
	fresh  *freshness
	clock  *createdClock
	now    func() time.Time
	// live names the live fetchers when no delegates are configured.
	live Delegates
	// page is the status page served at /.
	page *ui.Page
	// uploads and pinned are Deps'.
	uploads Uploads
	pinned  Pinned
}

// New returns a Handler, or an error if cfg does not validate or a part is
// missing.
func New(cfg Config, d Deps) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if d.Log == nil || d.Views == nil || d.Tokens == nil || d.Checkpoints == nil {
		return nil, fmt.Errorf("gateway: Log, Views, Tokens and Checkpoints are all required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	logger := d.Logger.With(slog.String("component", "gateway"))
	delegates := make([]string, len(cfg.Delegates))
	for i, s := range cfg.Delegates {
		m, _ := parseMultiaddr(s) // Validate parsed them all
		delegates[i] = m.String()
	}
	cfg.Delegates = delegates
	page, err := ui.New()
	if err != nil {
		return nil, err
	}
	return &Handler{
		cfg:    cfg,
		log:    logger,
		events: d.Log,
		pins:   pinlog.New(d.Log, d.Now),
		views:  guardedViews{d.Views},
		tokens: &tokenCache{lookup: guardedTokens{d.Tokens}, ttl: cfg.TokenCacheTTL, now: d.Now, entries: map[[32]byte]tokenEntry{}},
		fresh: &freshness{mode: cfg.Consistency, log: d.Log, views: guardedCheckpoints{d.Checkpoints}, wait: cfg.ReadWait,
			logger: logger, latest: map[string]eventlog.Position{}},
		clock:   &createdClock{now: d.Now},
		now:     d.Now,
		live:    d.Delegates,
		page:    page,
		uploads: d.Uploads,
		pinned:  d.Pinned,
	}, nil
}

// ServeHTTP routes a request (see the package documentation).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.writeError(w, r, fmt.Errorf("panic: %v", p))
		}
	}()
	w.Header().Set("Cache-Control", "no-store")
	switch route := Route(r); route {
	case RoutePins:
		switch r.Method {
		case http.MethodGet:
			h.list(w, r)
		case http.MethodPost:
			if isCAR(r) {
				h.addCAR(w, r)
				return
			}
			h.add(w, r)
		default:
			h.methodNotAllowed(w, r, "GET, POST")
		}
	case RouteRequest:
		id, _ := requestID(r.URL.Path[len("/pins/"):])
		switch r.Method {
		case http.MethodGet:
			h.get(w, r, id)
		case http.MethodPost:
			h.replace(w, r, id)
		case http.MethodDelete:
			h.remove(w, r, id)
		default:
			h.methodNotAllowed(w, r, "GET, POST, DELETE")
		}
	case RouteTimeline:
		id, _ := timelinePath(r.URL.Path)
		if r.Method != http.MethodGet {
			h.methodNotAllowed(w, r, "GET")
			return
		}
		h.timeline(w, r, id)
	case RoutePage, RouteUI:
		h.servePage(w, r)
	default:
		if ClusterRoute(route) {
			h.serveCluster(w, r, route)
			return
		}
		h.writeError(w, r, errNotFound)
	}
}

// requestID reads a path segment as a request id: a UUID in its canonical
// 36-character form, which no CID has.
func requestID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	h.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, reason: api.ReasonMethodNotAllowed,
		details: fmt.Sprintf("%s %s is not served; allowed: %s", r.Method, r.URL.Path, allow)})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"reason":"INTERNAL_SERVER_ERROR","details":"Unexpected internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
