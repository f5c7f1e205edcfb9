package publichttp_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/publicnet"
	"github.com/pickup-ipfs/pickup/internal/publicnet/publichttp"
)

func redirectTo(t *testing.T, target string) *http.Request {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Request{Method: http.MethodGet, URL: u}
}

// TestCheckRedirect judges hops as a pure function: nothing is dialled.
func TestCheckRedirect(t *testing.T) {
	strict := publichttp.Config{Trusted: "http://127.0.0.1:1000"}
	open := publichttp.Config{Trusted: "http://127.0.0.1:1000", Policy: publicnet.Policy{AllowPrivate: true}}
	one := []*http.Request{redirectTo(t, "http://127.0.0.1:1000/ipfs/x")}
	many := make([]*http.Request, publichttp.MaxRedirects+1)
	for _, c := range []struct {
		name   string
		cfg    publichttp.Config
		target string
		via    []*http.Request
		want   error
	}{
		{"another loopback port", strict, "http://127.0.0.1:2000/", one, publichttp.ErrNotPublic},
		{"loopback by name", strict, "http://localhost:1000/", one, publichttp.ErrNotPublic},
		{"IPv6 loopback", strict, "http://[::1]:1000/", one, publichttp.ErrNotPublic},
		{"IPv4-compatible loopback", strict, "http://[::7f00:1]/", one, publichttp.ErrNotPublic},
		{"IPv4-translated loopback", strict, "http://[::ffff:0:7f00:1]/", one, publichttp.ErrNotPublic},
		{"private network", strict, "https://10.0.0.1/", one, publichttp.ErrNotPublic},
		{"cloud metadata", strict, "http://169.254.169.254/latest/meta-data/", one, publichttp.ErrNotPublic},
		{"a local name", strict, "https://kubo.internal/", one, publichttp.ErrNotPublic},
		{"the trusted host", strict, "http://127.0.0.1:1000/elsewhere", one, nil},
		{"a public address", strict, "https://8.8.8.8/", one, nil},
		{"a public name", strict, "https://gateway.example.com/ipfs/x", one, nil},
		{"not http", strict, "file:///etc/passwd", one, publichttp.ErrRedirect},
		{"gopher", open, "gopher://127.0.0.1:2000/", one, publichttp.ErrRedirect},
		{"one hop too many", open, "http://127.0.0.1:1000/", many, publichttp.ErrRedirect},
		{"loopback, private allowed", open, "http://127.0.0.1:2000/", one, nil},
		{"private, private allowed", open, "http://10.0.0.1/", one, nil},
		{"none followed", publichttp.Config{NoRedirects: true}, "https://8.8.8.8/", one, http.ErrUseLastResponse},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := publichttp.CheckRedirect(c.cfg)(redirectTo(t, c.target), c.via)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("redirect to %s: %v, want %v", c.target, err, c.want)
			}
		})
	}
}

// TestControl judges dialled addresses as a pure function.
func TestControl(t *testing.T) {
	strict, open := publichttp.Control(publicnet.Policy{}), publichttp.Control(publicnet.Policy{AllowPrivate: true})
	for _, c := range []struct {
		addr         string
		strict, open bool
	}{
		{"127.0.0.1:80", false, true}, {"[::1]:443", false, true}, {"[::7f00:1]:80", false, true},
		{"[::ffff:127.0.0.1]:80", false, true}, {"[fec0::1]:80", false, true}, {"10.1.2.3:5001", false, true},
		{"8.8.8.8:443", true, true}, {"[2606:4700::1111]:443", true, true}, {"not an address", false, false},
	} {
		if err := strict("tcp", c.addr, nil); (err == nil) != c.strict || err != nil && !errors.Is(err, publichttp.ErrNotPublic) {
			t.Errorf("strict dial of %s: %v", c.addr, err)
		}
		if err := open("tcp", c.addr, nil); (err == nil) != c.open {
			t.Errorf("private allowed: dial of %s: %v", c.addr, err)
		}
	}
}

// server is a loopback server that counts its requests and answers with
// h.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func get(t *testing.T, c *http.Client, u string) (string, error) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestRedirectToAnotherPort: a gateway (the trusted, configured host) that
// redirects to another loopback port is refused with private addresses
// off, and followed with them on.
func TestRedirectToAnotherPort(t *testing.T) {
	other, otherHits := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "other") })
	gw, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/secret", http.StatusFound)
	})

	strict := publichttp.New(publichttp.Config{Trusted: gw.URL})
	if _, err := get(t, strict, gw.URL+"/ipfs/x"); !errors.Is(err, publichttp.ErrNotPublic) {
		t.Fatalf("redirect to another loopback port with private addresses off: %v, want ErrNotPublic", err)
	}
	if n := otherHits.Load(); n != 0 {
		t.Fatalf("the other port was asked %d times", n)
	}

	open := publichttp.New(publichttp.Config{Trusted: gw.URL, Policy: publicnet.Policy{AllowPrivate: true}})
	if body, err := get(t, open, gw.URL+"/ipfs/x"); err != nil || body != "other" {
		t.Fatalf("redirect with private addresses on: %q, %v", body, err)
	}
}

// TestTrustedHost: the configured host is reached on loopback with private
// addresses off, and its redirects to itself are followed.
func TestTrustedHost(t *testing.T) {
	gw, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusMovedPermanently)
			return
		}
		io.WriteString(w, r.URL.Path)
	})
	c := publichttp.New(publichttp.Config{Trusted: gw.URL})
	if body, err := get(t, c, gw.URL+"/a"); err != nil || body != "/b" {
		t.Fatalf("trusted host: %q, %v", body, err)
	}
}

// TestRedirectLoop: a loop stops after MaxRedirects hops.
func TestRedirectLoop(t *testing.T) {
	var loop *httptest.Server
	loop, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loop.URL+r.URL.Path+"x", http.StatusTemporaryRedirect)
	})
	c := publichttp.New(publichttp.Config{Trusted: loop.URL, Policy: publicnet.Policy{AllowPrivate: true}})
	if _, err := get(t, c, loop.URL+"/"); !errors.Is(err, publichttp.ErrRedirect) {
		t.Fatalf("redirect loop: %v, want ErrRedirect", err)
	}
	if n := hits.Load(); n != publichttp.MaxRedirects+1 {
		t.Fatalf("the loop was asked %d times, want %d", n, publichttp.MaxRedirects+1)
	}
}

// TestDialChecked: a request to an untrusted host is checked where it is
// dialled, after DNS: loopback, by address or by a name that resolves to
// it, is refused with private addresses off.
func TestDialChecked(t *testing.T) {
	s, hits := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") })
	strict := publichttp.New(publichttp.Config{})
	byName := strings.Replace(s.URL, "127.0.0.1", "localhost", 1)
	for _, u := range []string{s.URL, byName} {
		if _, err := get(t, strict, u); !errors.Is(err, publichttp.ErrNotPublic) {
			t.Errorf("GET %s with private addresses off: %v, want ErrNotPublic", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the server was reached %d times", n)
	}
	open := publichttp.New(publichttp.Config{Policy: publicnet.Policy{AllowPrivate: true}})
	if body, err := get(t, open, s.URL); err != nil || body != "reached" {
		t.Fatalf("GET with private addresses on: %q, %v", body, err)
	}
}

// TestNoRedirects: a client that follows none returns the redirect.
func TestNoRedirects(t *testing.T) {
	s, _ := server(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) })
	c := publichttp.New(publichttp.Config{NoRedirects: true, Policy: publicnet.Policy{AllowPrivate: true}})
	resp, err := c.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want the 302 itself", resp.StatusCode)
	}
}
