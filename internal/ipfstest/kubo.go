package ipfstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
)

// KuboRPC is a stand-in for kubo's RPC API serving `ipfs dag export`:
// kubo itself cannot run in tests. It is shaped like kubo v0.43's
// endpoint: POST /api/v0/dag/export?arg=CID; the CAR written by the same
// code kubo runs (go-car's TraverseV1, see Export); a 500 with kubo's JSON
// error body when the root is missing; an error that happens mid-stream
// reported in the X-Stream-Error trailer.
type KuboRPC struct {
	srv *httptest.Server
}

// StartKuboRPC starts an endpoint serving bs on loopback, with t applied
// to the CARs it writes.
func StartKuboRPC(bs blockstore.Blockstore, t Tamper) *KuboRPC {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v0/dag/export", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		root, err := cid.Decode(r.URL.Query().Get("arg"))
		if err != nil {
			kuboError(w, fmt.Sprintf("invalid path %q: %v", r.URL.Query().Get("arg"), err))
			return
		}
		if t.Root.Defined() {
			root = t.Root
		}
		// kubo stats the root first, and fails before streaming.
		if has, err := blockstore.NewIdStore(bs).Has(r.Context(), root); err != nil || !has {
			kuboError(w, fmt.Sprintf("block was not found locally (offline): ipld: could not find %s", root))
			return
		}
		w.Header().Set("Content-Type", "application/vnd.ipld.car")
		w.Header().Set("X-Stream-Output", "1")
		w.Header().Set("Trailer", "X-Stream-Error")
		w.WriteHeader(http.StatusOK)

		pr, pw := io.Pipe()
		go func() {
			_, err := Export(r.Context(), bs, root, pw)
			pw.CloseWithError(err)
		}()
		var streamErr error
		if t.active() {
			streamErr = tamperCAR(r.Context(), w, pr, t)
		} else {
			_, streamErr = io.Copy(w, pr)
		}
		pr.Close()
		if streamErr != nil {
			w.Header().Set("X-Stream-Error", streamErr.Error())
		}
	})
	return &KuboRPC{srv: httptest.NewServer(mux)}
}

// NewKuboRPC starts an endpoint for a test and closes it when the test
// ends.
func NewKuboRPC(tb testing.TB, bs blockstore.Blockstore, t Tamper) *KuboRPC {
	tb.Helper()
	k := StartKuboRPC(bs, t)
	tb.Cleanup(k.Close)
	return k
}

// URL is the RPC API's base URL (kubo's is http://127.0.0.1:5001).
func (k *KuboRPC) URL() string { return k.srv.URL }

// Close stops it, ending open responses.
func (k *KuboRPC) Close() {
	k.srv.CloseClientConnections()
	k.srv.Close()
}

// kuboError answers as kubo's RPC does when a command fails.
func kuboError(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_ = json.NewEncoder(w).Encode(map[string]any{"Message": msg, "Code": 0, "Type": "error"})
}
