package ipni_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/ipnitest"
	"github.com/pickup-ipfs/pickup/serve/ipni"
)

// TestAnnouncementsAreRetried: an indexer that refuses announcements for
// a while (here the real indexer behind a proxy answering its first five
// 503) is told again, with backoff, until it takes the head; it then
// names pickup for the pinned blocks. The pins never waited: they were
// validated before the publisher ran, and their ads appended while every
// announcement failed.
func TestAnnouncementsAreRetried(t *testing.T) {
	ix := ipnitest.Start(t)
	target, err := url.Parse(ix.IngestURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refused, passed atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refused.Load() < 5 {
			refused.Add(1)
			http.Error(w, "indexer down", http.StatusServiceUnavailable)
			return
		}
		passed.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	w := newWorld(t)
	car := w.pinCar(1, 30)
	srv := newServer(t)
	p := w.publisher(srv, []string{front.URL}, ipni.Config{})
	run(t, p)
	eventually(t, "the indexer names pickup once it takes an announcement", func() error { return named(ix, p, srv, car) })
	if refused.Load() != 5 || passed.Load() < 1 {
		t.Fatalf("%d announcements refused, %d passed; want 5, then one", refused.Load(), passed.Load())
	}
}
