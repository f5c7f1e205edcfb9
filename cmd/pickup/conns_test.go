package main

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

// capped is an HTTP server made by listen on loopback, with its metrics,
// whose /block requests wait until release is closed.
type capped struct {
	srv     *httpServer
	reg     *prometheus.Registry
	release chan struct{}
	entered chan struct{}
}

func startCapped(t *testing.T, cfg serverConfig) *capped {
	t.Helper()
	c := &capped{reg: prometheus.NewRegistry(), release: make(chan struct{}), entered: make(chan struct{}, 100)}
	metrics, err := telemetry.NewConnMetrics(c.reg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		c.entered <- struct{}{}
		<-c.release
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok\n"))
	})
	if cfg.readHeader == 0 {
		cfg.readHeader, cfg.read, cfg.write, cfg.idle = 10*time.Second, 30*time.Second, time.Minute, time.Minute
	}
	c.srv, err = listen("api", "127.0.0.1:0", cfg, mux, metrics, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.srv.execute() }()
	t.Cleanup(func() {
		select {
		case <-c.release:
		default:
			close(c.release)
		}
		c.srv.interrupt(nil)
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return c
}

// metric is a sample of the server's metrics, as `name{label="value",...}`.
func (c *capped) metric(t *testing.T, sample string) float64 {
	t.Helper()
	return telemetrytest.Samples(t, c.reg)[sample]
}

// conn is a raw client connection from a chosen loopback address.
type conn struct {
	net.Conn
	r *bufio.Reader
}

func dialFrom(t *testing.T, c *capped, from string) *conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", c.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &conn{Conn: nc, r: bufio.NewReader(nc)}
}

