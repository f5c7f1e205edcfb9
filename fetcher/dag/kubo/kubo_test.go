package kubo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/pin"
)

// TestKuboAnswers proves how kubo's RPC answers (as kubo v0.43 writes
// them; kubo itself cannot run in tests) become reasons: a root kubo
// cannot find is root_not_found, any other refusal sources_failed; and
// that the request is kubo's: POST /api/v0/dag/export?arg=CID.
func TestKuboAnswers(t *testing.T) {
	t.Parallel()
	root := cid.MustParse("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	tests := []struct {
		name   string
		status int
		body   string
		want   pin.Reason
	}{
		{"root not found offline", 500, `{"Message":"block was not found locally (offline): ipld: could not find ` + root.String() + `","Code":0,"Type":"error"}`, pin.ReasonRootNotFound},
		{"other command error", 500, `{"Message":"context deadline exceeded","Code":0,"Type":"error"}`, pin.ReasonSourcesFailed},
		{"not JSON", 502, `bad gateway`, pin.ReasonSourcesFailed},
		{"RPC API forbidden", 403, `403 - Forbidden`, pin.ReasonSourcesFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/api/v0/dag/export" || r.URL.Query().Get("arg") != root.String() {
					t.Errorf("request %s %s", r.Method, r.URL)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			s, err := New(Config{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			blocks, err := s.Fetch(context.Background(), dag.Request{Root: root}, dag.Limits{}.WithDefaults())
			if err != nil {
				t.Fatal(err)
			}
			defer blocks.Close()
			_, err = blocks.Next()
			if got := dag.ReasonOf(err); got != tt.want {
				t.Errorf("reason %s, want %s (%v)", got, tt.want, err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for url, ok := range map[string]bool{
		"http://127.0.0.1:5001": true, "https://kubo.example": true, "127.0.0.1:5001": false, "": false, "ftp://x": false,
	} {
		if _, err := New(Config{URL: url}); (err == nil) != ok {
			t.Errorf("%q: err = %v", url, err)
		}
	}
}
