package gateway_test

import (
	"context"
	"testing"

	"github.com/pickup-ipfs/pickup/gateway"
)

// A CAR upload to a gateway with no uploads area (the Lambda API, whose
// request bodies are capped at 6 MB) is refused with 413 saying so; its
// query is checked first, as a Pin body is; nothing is appended.
func TestCARUploadWithoutUploadsArea(t *testing.T) {
	s, _, c := setup(t, gateway.Config{})
	good := newCID(t).String()
	car := []string{"Content-Type", "application/vnd.ipld.car"}
	for _, tc := range []struct {
		name, path     string
		status         int
		reason, detail string
	}{
		{"no uploads area", "/pins?cid=" + good + "&name=x", 413, "PAYLOAD_TOO_LARGE", "caps request bodies at 6 MB"},
		{"no cid", "/pins?name=x", 400, "BAD_REQUEST", "POST /pins?cid=<root>"},
		{"bad cid", "/pins?cid=bafyNOPE", 400, "BAD_REQUEST", `"bafyNOPE" is not a CID`},
		{"unknown parameter", "/pins?cid=" + good + "&pinned=1", 400, "BAD_REQUEST", `unknown query parameter "pinned"`},
		{"two names", "/pins?cid=" + good + "&name=a&name=b", 400, "BAD_REQUEST", "name is given 2 times"},
		{"meta not JSON", "/pins?cid=" + good + "&meta=a=b", 400, "BAD_REQUEST", "meta is not JSON"},
		{"meta not strings", "/pins?cid=" + good + `&meta={"a":1}`, 400, "BAD_REQUEST", "meta:"},
		{"origin without peer", "/pins?cid=" + good + "&origins=/ip4/8.8.8.8/tcp/1", 400, "BAD_REQUEST", "does not end with /p2p/<peer id>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, _ := s.Log.Head(context.Background())
			c.do("POST", tc.path, "not read", car...).wantError(t, tc.status, tc.reason, tc.detail)
			if after, _ := s.Log.Head(context.Background()); after != head {
				t.Fatalf("refused upload appended to the log (%d -> %d)", head, after)
			}
		})
	}
}
