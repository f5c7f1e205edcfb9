package main

import (
	"container/list"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pickup-ipfs/pickup/internal/telemetry"
)

// Connection caps. A flood of connections must not take the descriptors
// the rest of the process works with (fetches, stores, the admin server):
// every HTTP server holds at most its cap of connections. Go raises the
// soft RLIMIT_NOFILE to the hard one at start (since Go 1.19), so the
// default caps are sized from the limit the process has.
const (
	// maxAPIConns bounds the default cap of the API: an idle connection
	// costs about 12 KB of memory (a goroutine and a read buffer).
	maxAPIConns = 8192
	// defaultAdminConns is the admin server's cap: /metrics, /healthz and
	// /readyz, asked by a scraper and a health checker.
	defaultAdminConns = 64
	// defaultConnsPerClient caps one client address's connections to the
	// API (an IPv6 client is its /64), so that one client cannot take the
	// whole cap.
	defaultConnsPerClient = 256
	// shedSlots bounds the refused connections held open at once while
	// their 503 is delivered (shedLinger each); beyond, a refused
	// connection is closed at once.
	shedSlots  = 64
	shedLinger = 250 * time.Millisecond
	// evictAfter is how long a connection must have been idle before it
	// is closed to make room. A flood that reconnects at once then meets
	// 503s, which cost a write and a close, rather than being served a
	// request each time (with 8192 connections held, at most 1,638 are
	// served a second this way, whatever the flood's rate); a client that
	// keeps its connection busy (the status page polls every second) keeps
	// it.
	evictAfter = 5 * time.Second
)

// nofile is the process's limit of open descriptors (the soft limit,
// which Go raised to the hard one), or 0 if unknown.
func nofile() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 {
		return 0
	}
	return int(l.Cur)
}

// defaultAPIConns is the API's cap when none is given: half the process's
// descriptors, so that the other half stays for fetches, stores and the
// admin server, and at most maxAPIConns.
func defaultAPIConns(nofile int) int {
	if nofile <= 0 {
		return 1024
	}
	return max(16, min(maxAPIConns, nofile/2))
}

// connLimits are an HTTP server's caps on the connections it holds.
type connLimits struct {
	// max is the most connections held at once. A new connection beyond it
	// closes the connection idle the longest, if it has been idle for
	// evictAfter (a keep-alive client opens a new one when it needs it), or
	// else is answered 503 with Retry-After and closed.
	max int
	// perClient, if not zero, is the most connections of one client
	// address (an IPv6 /64); beyond it, a new connection is answered 503.
	perClient int
	// perClientPublic drops perClient where the server listens on loopback
	// only: every client is then this machine (tests, a proxy, the
	// operator's tools), and the server's cap is the one that matters.
	perClientPublic bool
}

// on returns the limits of a server listening at addr.
func (l connLimits) on(addr net.Addr) connLimits {
	if ta, ok := addr.(*net.TCPAddr); ok && l.perClientPublic && ta.IP.IsLoopback() {
		l.perClient = 0
	}
	l.perClientPublic = false
	return l
}

// limitListener holds a server's connections under its caps. Over a cap it
// sheds load rather than stops accepting (as netutil.LimitListener does):
// a listener that stops accepting leaves clients waiting in the kernel's
// backlog until they time out, with no answer; a 503 with Retry-After
// tells them at once to come back. Idle keep-alive connections are the
// first to go, so that a flood of idle connections does not lock clients
// with a request to make out; those idle for less than evictAfter stay, so
// that a flood that comes back at once is shed rather than served.
type limitListener struct {
	net.Listener
	server  string
	limits  connLimits
	metrics *telemetry.ConnMetrics
	// slots bounds the refused connections lingering over their 503.
	slots chan struct{}
	// evictAfter is the least time idle of a connection closed to make
	// room (evictAfter; tests shorten it).
	evictAfter time.Duration

	mu      sync.Mutex
	open    int
	clients map[netip.Prefix]int
	// idle holds the idle connections, the longest idle first.
	idle list.List
}

func newLimitListener(ln net.Listener, server string, limits connLimits, metrics *telemetry.ConnMetrics) *limitListener {
	return &limitListener{Listener: ln, server: server, limits: limits.on(ln.Addr()), metrics: metrics,
		slots: make(chan struct{}, shedSlots), evictAfter: evictAfter, clients: map[netip.Prefix]int{}}
}