// get sends a GET and returns the answer's status and Retry-After.
func (cn *conn) get(t *testing.T, path string) (int, string) {
	t.Helper()
	if _, err := io.WriteString(cn, "GET "+path+" HTTP/1.1\r\nHost: pickup\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return cn.read(t)
}

func (cn *conn) read(t *testing.T) (int, string) {
	t.Helper()
	cn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(cn.r, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable && !strings.Contains(string(body), "OVERLOADED") {
		t.Errorf("503 body %q", body)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// closed reports whether the server closes the connection (whatever it
// writes first), rather than keep it until the read deadline.
func (cn *conn) closed(t *testing.T) bool {
	t.Helper()
	cn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, cn.r)
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// TestConnCapShedsWith503: with the cap held by connections at work, a new
// one is answered 503 with Retry-After and closed, and counted; the ones at
// work are served to their end.
func TestConnCapShedsWith503(t *testing.T) {
	c := startCapped(t, serverConfig{limits: connLimits{max: 3}})
	var busy []*conn
	for range 3 {
		cn := dialFrom(t, c, "127.0.0.1")
		io.WriteString(cn, "GET /block HTTP/1.1\r\nHost: pickup\r\n\r\n")
		<-c.entered
		busy = append(busy, cn)
	}
	extra := dialFrom(t, c, "127.0.0.1")
	if status, retry := extra.get(t, "/"); status != http.StatusServiceUnavailable || retry == "" {
		t.Fatalf("beyond the cap: %d, Retry-After %q; want 503 with Retry-After", status, retry)
	}
	if !extra.closed(t) {
		t.Error("a shed connection stayed open")
	}
	if got := c.metric(t, `pickup_http_connections_shed_total{reason="max_conns",server="api"}`); got != 1 {
		t.Errorf("shed max_conns %v, want 1", got)
	}
	if got := c.metric(t, `pickup_http_connections_open{server="api"}`); got != 3 {
		t.Errorf("open %v, want 3", got)
	}
	close(c.release)
	for _, cn := range busy {
		if status, _ := cn.read(t); status != http.StatusOK {
			t.Errorf("a connection at work was answered %d", status)
		}
	}
}

// TestConnCapEvictsIdle: with the cap held by idle keep-alive
// connections, a new one closes the longest idle and is served.
func TestConnCapEvictsIdle(t *testing.T) {
	c := startCapped(t, serverConfig{limits: connLimits{max: 3}})
	l := c.srv.ln.(*limitListener)
	l.mu.Lock()
	l.evictAfter = 0
	l.mu.Unlock()
	idleCount := func() int { l.mu.Lock(); defer l.mu.Unlock(); return l.idle.Len() }
	var idle []*conn
	for i := range 3 {
		cn := dialFrom(t, c, "127.0.0.1")
		if status, _ := cn.get(t, "/"); status != http.StatusOK {
			t.Fatalf("under the cap: %d", status)
		}
		// The server marks a connection idle once its answer is written:
		// wait for it, so that the first is the longest idle.
		waitFor(t, "the connection idle", func() bool { return idleCount() == i+1 })
		idle = append(idle, cn)
	}
	fresh := dialFrom(t, c, "127.0.0.1")
	if status, _ := fresh.get(t, "/"); status != http.StatusOK {
		t.Fatalf("a new connection at a cap of idle ones: %d, want 200", status)
	}
	if !idle[0].closed(t) {
		t.Error("the longest idle connection was not closed")
	}
	if status, _ := idle[2].get(t, "/"); status != http.StatusOK {
		t.Errorf("a younger idle connection: %d", status)
	}
	if got := c.metric(t, `pickup_http_connections_evicted_total{server="api"}`); got != 1 {
		t.Errorf("evicted %v, want 1", got)
	}
}

// TestConnCapPerClient: one address gets its cap and then 503s; another
// address is still served.
func TestConnCapPerClient(t *testing.T) {
	c := startCapped(t, serverConfig{limits: connLimits{max: 100, perClient: 2}})
	for range 2 {
		if status, _ := dialFrom(t, c, "127.0.0.2").get(t, "/"); status != http.StatusOK {
			t.Fatalf("under the client's cap: %d", status)
		}
	}
	if status, retry := dialFrom(t, c, "127.0.0.2").get(t, "/"); status != http.StatusServiceUnavailable || retry == "" {
		t.Errorf("beyond the client's cap: %d, Retry-After %q", status, retry)
	}
	if status, _ := dialFrom(t, c, "127.0.0.3").get(t, "/"); status != http.StatusOK {
		t.Errorf("another client: %d", status)
	}
	if got := c.metric(t, `pickup_http_connections_shed_total{reason="max_conns_per_client",server="api"}`); got != 1 {
		t.Errorf("shed max_conns_per_client %v, want 1", got)
	}
}

// TestTimeoutsFreeConnections: an idle keep-alive connection and a body
// that never ends are closed by the server, and stop counting.
func TestTimeoutsFreeConnections(t *testing.T) {
	c := startCapped(t, serverConfig{readHeader: 200 * time.Millisecond, read: 300 * time.Millisecond, write: time.Minute, idle: 200 * time.Millisecond,
		limits: connLimits{max: 10}})
	idle := dialFrom(t, c, "127.0.0.1")
	if status, _ := idle.get(t, "/"); status != http.StatusOK {
		t.Fatal(status)
	}
	slow := dialFrom(t, c, "127.0.0.1")
	io.WriteString(slow, "POST / HTTP/1.1\r\nHost: pickup\r\nContent-Length: 1000\r\n\r\n{")
	silent := dialFrom(t, c, "127.0.0.1")
	var wg sync.WaitGroup
	for name, cn := range map[string]*conn{"idle keep-alive": idle, "slow body": slow, "silent": silent} {
		wg.Go(func() {
			if !cn.closed(t) {
				t.Errorf("%s connection not closed", name)
			}
		})
	}
	wg.Wait()
	waitFor(t, "no connection counted", func() bool { return c.metric(t, `pickup_http_connections_open{server="api"}`) == 0 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The default per-client cap holds where the API listens beyond loopback
// only; one given holds everywhere.
func TestPerClientCapWherePublic(t *testing.T) {
	for _, c := range []struct {
		addr      string
		public    bool
		perClient int
	}{
		{"127.0.0.1:3000", true, 0},
		{"[::1]:3000", true, 0},
		{"0.0.0.0:3000", true, 256},
		{"10.1.2.3:3000", true, 256},
		{"127.0.0.1:3000", false, 256},
	} {
		ap, err := net.ResolveTCPAddr("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := (connLimits{max: 10, perClient: 256, perClientPublic: c.public}).on(ap); got.perClient != c.perClient || got.max != 10 {
			t.Errorf("%s (default %v): %+v, want per client %d", c.addr, c.public, got, c.perClient)
		}
	}
}

// A connection idle for less than evictAfter is not closed to make room:
// the new one is shed.
func TestConnCapKeepsFreshIdle(t *testing.T) {
	c := startCapped(t, serverConfig{limits: connLimits{max: 2}})
	l := c.srv.ln.(*limitListener)
	l.mu.Lock()
	l.evictAfter = time.Hour
	l.mu.Unlock()
	for range 2 {
		if status, _ := dialFrom(t, c, "127.0.0.1").get(t, "/"); status != http.StatusOK {
			t.Fatalf("under the cap: %d", status)
		}
	}
	waitFor(t, "two idle connections", func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.idle.Len() == 2 })
	if status, _ := dialFrom(t, c, "127.0.0.1").get(t, "/"); status != http.StatusServiceUnavailable {
		t.Errorf("at a cap of freshly idle connections: %d, want 503", status)
	}
	if got := c.metric(t, `pickup_http_connections_evicted_total{server="api"}`); got != 0 {
		t.Errorf("evicted %v, want 0", got)
	}
}

// The API's default cap is half the descriptors, within bounds.
func TestDefaultAPIConns(t *testing.T) {
	for nofile, want := range map[int]int{0: 1024, 20: 16, 1024: 512, 20_000: 8192, 1 << 20: 8192} {
		if got := defaultAPIConns(nofile); got != want {
			t.Errorf("RLIMIT_NOFILE %d: cap %d, want %d", nofile, got, want)
		}
	}
	// From 1,024 descriptors up (the usual soft limit), the caps leave room.
	if n := nofile(); n >= 1024 && defaultAPIConns(n)+defaultAdminConns+2*shedSlots > n {
		t.Errorf("this process's RLIMIT_NOFILE %d leaves no room beside the default caps", n)
	}
}
