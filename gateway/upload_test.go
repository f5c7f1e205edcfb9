package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/carupload"
	"github.com/pickup-ipfs/pickup/gateway"
)

// A CAR upload to a gateway with no uploads area is refused with 413
// saying so; its query is checked first, as a Pin body is; nothing is
// appended.
func TestCARUploadWithoutUploadsArea(t *testing.T) {
	s, _, c := setup(t, gateway.Config{})
	good := newCID(t).String()
	car := []string{"Content-Type", "application/vnd.ipld.car"}
	for _, tc := range []struct {
		name, path     string
		status         int
		reason, detail string
	}{
		{"no uploads area", "/pins?cid=" + good + "&name=x", 413, "PAYLOAD_TOO_LARGE", "no uploads area shared with its fetchers (PICKUP_UPLOADS_BUCKET"},
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

// rawCAR is a CARv1 of a raw root block followed by blocks of filler of
// 1 MiB each, n bytes in all or a little more: enough for the gateway,
// which checks framing, root and size, never the DAG.
func rawCAR(t *testing.T, n int) (cid.Cid, []byte) {
	t.Helper()
	block := func(data []byte) (cid.Cid, []byte) {
		h, err := mh.Sum(data, mh.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		c := cid.NewCidV1(cid.Raw, h)
		sec := append(c.Bytes(), data...)
		return c, append(varint.ToUvarint(uint64(len(sec))), sec...)
	}
	root, first := block([]byte("root"))
	// DAG-CBOR {"roots": [root], "version": 1}.
	link := append([]byte{0x00}, root.Bytes()...)
	header := append([]byte{0xa2, 0x65}, "roots"...)
	header = append(header, 0x81, 0xd8, 0x2a, 0x58, byte(len(link)))
	header = append(header, link...)
	header = append(header, 0x67)
	header = append(header, "version"...)
	header = append(header, 0x01)
	out := append(varint.ToUvarint(uint64(len(header))), header...)
	out = append(out, first...)
	for i := 0; len(out) < n; i++ {
		filler := bytes.Repeat([]byte{byte(i)}, min(1<<20, n-len(out)+1))
		_, sec := block(filler)
		out = append(out, sec...)
	}
	return root, out
}

// On AWS Lambda (gateway.OnLambda) a CAR upload of up to
// LambdaMaxCARBytes, what a Lambda request carries base64-encoded, is
// received into the uploads area; a bigger one is refused with 413 saying
// the cap and what to do instead, whether its Content-Length says so or
// it is sent without one, and nothing of it is kept or recorded.
func TestCARUploadOnLambda(t *testing.T) {
	s, _, _ := setup(t, gateway.Config{})
	dir := t.TempDir()
	area, err := carupload.NewDir(dir, carupload.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := gateway.New(gateway.Config{Delegates: []string{"/ip4/203.0.113.1/tcp/4001/p2p/" + peerA}}, gateway.Deps{
		Log: s.Log, Views: s.Views, Tokens: s.Views, Checkpoints: s.Views, Uploads: gateway.OnLambda(area), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	token := s.Token(t, "alice")
	send := func(root cid.Cid, body io.Reader) response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/pins?cid="+root.String(), body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", carupload.MediaType)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return response{status: res.StatusCode, header: res.Header, body: b}
	}
	kept := func() []string {
		entries, _ := os.ReadDir(dir)
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}

	root, car := rawCAR(t, gateway.LambdaMaxCARBytes-64<<10)
	var ps api.PinStatus
	send(root, bytes.NewReader(car)).want(t, http.StatusAccepted, &ps)
	if ps.Status != api.StatusQueued || len(kept()) != 2 {
		t.Fatalf("a CAR under the cap: %+v, the area holds %v", ps, kept())
	}
	for _, name := range kept() {
		os.Remove(dir + "/" + name)
	}

	big, over := rawCAR(t, gateway.LambdaMaxCARBytes+1)
	for _, tc := range []struct {
		name string
		body io.Reader
	}{
		{"with its Content-Length", bytes.NewReader(over)},
		{"without a Content-Length", struct{ io.Reader }{bytes.NewReader(over)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, _ := s.Log.Head(context.Background())
			res := send(big, tc.body)
			res.wantError(t, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", "caps a request at 6 MB, so it takes CARs of up to 4194304 bytes")
			if !strings.Contains(string(res.body), "Pin by CID") {
				t.Errorf("the refusal says nothing of what to do instead: %s", res.body)
			}
			if left := kept(); len(left) > 0 {
				t.Fatalf("a refused upload left %v", left)
			}
			if after, _ := s.Log.Head(context.Background()); after != head {
				t.Fatalf("a refused upload appended to the log (%d -> %d)", head, after)
			}
		})
	}
}
