package ui_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/gateway/ui"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections/views"
)

func TestPageServesItsFiles(t *testing.T) {
	p, err := ui.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		status       int
		contentType  string
		csp          bool
		body         string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", true, `data-poll-ms="1000"`},
		{"HEAD", "/", 200, "text/html; charset=utf-8", true, ""},
		{"GET", "/ui/app.js", 200, "text/javascript; charset=utf-8", false, "sessionStorage"},
		{"GET", "/ui/app.css", 200, "text/css; charset=utf-8", false, ".badge"},
		{"GET", "/ui/page.html", 404, "", false, ""},
		{"GET", "/index.html", 404, "", false, ""},
	} {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status || p.Has(c.path) != (c.status == 200) {
			t.Errorf("%s %s = %d (Has %v), want %d", c.method, c.path, rec.Code, p.Has(c.path), c.status)
			continue
		}
		if c.status != 200 {
			continue
		}
		h := rec.Header()
		if h.Get("Content-Type") != c.contentType || h.Get("ETag") == "" || h.Get("X-Content-Type-Options") != "nosniff" ||
			(h.Get("Content-Security-Policy") != "") != c.csp {
			t.Errorf("%s %s headers %v", c.method, c.path, h)
		}
		if !strings.Contains(rec.Body.String(), c.body) || (c.method == "HEAD" && rec.Body.Len() != 0) {
			t.Errorf("%s %s body lacks %q (or HEAD has one): %.200s", c.method, c.path, c.body, rec.Body)
		}
	}
}

// The page keeps the token out of cookies and URLs: the script stores it
// in sessionStorage only and sends it as a bearer token. (The browser test
// checks the same in a browser.)
func TestScriptKeepsTheTokenInTheSession(t *testing.T) {
	p, err := ui.New()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/app.js", nil))
	js := rec.Body.String()
	for _, banned := range []string{"document.cookie", "localStorage", "innerHTML", "eval(", "?token", "&token"} {
		if strings.Contains(js, banned) {
			t.Errorf("the script uses %q", banned)
		}
	}
	if !strings.Contains(js, `"Authorization": "Bearer " + token()`) || !strings.Contains(js, `credentials: "omit"`) {
		t.Error("the script does not send the token as a bearer token without cookies")
	}
}

func TestThroughputOf(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 30, 40, 0, time.UTC)
	from := time.Date(2025, 6, 1, 11, 31, 0, 0, time.UTC) // the first of 60 minutes ending with 12:30
	pinned := func(at time.Time, bytes int64) views.Pin {
		return views.Pin{Status: pin.StatusPinned, UpdatedAt: at, CarBytes: bytes}
	}
	for _, c := range []struct {
		name      string
		res       views.ListResult
		minutes   map[int]int64 // minute index -> bytes
		pins      int
		partial   bool
		wantBytes int64
	}{
		{"nothing", views.ListResult{}, nil, 0, false, 0},
		{"now and the first minute", views.ListResult{Count: 2, Pins: []views.Pin{pinned(now, 10), pinned(from, 7)}},
			map[int]int64{59: 10, 0: 7}, 2, false, 17},
		{"two in a minute", views.ListResult{Count: 2, Pins: []views.Pin{pinned(now.Add(-5*time.Minute), 1), pinned(now.Add(-5*time.Minute-30*time.Second), 2)}},
			map[int]int64{54: 3}, 2, false, 3},
		{"outside the window", views.ListResult{Count: 2, Pins: []views.Pin{pinned(from.Add(-time.Nanosecond), 5), pinned(now.Add(time.Minute), 5)}},
			nil, 0, false, 0},
		{"not pinned", views.ListResult{Count: 1, Pins: []views.Pin{{Status: pin.StatusPinning, UpdatedAt: now, CarBytes: 9}}},
			nil, 0, false, 0},
		{"more matched than read", views.ListResult{Count: 1001, Pins: []views.Pin{pinned(now, 4)}},
			map[int]int64{59: 4}, 1, true, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ui.ThroughputOf(c.res, now)
			if len(got.Minutes) != 60 || got.From != "2025-06-01T11:31:00.000000Z" || got.Minutes[59].Start != "2025-06-01T12:30:00.000000Z" {
				t.Fatalf("%d minutes from %s, last %s", len(got.Minutes), got.From, got.Minutes[len(got.Minutes)-1].Start)
			}
			for i, m := range got.Minutes {
				if m.Bytes != c.minutes[i] {
					t.Errorf("minute %d (%s): %d bytes, want %d", i, m.Start, m.Bytes, c.minutes[i])
				}
			}
			if got.Pins != c.pins || got.Bytes != c.wantBytes || got.Partial != c.partial {
				t.Errorf("%d pins, %d bytes, partial %v; want %d, %d, %v", got.Pins, got.Bytes, got.Partial, c.pins, c.wantBytes, c.partial)
			}
		})
	}
	q := ui.ThroughputQuery("alice", now)
	if q.Tenant != "alice" || !q.After.Equal(now.Add(-time.Hour)) || q.Limit != views.MaxListLimit || len(q.Statuses) != 1 || q.Statuses[0] != pin.StatusPinned {
		t.Errorf("throughput query %+v", q)
	}
}

func TestTimelineOf(t *testing.T) {
	id := uuid.New()
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var s pin.State
	var events []eventlog.Event
	add := func(decide func(pin.State) (pin.Payload, error)) {
		p, err := decide(s)
		if err != nil {
			t.Fatal(err)
		}
		prop, err := pinlog.Propose(p, uuid.New(), eventlog.Metadata{Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		e := eventlog.Event{ID: prop.ID, Type: prop.Type, Version: prop.Version, Data: prop.Data, Meta: prop.Meta, Stream: pin.Stream(id), Revision: uint64(len(events)), Position: eventlog.Position(100 + len(events))}
		e.Meta.Time = at.Add(time.Duration(len(events)) * time.Second)
		if s, err = pinlog.Apply(s, e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	add(func(s pin.State) (pin.Payload, error) {
		return pin.Request(s, pin.Requested{RequestID: id, Tenant: "alice", CID: "bafkqaaa", Created: at})
	})
	add(func(s pin.State) (pin.Payload, error) { return s.Claim("f1", at, time.Minute) })
	add(func(s pin.State) (pin.Payload, error) { return s.Fail("f1", 1, pin.ReasonTooBig, "40 GiB", true) })
	add(func(s pin.State) (pin.Payload, error) { return s.DecideRetry(pin.DefaultRetryPolicy()) })

	tl := ui.TimelineOf(id, events)
	b, _ := json.Marshal(tl)
	if tl.Status != pin.StatusFailed || len(tl.Entries) != 4 || tl.RequestID != id.String() {
		t.Fatalf("timeline %s", b)
	}
	last := tl.Entries[3]
	if last.Type != "DeadLettered" || !strings.Contains(last.Why, "permanent failure: too_big: 40 GiB") || last.Time != "2025-06-01T12:00:03.000000Z" {
		t.Errorf("the dead letter reads %+v", last)
	}
	if strings.Contains(string(b), "position") {
		t.Errorf("the timeline shows log positions: %s", b)
	}
}
