package ipfstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Throttled starts a proxy in front of target (an origin's base URL) that
// sends response bodies at most bytesPerSecond, a tenth of a second's worth
// at a time, so that a fetch lasts long enough to be watched or
// interrupted. It returns the proxy's URL; the proxy stops with the test.
func Throttled(t testing.TB, target string, bytesPerSecond int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, max(bytesPerSecond/10, 1))
		for {
			n, err := io.ReadFull(resp.Body, buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-time.After(100 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv.URL
}
