package ipni_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pickup-ipfs/pickup/serve/ipni"
	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
)

func status(t *testing.T, method, url string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestHandlerAnswers: what the ipnisync protocol's clients meet: 503
// until the chain is read, then the head (204 for an empty chain), 404
// for a CID not in the chain, 400 for what is not a CID, 405 for a write;
// an entry chunk whose index object changed since its ad is refused
// (500), never served with other bytes, and one whose index object is
// gone (its root deleted) is not found.
func TestHandlerAnswers(t *testing.T) {
	w := newWorld(t)
	srv := newServer(t)
	p := w.publisher(srv, nil, ipni.Config{ChunkSize: 8})
	base := srv.srv.URL + ipni.HandlerPath
	if got := status(t, http.MethodGet, base+"head"); got != http.StatusServiceUnavailable {
		t.Fatalf("head before the chain is read: %d, want 503", got)
	}
	run(t, p)
	eventually(t, "the chain is read", func() error {
		if got := status(t, http.MethodGet, base+"head"); got != http.StatusNoContent {
			return fmt.Errorf("head of an empty chain: %d, want 204", got)
		}
		return nil
	})
	cars := []locatetest.Car{w.pinCar(1, 20), w.pinCar(2, 20)}
	eventually(t, "two ads", func() error {
		if _, n := p.Head(); n != 2 {
			return fmt.Errorf("%d ads", n)
		}
		return nil
	})
	walked := walk(t, srv.srv.URL, w.key)
	if len(walked) != 2 {
		t.Fatalf("%d ads walked, want 2", len(walked))
	}
	chain := chainOf(t, w.log)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, chain[0].Chunks[1], http.StatusOK},
		{http.MethodHead, chain[0].CID, http.StatusOK},
		{http.MethodGet, cars[0].CAR.Root.String(), http.StatusNotFound},
		{http.MethodGet, "not-a-cid", http.StatusBadRequest},
		{http.MethodPost, "head", http.StatusMethodNotAllowed},
	} {
		if got := status(t, tc.method, base+tc.path); got != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	if got := status(t, http.MethodGet, strings.TrimSuffix(srv.srv.URL+"/elsewhere/", "/")+"/head"); got != http.StatusNotFound {
		t.Errorf("a path outside /ipni/v1/ad/: %d, want 404", got)
	}

	// The index object of the first CAR replaced by the second's: its
	// chunks are not the ad's any more. (A chunk of the second first: the
	// handler keeps the last CAR's multihashes, read once for its chunks.)
	get(t, srv, chain[1].Chunks[0])
	w.cars.Put(cars[0].CAR.Key+".idx", cars[1].Index)
	if got := status(t, http.MethodGet, base+chain[0].Chunks[0]); got != http.StatusInternalServerError {
		t.Errorf("a chunk of a changed index object: %d, want 500", got)
	}
	w.cars.Remove(cars[0].CAR.Key + ".idx")
	if got := status(t, http.MethodGet, base+chain[0].Chunks[0]); got != http.StatusNotFound {
		t.Errorf("a chunk of a deleted index object: %d, want 404", got)
	}
	// The other CAR's chunks are served still.
	get(t, srv, chain[1].Chunks[2])
	get(t, srv, chain[1].CID)
}
