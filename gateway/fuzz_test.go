package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// Fuzz tests for every parser of outside input. Each checks that the parser
// never panics, that a refusal is a 400 with details, and that what it
// accepts keeps the limits it promises. Their seeds run with the normal
// tests; `make fuzz` (or go test -fuzz) explores further.

func refusedAs400(t *testing.T, err error) {
	t.Helper()
	status, reason, details := errorStatus(err)
	if status != http.StatusBadRequest || reason != api.ReasonBadRequest || details == "" {
		t.Fatalf("refusal %v answers %d %s %q, want a 400 with details", err, status, reason, details)
	}
}

func FuzzParseCID(f *testing.F) {
	for _, s := range []string{"QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
		"bafybeifpaez32hlrz5tmr7scndxtjgw3auuloyuyxblynqmjw5saapewmu", "zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA",
		"f01551220", "bafkqaaa", "", "b", "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8",
		"b\nafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy\r\n",
		"mAVUSIMfQFIkICFjFAAZYNsZY+EemylnkRkMJkpXyfAQOS7vO\n", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy\x1b[31m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCID(s)
		if err != nil {
			refusedAs400(t, badRequest("cid: %v", err))
			return
		}
		if strings.ContainsFunc(s, notInCID) {
			t.Fatalf("accepted %q, which holds whitespace or a control character", s)
		}
		canon := canonicalCID(c)
		if theirs, err := views.CanonicalCID(s); err != nil || theirs != canon {
			t.Fatalf("canonical form of %q: gateway %q, views %q (%v): filters would miss", s, canon, theirs, err)
		}
		back, err := cid.Decode(canon)
		if err != nil || !back.Equals(cid.NewCidV1(c.Type(), c.Hash())) {
			t.Fatalf("canonical %q of %q does not decode to the same CID: %v", canon, s, err)
		}
		if again, err := parseCID(canon); err != nil || !again.Equals(back) {
			t.Fatalf("canonical form %q of accepted %q is refused: %v", canon, s, err)
		}
	})
}

func FuzzParseOrigins(f *testing.F) {
	f.Add("/ip4/8.8.8.8/tcp/4001/p2p/"+peerA, "/ip4/127.0.0.1/tcp/4001/p2p/"+peerA, false)
	f.Add("/dns4/example.com/tcp/443/wss/p2p/"+peerB, "/ip6/::ffff:10.0.0.1/tcp/1/p2p/"+peerA, true)
	f.Add("/p2p/"+peerA, "/ip4/8.8.8.8/tcp/4001", false)
	f.Add("/unix/a/p2p/"+peerA, "", false)
	f.Fuzz(func(t *testing.T, a, b string, allowPrivate bool) {
		kept, err := parseOrigins([]string{a, b}, allowPrivate)
		if err != nil {
			return
		}
		if len(kept) > 2 {
			t.Fatalf("kept %d of 2", len(kept))
		}
		for _, k := range kept {
			m, err := ma.NewMultiaddr(k)
			if err != nil || m.String() != k {
				t.Fatalf("kept %q, which does not round-trip: %v", k, err)
			}
			if _, err := peerOf(m); err != nil {
				t.Fatalf("kept %q: %v", k, err)
			}
			if !allowPrivate && !dialsOut(m) {
				t.Fatalf("kept %q, which dials into a private network", k)
			}
		}
	})
}

func FuzzParsePin(f *testing.F) {
	for _, s := range []string{
		`{"cid":"bafybeifpaez32hlrz5tmr7scndxtjgw3auuloyuyxblynqmjw5saapewmu"}`,
		`{"cid":"QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN","name":"x","origins":["/ip4/8.8.8.8/tcp/4001/p2p/` + peerA + `"],"meta":{"a":"b"}}`,
		`{"cid":null}`, `[]`, `{"cid":"x"} x`, `{"meta":{"":""}}`, "",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, allowPrivate bool) {
		in, err := parsePin(body, allowPrivate)
		if err != nil {
			refusedAs400(t, err)
			return
		}
		if _, err := parseCID(in.CID.Text); err != nil {
			t.Fatalf("accepted cid %q that does not parse: %v", in.CID.Text, err)
		}
		if utf8.RuneCountInString(in.Name) > MaxNameLength || !utf8.ValidString(in.Name) {
			t.Fatalf("accepted name %q", in.Name)
		}
		if len(in.Origins) > MaxOrigins {
			t.Fatalf("accepted %d origins", len(in.Origins))
		}
		if err := checkMeta(in.Meta); err != nil {
			t.Fatalf("accepted meta that breaks its limits: %v", err)
		}
	})
}

