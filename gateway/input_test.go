package gateway

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

func TestParsePin(t *testing.T) {
	c := testCID(t, cid.DagProtobuf, mh.SHA2_256, "pin")
	origin := "/ip4/8.8.8.8/tcp/4001/p2p/" + peerA
	bigMeta := map[string]string{}
	for i := range MaxMetaKeys + 1 {
		bigMeta[fmt.Sprint(i)] = ""
	}
	metaJSON := func(m map[string]string) string {
		var b strings.Builder
		b.WriteString("{")
		i := 0
		for k, v := range m {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "%q:%q", k, v)
			i++
		}
		b.WriteString("}")
		return b.String()
	}
	for _, tc := range []struct {
		name    string
		body    string
		want    pinInput
		problem string // part of the 400's details; "" when accepted
	}{
		{"cid only", `{"cid":"` + c.String() + `"}`, pinInput{CID: cidInput{c.String(), c.String()}}, ""},
		{"everything", `{"cid":"` + c.String() + `","name":"PreciousData.pdf","origins":["` + origin + `","/ip4/10.0.0.1/tcp/1/p2p/` + peerA + `"],"meta":{"app_id":"99986338"}}`,
			pinInput{CID: cidInput{c.String(), c.String()}, Name: "PreciousData.pdf", Origins: []string{origin}, Meta: map[string]string{"app_id": "99986338"}}, ""},
		{"nulls are absent", `{"cid":"` + c.String() + `","name":null,"origins":null,"meta":null}`, pinInput{CID: cidInput{c.String(), c.String()}}, ""},
		{"255 characters of name", `{"cid":"` + c.String() + `","name":"` + strings.Repeat("é", 255) + `"}`,
			pinInput{CID: cidInput{c.String(), c.String()}, Name: strings.Repeat("é", 255)}, ""},
		{"empty body", ``, pinInput{}, "empty body"},
		{"not JSON", `cid=x`, pinInput{}, "invalid JSON"},
		{"array", `[]`, pinInput{}, "a JSON array where an object belongs"},
		{"no cid", `{"name":"x"}`, pinInput{}, "cid is required"},
		{"null cid", `{"cid":null}`, pinInput{}, "cid is required"},
		{"cid a number", `{"cid":5}`, pinInput{}, "cid: a JSON number where a string belongs"},
		{"bad cid", `{"cid":"QmNope"}`, pinInput{}, `cid: "QmNope" is not a CID`},
		{"unknown field", `{"cid":"` + c.String() + `","orgins":[]}`, pinInput{}, `unknown field "orgins"`},
		{"trailing data", `{"cid":"` + c.String() + `"} {}`, pinInput{}, "more after the Pin object"},
		{"truncated", `{"cid":"` + c.String() + `"`, pinInput{}, "the JSON ends early"},
		{"name too long", `{"cid":"` + c.String() + `","name":"` + strings.Repeat("a", 256) + `"}`, pinInput{}, "name: 256 characters, at most 255"},
		{"name a number", `{"cid":"` + c.String() + `","name":1}`, pinInput{}, "name: a JSON number where a string belongs"},
		{"origins not strings", `{"cid":"` + c.String() + `","origins":[1]}`, pinInput{}, "origins: a JSON number where a string belongs"},
		{"origin not a multiaddr", `{"cid":"` + c.String() + `","origins":["x"]}`, pinInput{}, `origins[0] "x" is not a multiaddr`},
		{"meta value not a string", `{"cid":"` + c.String() + `","meta":{"a":1}}`, pinInput{}, "meta: a JSON number where a string belongs"},
		{"meta empty key", `{"cid":"` + c.String() + `","meta":{"":"x"}}`, pinInput{}, "meta: empty key"},
		{"meta too many keys", `{"cid":"` + c.String() + `","meta":` + metaJSON(bigMeta) + `}`, pinInput{}, "meta: 1001 keys, at most 1000"},
		{"meta value too long", `{"cid":"` + c.String() + `","meta":{"a":"` + strings.Repeat("v", MaxMetaValueLength+1) + `"}}`, pinInput{}, "value longer than 2048 characters"},
		{"meta too big", `{"cid":"` + c.String() + `","meta":` + metaJSON(map[string]string{"a": strings.Repeat("v", 2000), "b": strings.Repeat("v", 2000), "c": strings.Repeat("v", 2000), "d": strings.Repeat("v", 2000), "e": strings.Repeat("v", 2000), "f": strings.Repeat("v", 2000), "g": strings.Repeat("v", 2000), "h": strings.Repeat("v", 2000), "i": strings.Repeat("v", 2000)}) + `}`, pinInput{}, "bytes of keys and values, at most 16384"},
		{"invalid UTF-8", "{\"cid\":\"" + c.String() + "\",\"name\":\"\xff\"}", pinInput{}, "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePin([]byte(tc.body), false)
			if tc.problem != "" {
				status, reason, details := errorStatus(err)
				if status != http.StatusBadRequest || reason != api.ReasonBadRequest || !strings.Contains(details, tc.problem) {
					t.Fatalf("parsePin = %d %s %q; want 400 mentioning %q", status, reason, details, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePin: %v", err)
			}
			if got.CID != tc.want.CID || got.Name != tc.want.Name || !slices.Equal(got.Origins, tc.want.Origins) || !maps.Equal(got.Meta, tc.want.Meta) {
				t.Errorf("parsePin = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
		problem                 string
	}{
		{"json", "application/json", `{}`, ""},
		{"json with charset", "application/json; charset=UTF-8", `{}`, ""},
		{"no content type", "", `{}`, ""},
		{"form", "application/x-www-form-urlencoded", `cid=x`, "send the pin as application/json"},
		{"text", "text/plain", `{}`, "send the pin as application/json"},
		{"other charset", "application/json; charset=latin1", `{}`, "JSON bodies are UTF-8"},
		{"malformed", "application/json; ;", `{}`, "does not parse"},
		{"too big", "application/json", strings.Repeat(" ", 2<<10+1), "body larger than 2048 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/pins", strings.NewReader(tc.body))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			got, err := readBody(r, 2<<10)
			if tc.problem == "" {
				if err != nil || string(got) != tc.body {
					t.Fatalf("readBody = %q, %v; want the body", got, err)
				}
				return
			}
			if _, _, details := errorStatus(err); !strings.Contains(details, tc.problem) {
				t.Fatalf("readBody error %q, want one mentioning %q", details, tc.problem)
			}
		})
	}
}

func TestParseListQuery(t *testing.T) {
	a := testCID(t, cid.Raw, mh.SHA2_256, "a")
	b := testCID(t, cid.DagProtobuf, mh.SHA2_256, "b")
	v0 := cid.NewCidV0(b.Hash()).String()
	at := time.Date(2020, 7, 27, 17, 32, 28, 276123000, time.UTC)
	tenCIDs := make([]string, 11)
	for i := range tenCIDs {
		tenCIDs[i] = testCID(t, cid.Raw, mh.SHA2_256, fmt.Sprint(i)).String()
	}
	defaults := views.ListQuery{Tenant: "t", Limit: 10, Match: views.MatchExact, Statuses: []pin.Status{pin.StatusPinned}}
	with := func(f func(*views.ListQuery)) views.ListQuery {
		q := defaults
		f(&q)
		return q
	}
	for _, tc := range []struct {
		name, query string
		want        views.ListQuery
		problem     string
	}{
		{"defaults: pinned only, ten", "", defaults, ""},
		{"cids in both versions, canonical", "cid=" + a.String() + "," + v0, with(func(q *views.ListQuery) { q.CIDs, q.Statuses = []string{a.String(), b.String()}, nil }), ""},
		{"cid repeated as parameters", "cid=" + a.String() + "&cid=" + b.String(), with(func(q *views.ListQuery) { q.CIDs, q.Statuses = []string{a.String(), b.String()}, nil }), ""},
		{"a filter with a status keeps it", "cid=" + a.String() + "&status=pinned", with(func(q *views.ListQuery) { q.CIDs = []string{a.String()} }), ""},
		{"name and match", "name=Precious&match=ipartial", with(func(q *views.ListQuery) {
			q.Name, q.Match, q.Statuses = "Precious", views.MatchIPartial, nil
		}), ""},
		{"statuses", "status=queued,pinning,failed", with(func(q *views.ListQuery) {
			q.Statuses = []pin.Status{pin.StatusQueued, pin.StatusPinning, pin.StatusFailed}
		}), ""},
		{"dates", "before=2020-07-27T17:32:28.276123Z&after=2020-07-27T19:32:28.276123%2B02:00", with(func(q *views.ListQuery) { q.Before, q.After = at, at }), ""},
		{"limit", "limit=1000", with(func(q *views.ListQuery) { q.Limit = 1000 }), ""},
		{"meta", `meta=%7B%22app_id%22%3A%22UUID%22%7D`, with(func(q *views.ListQuery) { q.Meta, q.Statuses = map[string]string{"app_id": "UUID"}, nil }), ""},
		{"paging keeps the default", "before=2020-07-27T17:32:28.276123Z&limit=5", with(func(q *views.ListQuery) { q.Before, q.Limit = at, 5 }), ""},
		{"empty meta is no filter", `meta={}`, defaults, ""},
		{"unknown parameter", "sort=asc", defaults, `unknown query parameter "sort"`},
		{"cids mixed into a listing", "cid=" + a.String() + "&foo=1", defaults, `unknown query parameter "foo"`},
		{"bad cid", "cid=nope", defaults, `cid: "nope" is not a CID`},
		{"empty cid item", "cid=" + a.String() + ",", defaults, "cid: empty item"},
		{"repeated cid", "cid=" + a.String() + "," + a.String(), defaults, "given twice"},
		{"eleven cids", "cid=" + strings.Join(tenCIDs, ","), defaults, "cid: 11 CIDs, at most 10"},
		{"long name", "name=" + strings.Repeat("n", 256), defaults, "name: 256 characters, at most 255"},
		{"name twice", "name=a&name=b", defaults, "name given 2 times"},
		{"bad match", "match=fuzzy", defaults, `match: unknown match "fuzzy"`},
		{"bad status", "status=done", defaults, `status: "done" is not a status`},
		{"empty status", "status=", defaults, "status: empty item"},
		{"date without zone", "before=2020-07-27T17:32:28", defaults, "before: \"2020-07-27T17:32:28\" is not an RFC 3339 timestamp"},
		{"date not a date", "after=yesterday", defaults, "after: \"yesterday\" is not an RFC 3339 timestamp"},
		{"limit zero", "limit=0", defaults, "limit: 0 is out of range"},
		{"limit too big", "limit=1001", defaults, "limit: 1001 is out of range"},
		{"limit signed", "limit=%2B5", defaults, `limit: "+5" is not a whole number`},
		{"limit float", "limit=5.0", defaults, `limit: "5.0" is not a whole number`},
		{"meta not JSON", "meta=app_id:1", defaults, "meta: not a JSON object of strings"},
		{"meta numbers", `meta={"a":1}`, defaults, "meta: not a JSON object of strings: a JSON number where a string belongs"},
		{"meta null", `meta=null`, defaults, "meta: null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseListQuery("t", q)
			if tc.problem != "" {
				status, _, details := errorStatus(err)
				if status != http.StatusBadRequest || !strings.Contains(details, tc.problem) {
					t.Fatalf("parseListQuery = %d %q; want 400 mentioning %q", status, details, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseListQuery: %v", err)
			}
			if !sameQuery(got, tc.want) {
				t.Errorf("parseListQuery = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func sameQuery(a, b views.ListQuery) bool {
	return a.Tenant == b.Tenant && slices.Equal(a.CIDs, b.CIDs) && a.Name == b.Name && a.Match == b.Match &&
		slices.Equal(a.Statuses, b.Statuses) && a.Before.Equal(b.Before) && a.After.Equal(b.After) &&
		maps.Equal(a.Meta, b.Meta) && a.Limit == b.Limit
}

func TestParseIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		name    string
		values  []string
		want    string
		problem string
	}{
		{"absent", nil, "", ""},
		{"bare", []string{"8e03978e-40d5-43e8-bc93-6894a57f9324"}, "8e03978e-40d5-43e8-bc93-6894a57f9324", ""},
		{"quoted", []string{`"abc"`}, "abc", ""},
		{"empty", []string{""}, "", "Idempotency-Key is empty"},
		{"empty quoted", []string{`""`}, "", "Idempotency-Key is empty"},
		{"twice", []string{"a", "b"}, "", "given 2 times"},
		{"space", []string{"a b"}, "", "printable ASCII only"},
		{"non-ASCII", []string{"clé"}, "", "printable ASCII only"},
		{"too long", []string{strings.Repeat("k", 256)}, "", "256 characters, at most 255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add("Idempotency-Key", v)
			}
			got, ok, err := parseIdempotencyKey(h)
			if tc.problem != "" {
				if _, _, details := errorStatus(err); err == nil || !strings.Contains(details, tc.problem) {
					t.Fatalf("parseIdempotencyKey = %q, %v; want an error mentioning %q", got, err, tc.problem)
				}
				return
			}
			if err != nil || got != tc.want || ok != (tc.want != "") {
				t.Fatalf("parseIdempotencyKey = %q, %v, %v; want %q", got, ok, err, tc.want)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name   string
		header []string
		want   credentials
		ok     bool
	}{
		{"bearer", []string{"Bearer secret-token"}, credentials{token: "secret-token"}, true},
		{"bearer any case", []string{"bearer secret-token"}, credentials{token: "secret-token"}, true},
		{"basic", []string{basic("alice:secret-token")}, credentials{token: "secret-token", user: "alice", basic: true}, true},
		{"basic token with colon", []string{basic("alice:a:b")}, credentials{token: "a:b", user: "alice", basic: true}, true},
		{"missing", nil, credentials{}, false},
		{"two headers", []string{"Bearer a", "Bearer b"}, credentials{}, false},
		{"scheme only", []string{"Bearer"}, credentials{}, false},
		{"scheme and space", []string{"Bearer "}, credentials{}, false},
		{"token only", []string{"secret-token"}, credentials{}, false},
		{"unknown scheme", []string{"Token secret"}, credentials{}, false},
		{"basic not base64", []string{"Basic !!!"}, credentials{}, false},
		{"basic no colon", []string{basic("alice")}, credentials{}, false},
		{"basic no user", []string{basic(":secret")}, credentials{}, false},
		{"basic no token", []string{basic("alice:")}, credentials{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.header {
				h.Add("Authorization", v)
			}
			got, err := parseAuthorization(h)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("parseAuthorization(%q) = %+v, %v; want %+v (ok %v)", tc.header, got, err, tc.want, tc.ok)
			}
		})
	}
}
