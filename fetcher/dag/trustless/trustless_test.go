package trustless

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/pin"
)

// TestAsksForTheSpecsCAR proves the request a gateway gets: the path, the
// query and the Accept header of the trustless gateway spec.
func TestAsksForTheSpecsCAR(t *testing.T) {
	t.Parallel()
	root := cid.MustParse("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	got := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		http.NotFound(w, r)
	}))
	defer srv.Close()
	s, err := New(Config{URL: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := s.Fetch(context.Background(), dag.Request{Root: root}, dag.Limits{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer blocks.Close()
	_, err = blocks.Next()
	if dag.ReasonOf(err) != pin.ReasonRootNotFound {
		t.Errorf("404 gave %v, want root_not_found", err)
	}
	r := <-got
	if r.Method != http.MethodGet || r.URL.Path != "/ipfs/"+root.String() {
		t.Errorf("%s %s", r.Method, r.URL.Path)
	}
	if q := r.URL.Query(); q.Get("format") != "car" || q.Get("dag-scope") != "all" {
		t.Errorf("query %q", r.URL.RawQuery)
	}
	if a := r.Header.Get("Accept"); a != "application/vnd.ipld.car;version=1;order=dfs;dups=n" {
		t.Errorf("Accept %q", a)
	}
}

// TestRefusesTheWrongCAR proves that a response the gateway itself labels
// as something other than what was asked is refused before its bytes are
// read.
func TestRefusesTheWrongCAR(t *testing.T) {
	t.Parallel()
	tests := []struct {
		contentType string
		ok          bool
	}{
		{"application/vnd.ipld.car; version=1; order=dfs; dups=n", true},
		{"application/vnd.ipld.car", true},
		{"application/vnd.ipld.car; version=1", true},
		{"application/vnd.ipld.car; version=2", false},
		{"application/vnd.ipld.car; version=1; order=unk", false},
		{"application/vnd.ipld.car; version=1; order=dfs; dups=y", false},
		{"text/html; charset=utf-8", false},
		{"", false},
	}
	for _, tt := range tests {
		err := checkContentType(tt.contentType)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err = %v, want ok = %v", tt.contentType, err, tt.ok)
		}
		if err != nil && dag.ReasonOf(err) != pin.ReasonSourcesFailed {
			t.Errorf("%q: reason %s", tt.contentType, dag.ReasonOf(err))
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		header string
		try    int
		want   time.Duration
	}{
		{"0", 0, 0},
		{"7", 0, 7 * time.Second},
		{" 12 ", 0, 12 * time.Second},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 0, 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, 0},
		{"", 0, time.Second},
		{"soon", 2, 4 * time.Second},
		{"", 40, 64 * time.Second},
		{"-5", 0, time.Second},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.header, tt.try, now); got != tt.want {
			t.Errorf("retryAfter(%q, %d) = %s, want %s", tt.header, tt.try, got, tt.want)
		}
	}
}

// FuzzRetryAfter: whatever a gateway puts in Retry-After, the wait is
// never negative, so a hostile header cannot turn into a tight loop.
func FuzzRetryAfter(f *testing.F) {
	for _, h := range []string{"0", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999", "9223372036", ""} {
		f.Add(h, 1)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, h string, try int) {
		if try < 0 {
			try = -try
		}
		if got := retryAfter(h, try, now); got < 0 {
			t.Fatalf("retryAfter(%q, %d) = %s", h, try, got)
		}
	})
}

// FuzzContentType: any Content-Type is accepted or refused as a
// sources_failed failure, never anything else.
func FuzzContentType(f *testing.F) {
	for _, ct := range []string{"application/vnd.ipld.car; version=1; order=dfs; dups=n", "text/plain", ";;=", "application/vnd.ipld.car; order=\"dfs\""} {
		f.Add(ct)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		if err := checkContentType(ct); err != nil && dag.ReasonOf(err) != pin.ReasonSourcesFailed {
			t.Fatalf("%q: %v", ct, err)
		}
	})
}