// limitConn is a connection a limitListener holds.
type limitConn struct {
	net.Conn
	l      *limitListener
	client netip.Prefix
	// Under l.mu: idle is the connection's place in l.idle while idle;
	// released is set once the connection no longer counts.
	idle      *list.Element
	idleSince time.Time
	released  bool
}

// Close implements net.Conn.
func (c *limitConn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// Accept implements net.Listener: it returns the next connection within the
// caps, shedding those beyond them.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			// http.Server retries temporary errors (too many open files)
			// with backoff.
			if !errors.Is(err, net.ErrClosed) {
				l.metrics.AcceptError(l.server)
			}
			return nil, err
		}
		c, evicted, reason := l.admit(conn)
		if evicted != nil {
			evicted.Conn.Close()
			l.metrics.Evicted(l.server)
		}
		if c != nil {
			return c, nil
		}
		l.metrics.Shed(l.server, reason)
		l.shed(conn)
	}
}

// clientOf is the address a connection's caps count it under: its IPv4
// address, or its IPv6 /64 (one host's share of most networks).
func clientOf(addr net.Addr) netip.Prefix {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}
	}
	ip := ta.AddrPort().Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// admit counts a new connection in, closing the longest idle one if the
// server is at its cap (returned, for the caller to close outside the
// lock), or refuses it with a reason.
func (l *limitListener) admit(conn net.Conn) (c *limitConn, evicted *limitConn, reason string) {
	client := clientOf(conn.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits.perClient > 0 && l.clients[client] >= l.limits.perClient {
		return nil, nil, telemetry.ShedMaxConnsPerClient
	}
	if l.limits.max > 0 && l.open >= l.limits.max {
		front := l.idle.Front()
		if front == nil || time.Since(front.Value.(*limitConn).idleSince) < l.evictAfter {
			return nil, nil, telemetry.ShedMaxConns
		}
		evicted = front.Value.(*limitConn)
		l.releaseLocked(evicted)
	}
	l.open++
	l.clients[client]++
	l.metrics.Open(l.server, l.open)
	return &limitConn{Conn: conn, l: l, client: client}, evicted, ""
}

// releaseLocked stops counting c, once.
func (l *limitListener) releaseLocked(c *limitConn) {
	if c.idle != nil {
		l.idle.Remove(c.idle)
		c.idle = nil
	}
	if c.released {
		return
	}
	c.released = true
	l.open--
	if l.clients[c.client]--; l.clients[c.client] <= 0 {
		delete(l.clients, c.client)
	}
	l.metrics.Open(l.server, l.open)
}

// connState follows the server's connections (http.Server.ConnState):
// those idle between requests may be closed to make room.
func (l *limitListener) connState(conn net.Conn, state http.ConnState) {
	c, ok := conn.(*limitConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case state == http.StateIdle && c.idle == nil && !c.released:
		c.idle, c.idleSince = l.idle.PushBack(c), time.Now()
	case state != http.StateIdle && c.idle != nil:
		l.idle.Remove(c.idle)
		c.idle = nil
	}
}

// overloaded is the answer to a connection beyond the caps: the Pinning
// Service API's error shape, and no more than a few hundred bytes.
var overloaded = func() []byte {
	body := `{"error":{"reason":"OVERLOADED","details":"the server holds as many connections as it may; try again later"}}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// shed answers a refused connection 503 and closes it. Written into a new
// connection's empty send buffer, the answer never blocks. The connection
// then lingers (shedLinger at most, in one of shedSlots) reading what the
// client sent, so that closing it does not reset the connection before the
// client reads the answer; with every slot taken it is closed at once.
func (l *limitListener) shed(conn net.Conn) {
	conn.SetWriteDeadline(time.Now().Add(shedLinger))
	if _, err := conn.Write(overloaded); err != nil {
		conn.Close()
		return
	}
	select {
	case l.slots <- struct{}{}:
	default:
		conn.Close()
		return
	}
	go func() {
		defer func() { <-l.slots }()
		defer conn.Close()
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		conn.SetReadDeadline(time.Now().Add(shedLinger))
		io.Copy(io.Discard, io.LimitReader(conn, 64<<10))
	}()
}
