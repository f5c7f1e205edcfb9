// Command flood is the hostile load of the end-to-end load test
// (BenchmarkFlood in ./tests): connections that ask once and then sit idle,
// and clients that send a body one byte at a time, against one HTTP server,
// from many loopback source addresses (127.x.y.z, so that neither the
// ephemeral ports of one address nor a per-client cap bound the flood).
// Every connection the server closes is opened again after a pause, until
// the duration ends. It prints what it saw as one JSON object on stdout, and
// "holding N" lines on stderr as it goes.
//
// It dials loopback only: -addr must be a 127.0.0.0/8 address.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// result is what the flood saw.
type result struct {
	Connects    int64 `json:"connects"`      // connections opened
	DialErrors  int64 `json:"dial_errors"`   // dials that failed
	Shed        int64 `json:"shed"`          // 503 answers
	Answered    int64 `json:"answered"`      // other answers (the 401 of an idle client's request; a slow body's 4xx)
	Closed      int64 `json:"closed"`        // connections the server closed on a held client (eviction, idle or read timeout)
	ResetOrLost int64 `json:"reset_or_lost"` // connections that ended in an error before any answer
	PeakHeld    int64 `json:"peak_held"`     // most connections held open at once
}

func main() {
	addr := flag.String("addr", "", "the server, host:port on loopback")
	idle := flag.Int("idle", 0, "idle clients: each sends GET /pins, reads the answer, then holds the connection")
	slow := flag.Int("slow", 0, "slow-body clients: each sends a POST /pins whose body comes a byte at a time")
	slowEvery := flag.Duration("slow-every", time.Second, "time between two bytes of a slow body")
	first := flag.String("sources", "127.1.0.1", "first source address; client i dials from the (i / per-source)th address after it")
	perSource := flag.Int("per-source", 20, "clients per source address")
	pause := flag.Duration("pause", time.Second, "wait before a closed connection is opened again (up to a fifth more)")
	rate := flag.Int("rate", 2000, "most new connections a second, while the flood builds up")
	duration := flag.Duration("duration", 30*time.Second, "how long the flood lasts")
	flag.Parse()
	if err := checkLoopback(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(2)
	}
	base, err := netip.ParseAddr(*first)
	if err != nil || !base.Is4() || !base.IsLoopback() {
		fmt.Fprintln(os.Stderr, "flood: -sources wants a 127.0.0.0/8 address")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var r result
	var held atomic.Int64
	// The build-up is paced: a burst beyond the listen backlog is dropped
	// by the kernel and retried seconds later, which measures nothing.
	tokens := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second / time.Duration(max(1, *rate)))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case tokens <- struct{}{}:
				default:
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range *idle + *slow {
		src := sourceAddr(base, i / *perSource)
		isSlow := i >= *idle
		wg.Go(func() {
			for ctx.Err() == nil {
				select {
				case <-ctx.Done():
					return
				case <-tokens:
				}
				client(ctx, *addr, src, isSlow, *slowEvery, &r, &held)
				select {
				case <-ctx.Done():
				case <-time.After(*pause + rand.N(*pause/5+1)):
				}
			}
		})
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "holding %d\n", held.Load())
			}
		}
	}()
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(&r)
}

// checkLoopback refuses an address outside 127.0.0.0/8 and ::1.
func checkLoopback(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: want ip:port", addr)
	}
	if !ap.Addr().IsLoopback() {
		return fmt.Errorf("-addr %s is not loopback", addr)
	}
	return nil
}

// sourceAddr is the nth address from base, 250 to a /24 (never .0 or
// .255).
func sourceAddr(base netip.Addr, n int) *net.TCPAddr {
	b := base.As4()
	i := max(0, int(b[3])-1) + n
	o4 := 1 + i%250
	o3 := int(b[2]) + i/250
	return &net.TCPAddr{IP: net.IPv4(127, b[1]+byte(o3/256), byte(o3%256), byte(o4))}
}

// client opens one connection and holds it as long as the server lets it.
func client(ctx context.Context, addr string, src *net.TCPAddr, slow bool, every time.Duration, r *result, held *atomic.Int64) {
	d := net.Dialer{LocalAddr: src, Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() == nil {
			atomic.AddInt64(&r.DialErrors, 1)
		}
		return
	}
	defer conn.Close()
	context.AfterFunc(ctx, func() { conn.Close() })
	atomic.AddInt64(&r.Connects, 1)
	n := held.Add(1)
	defer held.Add(-1)
	for {
		peak := atomic.LoadInt64(&r.PeakHeld)
		if n <= peak || atomic.CompareAndSwapInt64(&r.PeakHeld, peak, n) {
			break
		}
	}
	br := bufio.NewReader(conn)
	if !slow {
		if _, err := io.WriteString(conn, "GET /pins HTTP/1.1\r\nHost: pickup\r\n\r\n"); err != nil {
			count(ctx, &r.ResetOrLost)
			return
		}
		if !answer(ctx, br, r) {
			return
		}
		// Hold the connection, idle, until the server closes it.
		if _, err := br.ReadByte(); err == nil || ctx.Err() == nil {
			atomic.AddInt64(&r.Closed, 1)
		}
		return
	}
	const size = 4096
	if _, err := io.WriteString(conn, fmt.Sprintf("POST /pins HTTP/1.1\r\nHost: pickup\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)); err != nil {
		count(ctx, &r.ResetOrLost)
		return
	}
	// An answer may come at any time (a 503 at once, a 408 at the read
	// timeout): read it while the body trickles.
	answered := make(chan bool, 1)
	go func() { answered <- answer(ctx, br, r) }()
	t := time.NewTicker(every)
	defer t.Stop()
	for range size {
		select {
		case ok := <-answered:
			if ok {
				atomic.AddInt64(&r.Closed, 1)
			}
			return
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := conn.Write([]byte{' '}); err != nil {
				<-answered
				atomic.AddInt64(&r.Closed, 1)
				return
			}
		}
	}
	<-answered
}

// answer reads one answer and counts it; it reports whether the
// connection had one that was not a 503.
func answer(ctx context.Context, br *bufio.Reader, r *result) bool {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		if !strings.Contains(err.Error(), "use of closed") {
			count(ctx, &r.ResetOrLost)
		}
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		atomic.AddInt64(&r.Shed, 1)
		return false
	}
	atomic.AddInt64(&r.Answered, 1)
	return true
}

func count(ctx context.Context, n *int64) {
	if ctx.Err() == nil {
		atomic.AddInt64(n, 1)
	}
}