func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{"", "cid=QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN&status=queued,pinned&limit=5",
		"name=x&match=ipartial&before=2020-07-27T17:32:28.276Z&after=2020-07-27T17:32:28Z",
		`meta=%7B%22app_id%22%3A%22UUID%22%7D`, "limit=0", "status=", "cid=,", "name=%ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		lq, err := parseListQuery("t", q)
		if err != nil {
			refusedAs400(t, err)
			return
		}
		filtered := len(lq.CIDs) > 0 || lq.Name != "" || lq.Meta != nil || q.Has("status")
		if lq.Limit < 1 || lq.Limit > 1000 || len(lq.CIDs) > 10 || (len(lq.Statuses) == 0 && !filtered) || lq.Match == "" {
			t.Fatalf("accepted a query out of bounds: %+v", lq)
		}
		if utf8.RuneCountInString(lq.Name) > MaxNameLength {
			t.Fatalf("accepted a name of %d characters", utf8.RuneCountInString(lq.Name))
		}
	})
}

func FuzzParseClusterList(f *testing.F) {
	const a, b = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN", "bafybeifpaez32hlrz5tmr7scndxtjgw3auuloyuyxblynqmjw5saapewmu"
	for _, s := range []string{"cids=" + a + "," + b, "cids=", "cids", "cids=" + a + ",", "cids=," + a, "cids=" + a + ",," + b,
		"cids=" + a + "," + a, "cids=" + a + "&cids=" + a, "cids=" + a + "&local=true", "cids=%20" + a, "cids=b%0Aafybeifpaez32hlrz5tmr7scndxtjgw3auuloyuyxblynqmjw5saapewmu",
		"cids=" + a + "&cid=" + b, "cids=" + a + "%09"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		cids, canonical, err := parseClusterList(q)
		if err != nil {
			refusedAs400(t, err)
			return
		}
		if len(cids) > maxClusterCIDs || len(canonical) != len(cids) {
			t.Fatalf("accepted %d CIDs (%d canonical)", len(cids), len(canonical))
		}
		seen := map[string]bool{}
		for i, s := range cids {
			if s == "" || seen[s] || strings.ContainsFunc(s, notInCID) {
				t.Fatalf("accepted item %d %q of %q", i, s, raw)
			}
			seen[s] = true
			if c, err := parseCID(s); err != nil || canonicalCID(c) != canonical[i] {
				t.Fatalf("accepted %q: %v", s, err)
			}
		}
	})
}

func FuzzParseClusterAdd(f *testing.F) {
	f.Add("QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN", "origins=/ip4/8.8.8.8/tcp/4001/p2p/"+peerA+"&name=x&meta-a=b")
	f.Add("bafybeifpaez32hlrz5tmr7scndxtjgw3auuloyuyxblynqmjw5saapewmu", "mode=direct")
	f.Add("nope", "replication-min=-1&replication-max=-1&shard-size=0&local=false")
	f.Add("b\nafybeifpaez32hlrz5tmr7scndxtjgw3auuloyuyxblynqmjw5saapewmu", "origins=/p2p/"+peerA+",")
	f.Fuzz(func(t *testing.T, seg, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		c, err := clusterTarget("/pins/"+seg, RouteCID)
		var in pinInput
		if err == nil {
			in, err = parseClusterPin(c, q, false)
		}
		if err != nil {
			refusedAs400(t, err)
			return
		}
		if in.CID.Text != seg || len(in.Origins) > MaxOrigins || checkMeta(in.Meta) != nil || checkName(in.Name) != nil {
			t.Fatalf("accepted %q %q as %+v", seg, raw, in)
		}
	})
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer abc", "Basic YWxpY2U6c2VjcmV0", "Basic", "bearer  x", "Digest x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c, err := parseAuthorization(http.Header{"Authorization": {v}})
		if err != nil {
			return
		}
		if c.token == "" || (c.basic && c.user == "") || strings.HasPrefix(c.token, " ") {
			t.Fatalf("accepted %q as %+v", v, c)
		}
	})
}

func FuzzParseIdempotencyKey(f *testing.F) {
	for _, s := range []string{"abc", `"abc"`, `""`, "a b", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		key, ok, err := parseIdempotencyKey(http.Header{"Idempotency-Key": {v}})
		if err != nil {
			refusedAs400(t, err)
			return
		}
		if !ok || key == "" || len(key) > MaxIdempotencyKeyLength || strings.ContainsAny(key, " \"\\\x00") {
			t.Fatalf("accepted %q as %q", v, key)
		}
	})
}
