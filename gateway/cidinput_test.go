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

// TestMalformedCIDInput proves that every malformed cid filter of the PSA's
// listing, and every CID holding whitespace or a control character in a
// JSON body, is a 400 in the API's error shape, never a 500, and changes
// nothing. (The same on the ipfs-cluster routes, in their error shape:
// TestClusterBadInput.)
func TestMalformedCIDInput(t *testing.T) {
	s, base, c := setup(t, gateway.Config{})
	cl := basic(t, base, "alice", strings.TrimPrefix(c.auth, "Bearer "))
	a, b := newCID(t).String(), newCID(t).String()
	many := make([]string, 1001)
	for i := range many {
		many[i] = newCID(t).String()
	}
	q := url.QueryEscape
	newline := "b\n" + a[1:]
	for _, tc := range []struct {
		name, method, path, body string
		c                        client
		detail                   string
	}{
		{"PSA: empty cid filter", "GET", "/pins?cid=", "", c, "cid: empty item"},
		{"PSA: trailing comma", "GET", "/pins?cid=" + a + ",", "", c, "cid: empty item"},
		{"PSA: repeated", "GET", "/pins?cid=" + a + "," + a, "", c, "given twice"},
		{"PSA: eleven", "GET", "/pins?cid=" + strings.Join(many[:11], ","), "", c, "11 CIDs, at most 10"},
		{"PSA: a newline in the filter", "GET", "/pins?cid=" + q(newline), "", c, "whitespace"},
		{"PSA: a CR in the filter", "GET", "/pins?cid=" + q(a+"\r"), "", c, "whitespace"},
		{"body: a newline", "POST", "/pins", `{"cid":"b\nafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}`, c, "whitespace"},
		{"body: CR LF", "POST", "/pins", `{"cid":"` + a[:20] + `\r\n` + a[20:] + `"}`, c, "whitespace"},
		{"body: a trailing space", "POST", "/pins", `{"cid":"` + a + ` "}`, c, "whitespace"},
		{"body: an escape", "POST", "/pins", `{"cid":"` + a + `\u001b[31m"}`, c, "control character"},
		{"body: a zero-width space", "POST", "/pins", `{"cid":"` + a[:10] + "\u200b" + a[10:] + `"}`, c, "control character"},
		{"body: a bidirectional override", "POST", "/pins", `{"cid":"` + a + "\u202e" + `"}`, c, "control character"},
		{"body: a NUL", "POST", "/pins", `{"cid":"` + a + `\u0000"}`, c, "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, _ := s.Log.Head(context.Background())
			tc.c.do(tc.method, tc.path, tc.body).wantError(t, http.StatusBadRequest, api.ReasonBadRequest, tc.detail)
			if after, _ := s.Log.Head(context.Background()); after != head {
				t.Fatalf("refused request appended to the log (%d -> %d)", head, after)
			}
		})
	}
	// A good list still answers.
	cl.do("GET", "/pins?cids="+a+","+b, "").want(t, http.StatusOK, nil)
}
