package gateway_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/gateway"
)

// wantClusterError checks an error answer of the ipfs-cluster routes:
// ipfs-cluster's {"code","message"}, code the status, the message naming
// the reason; never the Pinning Service API's shape.
func (r response) wantClusterError(t testing.TB, status int, message string) {
	t.Helper()
	var e map[string]any
	r.want(t, status, &e)
	if len(e) != 2 || e["code"] != float64(status) || !strings.Contains(e["message"].(string), message) {
		t.Fatalf("error %s, want {\"code\":%d,\"message\":...%q...}", r.body, status, message)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q, want application/json", ct)
	}
}

// TestClusterBadInput: every refusal on the ipfs-cluster routes is in
// ipfs-cluster's error shape, with its status as code and the reason in the
// message, and changes nothing; the parameters ipfs-cluster's clients send
// and pickup ignores are checked as ipfs-cluster checks them.
func TestClusterBadInput(t *testing.T) {
	s, base, c := setup(t, gateway.Config{})
	cl := basic(t, base, "alice", strings.TrimPrefix(c.auth, "Bearer "))
	good, other := newCID(t).String(), newCID(t).String()
	cl.do(http.MethodPost, "/pins/"+other, "").want(t, http.StatusOK, nil)
	many := make([]string, 1001)
	for i := range many {
		many[i] = newCID(t).String()
	}
	q := url.QueryEscape
	newline := "b\n" + good[1:]
	md5 := "bafk5kaiqlvauakv4jmvhnolrtwiraf6fsi" // a hash IPFS no longer accepts as proof
	for _, tc := range []struct {
		name, method, path string
		c                  client
		status             int
		message            string
	}{
		// POST /pins/{cid} and /pins/ipfs/{cid}
		{"bad cid", "POST", "/pins/notacid", cl, 400, `"notacid" is neither a request id (a UUID) nor a CID`},
		{"bad cid in a path", "POST", "/pins/ipfs/notacid", cl, 400, `"notacid" is not a CID`},
		{"insecure hash", "POST", "/pins/ipfs/" + md5, cl, 400, "md5"},
		{"ipns", "POST", "/pins/ipns/example.com", cl, 400, "does not resolve IPNS names"},
		{"a path inside a DAG", "POST", "/pins/ipfs/" + good + "/a/b.txt", cl, 400, "does not resolve paths inside them"},
		{"ipld path inside a DAG", "DELETE", "/pins/ipld/" + good + "/a", cl, 400, "does not resolve paths"},
		{"bad origin", "POST", "/pins/" + good + "?origins=nope", cl, 400, `origins[0] "nope" is not a multiaddr`},
		{"origin without peer", "POST", "/pins/ipfs/" + good + "?origins=" + q("/ip4/8.8.8.8/tcp/1"), cl, 400, "does not end with /p2p/<peer id>"},
		{"origins empty item", "POST", "/pins/" + good + "?origins=" + q("/p2p/"+peerA+","), cl, 400, "origins: empty item"},
		{"direct mode", "POST", "/pins/" + good + "?mode=direct", cl, 400, "recursive"},
		{"unknown option", "POST", "/pins/" + good + "?colour=red", cl, 400, `unknown query parameter "colour"`},
		{"repeated option", "POST", "/pins/" + good + "?name=a&name=b", cl, 400, "name given 2 times"},
		{"long name", "POST", "/pins/" + good + "?name=" + strings.Repeat("x", 256), cl, 400, "name: 256 characters, at most 255"},
		{"replication not a number", "POST", "/pins/ipfs/" + good + "?replication-min=two", cl, 400, "parameter replication-min invalid"},
		{"replication override not a number", "POST", "/pins/ipfs/" + good + "?replication=x", cl, 400, "parameter replication invalid"},
		{"negative shard size", "POST", "/pins/ipfs/" + good + "?shard-size=-1", cl, 400, "parameter shard-size invalid"},
		{"bad expire-at", "POST", "/pins/ipfs/" + good + "?expire-at=tomorrow", cl, 400, "expire-at cannot be parsed"},
		{"bad expire-in", "POST", "/pins/ipfs/" + good + "?expire-in=soon", cl, 400, "expire-in cannot be parsed"},
		{"short expire-in", "POST", "/pins/ipfs/" + good + "?expire-in=10ms", cl, 400, "expire-in duration too short"},
		{"bad pin-update", "POST", "/pins/ipfs/" + good + "?pin-update=nope", cl, 400, "error decoding update option parameter"},
		{"path: a newline", "POST", "/pins/" + url.PathEscape(newline), cl, 400, "whitespace"},
		{"path: a tab", "GET", "/pins/" + url.PathEscape(good+"\t"), cl, 400, "whitespace"},
		// GET /pins/{cid}
		{"status: unknown parameter", "GET", "/pins/" + good + "?name=x", cl, 400, `unknown query parameter "name"`},
		// GET /pins?cids=
		{"list: bad cid", "GET", "/pins?cids=" + good + ",nope", cl, 400, `cids: "nope" is not a CID`},
		{"list: trailing comma", "GET", "/pins?cids=" + good + ",", cl, 400, "cids: empty item"},
		{"list: leading comma", "GET", "/pins?cids=," + good, cl, 400, "cids: empty item"},
		{"list: doubled comma", "GET", "/pins?cids=" + good + ",," + other, cl, 400, "cids: empty item"},
		{"list: repeated", "GET", "/pins?cids=" + good + "," + other + "," + good, cl, 400, "given twice"},
		{"list: repeated across parameters", "GET", "/pins?cids=" + good + "&cids=" + good, cl, 400, "given twice"},
		{"list: empty parameter beside a good one", "GET", "/pins?cids=" + good + "&cids=", cl, 400, "cids: empty item"},
		{"list: too many", "GET", "/pins?cids=" + strings.Join(many, ","), cl, 400, "1001 CIDs, at most 1000"},
		{"list: a space", "GET", "/pins?cids=" + q(good+", "+other), cl, 400, "whitespace"},
		{"list: a newline", "GET", "/pins?cids=" + q(newline), cl, 400, "whitespace"},
		{"list: a tab", "GET", "/pins?cids=" + q(good+"\t"), cl, 400, "whitespace"},
		{"list: an unknown parameter", "GET", "/pins?cids=" + good + "&cid=" + other, cl, 400, "unknown query parameter"},
		{"list: a PSA parameter beside filter", "GET", "/pins?filter=pinned&status=pinned", cl, 400, `unknown query parameter "status"`},
		{"list: unknown filter", "GET", "/pins?local=false&filter=lost&cids=", cl, 400, `invalid filter value "lost"`},
		{"list: undefined filter", "GET", "/pins?filter=undefined", cl, 400, "invalid filter value"},
		// GET /allocations
		{"allocations: unknown filter", "GET", "/allocations?filter=sharded", cl, 400, `invalid filter value "sharded"`},
		{"allocations: unknown parameter", "GET", "/allocations?cids=" + good, cl, 400, `unknown query parameter "cids"`},
		{"allocation: bad cid", "GET", "/allocations/nope", cl, 400, `"nope" is not a CID`},
		{"allocation: not pinned", "GET", "/allocations/" + good, cl, 404, "pin is not part of the pinset"},
		// recover
		{"recover: bad cid", "POST", "/pins/nope/recover", cl, 400, `"nope" is not a CID`},
		{"recover: unknown parameter", "POST", "/pins/" + good + "/recover?force=true", cl, 400, `unknown query parameter "force"`},
		{"recover all: unknown parameter", "POST", "/pins/recover?cids=" + good, cl, 400, `unknown query parameter "cids"`},
		// DELETE
		{"unpin: not pinned", "DELETE", "/pins/" + good, cl, 404, "pin is not part of the pinset"},
		{"unpin path: not pinned", "DELETE", "/pins/ipfs/" + good, cl, 404, "pin is not part of the pinset"},
		{"unpin: bad cid", "DELETE", "/pins/ipfs/nope", cl, 400, `"nope" is not a CID`},
		// methods
		{"method on a cid", "PUT", "/pins/" + good, cl, 405, "allowed: GET, POST, DELETE"},
		{"method on a path", "GET", "/pins/ipfs/" + good, cl, 405, "allowed: POST, DELETE"},
		{"method on recover", "GET", "/pins/" + good + "/recover", cl, 405, "allowed: POST"},
		{"method on recover all", "GET", "/pins/recover", cl, 405, "allowed: POST"},
		{"method on allocations", "POST", "/allocations", cl, 405, "allowed: GET"},
		{"method on an allocation", "DELETE", "/allocations/" + good, cl, 405, "allowed: GET"},
		// the rest of ipfs-cluster's API
		{"id", "GET", "/id", cl, 404, "pickup does not serve ipfs-cluster's GET /id"},
		{"version", "GET", "/version", cl, 404, "it serves the pin commands"},
		{"peers", "GET", "/peers", cl, 404, "does not serve ipfs-cluster's GET /peers"},
		{"add", "POST", "/add?local=true", cl, 404, "does not serve ipfs-cluster's POST /add"},
		{"ipfs gc", "POST", "/ipfs/gc", cl, 404, "does not serve"},
		// authorization
		{"no credentials", "POST", "/pins/ipfs/" + good, client{t: t, base: base}, 401, "unauthorized"},
		{"wrong token", "GET", "/pins?local=false&filter=&cids=", basic(t, base, "alice", "nope"), 401, "the token is missing or invalid"},
		{"another tenant's name", "GET", "/pins/" + good, basic(t, base, "bob", strings.TrimPrefix(c.auth, "Bearer ")), 401, "Basic credentials are <tenant>:<token>"},
		{"wrong token on allocations", "GET", "/allocations", basic(t, base, "alice", "nope"), 401, "unauthorized"},
		{"wrong token on recover", "POST", "/pins/recover", basic(t, base, "alice", "nope"), 401, "unauthorized"},
		{"wrong token on unpin", "DELETE", "/pins/ipfs/" + other, basic(t, base, "alice", "nope"), 401, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, _ := s.Log.Head(context.Background())
			r := tc.c.do(tc.method, tc.path, "")
			r.wantClusterError(t, tc.status, tc.message)
			if tc.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic realm=") {
				t.Errorf("WWW-Authenticate %q, want a Basic challenge", r.header.Get("WWW-Authenticate"))
			}
			if after, _ := s.Log.Head(context.Background()); after != head {
				t.Fatalf("refused request appended to the log (%d -> %d)", head, after)
			}
		})
	}
	// The Pinning Service API's routes keep their own shape beside them.
	c.do(http.MethodGet, "/pins/a/b", "").wantError(t, http.StatusNotFound, api.ReasonNotFound, "")
	c.do(http.MethodGet, "/pins?stats=pinned", "").wantError(t, http.StatusBadRequest, api.ReasonBadRequest, `unknown query parameter "stats"`)
	client{t: t, base: base}.do(http.MethodGet, "/pins", "").wantError(t, http.StatusUnauthorized, api.ReasonUnauthorized, "Access token is missing or invalid")
}
