package ipfstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// Throttled starts a proxy in front of target (an origin's base URL) that
// sends response bodies at most bytesPerSecond, a tenth of a second's worth
// at a time, so that a fetch lasts long enough to be watched or
// interrupted. It returns the proxy's URL; the proxy stops with the test.
func Throttled(t testing.TB, target string, bytesPerSecond int) string {
	t.Helper()
	return NewThrottle(t, target, bytesPerSecond).URL()
}

// Throttle is a throttling proxy in front of an origin (see Throttled)
// that counts the body bytes it has sent: what the origin served.
type Throttle struct {
	srv    *httptest.Server
	served atomic.Int64
}

// URL is the proxy's base URL.
func (p *Throttle) URL() string { return p.srv.URL }

// Served is how many response body bytes the proxy has sent on.
func (p *Throttle) Served() int64 { return p.served.Load() }

// NewThrottle starts a Throttle in front of target, sending at most
// bytesPerSecond; it stops with the test.
func NewThrottle(t testing.TB, target string, bytesPerSecond int) *Throttle {
	t.Helper()
	p := &Throttle{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
				sent, werr := w.Write(buf[:n])
				p.served.Add(int64(sent))
				if werr != nil {
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
	t.Cleanup(func() { p.srv.CloseClientConnections(); p.srv.Close() })
	return p
}
