package dag_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/kubo"
	"github.com/pickup-ipfs/pickup/fetcher/dag/trustless"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

// hostileText is what a hostile gateway writes wherever it can: an HTML
// page, a script, terminal escapes (a colour, a window title, a cursor
// move) and what would be a header of its own.
const hostileText = "<html><script>alert(1)</script>\x1b[31mPWNED\x1b]0;owned\x07\x1b[2J X-Injected: 1</html>"

// hostileHeader is hostileText as a header may carry it: Go's client
// refuses a header line with control characters in it.
const hostileHeader = "<html><script>alert(1)</script>PWNED X-Injected: 1</html>"

// rawServer answers every request with response, byte for byte, as a
// hostile server may: a reason phrase, headers and trailers of its own.
func rawServer(t *testing.T, response string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString(response)
		buf.Flush()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// carHeader is the header section of a CAR (its length varint and the
// header), which a source sends before any block.
func carHeader(t *testing.T, car []byte) []byte {
	t.Helper()
	n, k := binary.Uvarint(car)
	if k <= 0 {
		t.Fatal("no CAR header")
	}
	return car[:k+int(n)]
}

// TestFailureMessagesHoldNoRemoteText proves that what a hostile gateway
// or kubo node writes (a body, a reason phrase, a Content-Type, a trailer,
// the text of a cut-short CAR) never reaches the failure message the
// worker records for the tenant, which names the status and the source;
// and that it reaches the log, escaped.
func TestFailureMessagesHoldNoRemoteText(t *testing.T) {
	t.Parallel()
	bs, root := hostileDAG(t)
	header := string(carHeader(t, export(t, bs, root)))
	chunked := func(body string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(body), body) }
	car := "Content-Type: application/vnd.ipld.car; version=1; order=dfs; dups=n\r\n"
	gateway := func(response string) func(t *testing.T) dag.Source {
		return func(t *testing.T) dag.Source { return gatewaySource(t, rawServer(t, response)) }
	}
	kuboAt := func(response string) func(t *testing.T) dag.Source {
		return func(t *testing.T) dag.Source { return kuboSource(t, rawServer(t, response)) }
	}
	tests := []struct {
		name   string
		source func(t *testing.T) dag.Source
		want   string // in the message
		quiet  bool   // the log holds nothing of the remote's text either
	}{
		{"an error page", gateway("HTTP/1.1 500 " + hostileText + "\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n" + hostileText),
			"sources_failed: gateway answered 500 Internal Server Error", false},
		{"a status of its own", gateway("HTTP/1.1 599 " + hostileText + "\r\nConnection: close\r\n\r\n" + hostileText),
			"gateway answered 599", false},
		{"not found, with a page", gateway("HTTP/1.1 404 " + hostileText + "\r\nConnection: close\r\n\r\n" + hostileText),
			"root_not_found: gateway answered 404 Not Found", true},
		{"rate limited for too long", gateway("HTTP/1.1 429 " + hostileText + "\r\nRetry-After: 86400\r\nConnection: close\r\n\r\n"),
			"gateway answered 429 Too Many Requests with Retry-After", true},
		{"a Content-Type of its own", gateway("HTTP/1.1 200 OK\r\nContent-Type: text/html; x=\"" + hostileHeader + "\"\r\nConnection: close\r\n\r\n" + hostileText),
			"gateway answered with a Content-Type other than a CAR", false},
		{"a CAR parameter of its own", gateway("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ipld.car; order=\"" + hostileHeader + "\"\r\nConnection: close\r\n\r\n"),
			"gateway sent a CAR with another order", false},
		{"a trailer", gateway("HTTP/1.1 200 OK\r\n" + car + "Transfer-Encoding: chunked\r\nTrailer: X-Stream-Error\r\n\r\n" +
			chunked(header) + "0\r\nX-Stream-Error: " + hostileHeader + "\r\n\r\n"),
			"X-Stream-Error trailer", false},
		{"a CAR cut short with words", gateway("HTTP/1.1 200 OK\r\n" + car + "Connection: close\r\n\r\n" + header + "\n\n" + hostileText),
			"the source marked the CAR cut short", false},
		{"garbage for a CAR", gateway("HTTP/1.1 200 OK\r\n" + car + "Connection: close\r\n\r\n" + hostileText),
			"malformed CAR", true},
		{"kubo's error", kuboAt("HTTP/1.1 500 " + hostileText + "\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" +
			`{"Message":"` + strings.ReplaceAll(hostileText, "\x1b", `\u001b`) + `","Code":0,"Type":"error"}`),
			"kubo answered 500 Internal Server Error", false},
		{"kubo lacks the root, and says so its way", kuboAt("HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n" +
			`{"Message":"could not find ` + strings.ReplaceAll(hostileText, "\x07", `\u0007`) + `","Type":"error"}`),
			"root_not_found: kubo answered 500 Internal Server Error: it does not have the root", false},
		{"kubo's trailer", kuboAt("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Stream-Error\r\n\r\n" +
			chunked(header) + "0\r\nX-Stream-Error: " + hostileHeader + "\r\n\r\n"),
			"kubo stopped the export with an X-Stream-Error trailer", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs telemetrytest.Buffer
			f, err := dag.New([]dag.Source{tt.source(t)}, dag.Limits{ChunkTimeout: 2 * time.Second}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			var s sinks
			_, _, err = f.Fetch(context.Background(), dag.Request{Root: root}, s.open, nil)
			fl, ok := errors.AsType[*dag.Failure](err)
			if !ok {
				t.Fatalf("error %v is not a *dag.Failure", err)
			}
			msg := fl.Error() // what the worker records as the failure message
			for _, bad := range []string{"PWNED", "<", "script", "\x1b", "\x07", "X-Injected", "owned"} {
				if strings.Contains(msg, bad) {
					t.Errorf("failure message %q holds %q of the remote's text", msg, bad)
				}
			}
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, "127.0.0.1") {
				t.Errorf("failure message %q does not name the source and %q", msg, tt.want)
			}
			log := logs.String()
			if strings.ContainsAny(log, "\x1b\x07") {
				t.Errorf("the log holds raw escapes: %q", log)
			}
			if !strings.Contains(log, "PWNED") && !tt.quiet {
				t.Errorf("the log lost what the remote said: %s", log)
			}
		})
	}
}

