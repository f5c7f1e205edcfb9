package serve_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/internal/servetest"
	"github.com/pickup-ipfs/pickup/serve"
)

// TestHandlers: handlers given in Deps are served beside the gateway, on
// one blockstore made once (its metric registered once); one at a pattern
// the gateway has is refused.
func TestHandlers(t *testing.T) {
	park := servetest.New(t)
	dag := park.Pin(t, 10<<10, 13)
	reg := prometheus.NewRegistry()
	deps := park.Deps()
	deps.Metrics = reg
	bs, err := serve.NewServingBlockstore(serve.Config{}, deps)
	if err != nil {
		t.Fatal(err)
	}
	deps.Blockstore = bs
	deps.Handlers = map[string]http.Handler{"/routing/v1/": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "routed") })}
	h, err := serve.New(serve.Config{}, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for path, want := range map[string]int{"/routing/v1/providers/x": http.StatusOK, "/ipfs/" + dag.Root.String() + "?format=raw": http.StatusOK} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	deps.Handlers = map[string]http.Handler{"/ipfs/": http.NotFoundHandler()}
	if _, err := serve.New(serve.Config{}, deps); !errors.Is(err, serve.ErrInvalid) {
		t.Errorf("a handler at /ipfs/: %v, want ErrInvalid", err)
	}
}
