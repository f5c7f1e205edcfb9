package s3test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/time/rate"
)

// linkChunk is how much of a client's stream the link forwards at a time;
// it is also the limiter's burst, so a link never runs ahead of its rate by
// more than this.
const linkChunk = 64 << 10

// Link returns an endpoint for the server behind a network link that carries
// at most bytesPerSecond from all clients together to the server, as the
// network between a fetcher and S3 would; answers come back unshaped. It is
// a TCP proxy on loopback, closed when the test ends.
func (s *Server) Link(tb testing.TB, bytesPerSecond int) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &link{rate: rate.NewLimiter(rate.Limit(bytesPerSecond), linkChunk), target: s.addr, ctx: ctx}
	l.wg.Go(func() { l.serve(ln) })
	tb.Cleanup(func() {
		cancel()
		ln.Close()
		l.wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

type link struct {
	rate   *rate.Limiter // shared by every connection: one link
	target string
	ctx    context.Context
	wg     sync.WaitGroup
}

func (l *link) serve(ln net.Listener) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		l.wg.Go(func() { l.forward(client) })
	}
}

// forward connects client to the server until either side closes or the
// link is closed.
func (l *link) forward(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", l.target)
	if err != nil {
		return
	}
	defer server.Close()
	stop := context.AfterFunc(l.ctx, func() { client.Close(); server.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(client, server)
		client.Close()
	}()
	_ = l.upstream(server, client)
	server.Close()
	<-done
}

// upstream copies what the client sends to the server at the link's rate.
func (l *link) upstream(dst io.Writer, src io.Reader) error {
	buf := make([]byte, linkChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if werr := l.rate.WaitN(l.ctx, n); werr != nil {
				return werr
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