// TestPhrase proves that a transport error is told by its kind, never by
// its text.
func TestPhrase(t *testing.T) {
	t.Parallel()
	hostile := errors.New(hostileText)
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("Get %q: %w", hostileText, context.DeadlineExceeded), "timed out"},
		{fmt.Errorf("dial: %w", errors.Join(hostile)), "the request failed"},
		{hostile, "the request failed"},
	} {
		if got := dag.Phrase(c.err); got != c.want {
			t.Errorf("Phrase(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	if got := dag.StatusText(502); got != "502 Bad Gateway" {
		t.Errorf("StatusText(502) = %q", got)
	}
}

// TestGatewayRedirects proves that a gateway's redirect to another
// loopback port is refused with private addresses off (the other server is
// never asked), and followed with them on; and that a redirect loop ends
// the source's try.
func TestGatewayRedirects(t *testing.T) {
	t.Parallel()
	bs, root := hostileDAG(t)
	good := ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{})
	var asked atomic.Int64
	behind := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Redirect(w, r, good.URL()+r.URL.RequestURI(), http.StatusFound)
	}))
	t.Cleanup(behind.Close)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, behind.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(front.Close)
	var loop *httptest.Server
	loop = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loop.URL+r.URL.RequestURI()+"&again", http.StatusFound)
	}))
	t.Cleanup(loop.Close)

	fetch := func(url string, allowPrivate bool) error {
		src, err := trustless.New(trustless.Config{URL: url, AllowPrivate: allowPrivate})
		if err != nil {
			t.Fatal(err)
		}
		var s sinks
		_, _, err = newFetcher(t, dag.Limits{ChunkTimeout: 5 * time.Second}, src).Fetch(context.Background(), dag.Request{Root: root}, s.open, nil)
		return err
	}
	err := fetch(front.URL, false)
	if err == nil || !strings.Contains(err.Error(), "refused to reach an address that is not public") {
		t.Fatalf("redirect to another loopback port, private addresses off: %v", err)
	}
	if n := asked.Load(); n != 0 {
		t.Fatalf("the server redirected to was asked %d times", n)
	}
	if err := fetch(front.URL, true); err != nil {
		t.Fatalf("redirects with private addresses on: %v", err)
	}
	if err := fetch(loop.URL, true); err == nil || !strings.Contains(err.Error(), "refused to follow a redirect") {
		t.Fatalf("redirect loop: %v", err)
	}
}

// TestKuboRedirects: the kubo source keeps to the same policy.
func TestKuboRedirects(t *testing.T) {
	t.Parallel()
	bs, root := hostileDAG(t)
	rpc := ipfstest.NewKuboRPC(t, bs, ipfstest.Tamper{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, rpc.URL()+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(front.Close)
	for _, allow := range []bool{false, true} {
		src, err := kubo.New(kubo.Config{URL: front.URL, AllowPrivate: allow})
		if err != nil {
			t.Fatal(err)
		}
		var s sinks
		_, _, err = newFetcher(t, dag.Limits{ChunkTimeout: 5 * time.Second}, src).Fetch(context.Background(), dag.Request{Root: root}, s.open, nil)
		if allow != (err == nil) {
			t.Errorf("kubo redirect to another loopback port, private allowed %v: %v", allow, err)
		}
	}
}
