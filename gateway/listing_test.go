package gateway_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// Every filter of GET /pins, with the spec's defaults.
func TestListingFilters(t *testing.T) {
	s, _, c := setup(t, gateway.Config{})
	roots := make([]cid.Cid, 5)
	ids := make([]string, 5)
	created := make([]time.Time, 5)
	for i, spec := range []struct{ name, meta string }{
		{"PreciousData.pdf", `{"app":"a","team":"x"}`},
		{"precious-photos", `{"app":"a"}`},
		{"Invoices", `{"app":"b"}`},
		{"", ``},
		{"report PRECIOUS", `{"team":"x"}`},
	} {
		roots[i] = newCID(t)
		body := `{"cid":"` + roots[i].String() + `"`
		if spec.name != "" {
			body += `,"name":"` + spec.name + `"`
		}
		if spec.meta != "" {
			body += `,"meta":` + spec.meta
		}
		ps := c.addPin(body + "}")
		ids[i], created[i] = ps.RequestID, ps.Created.Time
	}
	// Pin 1 pinned, pin 2 pinning, the rest queued.
	s.Claim(t, uuid.MustParse(ids[1]))
	s.Complete(t, uuid.MustParse(ids[1]), "car", 10)
	s.Claim(t, uuid.MustParse(ids[2]))
	s.Sync(t)
	v0 := cid.NewCidV0(roots[3].Hash()).String()
	all := "&status=queued,pinning,pinned,failed"
	for _, tc := range []struct {
		name, query string
		want        []int // indexes of the pins, newest first
		count       int
	}{
		{"no filter: pinned only", "", []int{1}, 1},
		{"every status, newest first", all[1:], []int{4, 3, 2, 1, 0}, 5},
		{"status list", "status=queued,pinning", []int{4, 3, 2, 0}, 4},
		{"one status", "status=pinning", []int{2}, 1},
		{"cid", "cid=" + roots[0].String() + all, []int{0}, 1},
		{"cids, one as CIDv0", "cid=" + roots[4].String() + "," + v0 + all, []int{4, 3}, 2},
		{"name exact", "name=PreciousData.pdf" + all, []int{0}, 1},
		{"name exact is case-sensitive", "name=preciousdata.pdf" + all, nil, 0},
		{"name iexact", "name=preciousdata.pdf&match=iexact" + all, []int{0}, 1},
		{"name partial", "name=recious&match=partial" + all, []int{1, 0}, 2},
		{"name ipartial", "name=PRECIOUS&match=ipartial" + all, []int{4, 1, 0}, 3},
		{"meta one key", "meta=" + url.QueryEscape(`{"app":"a"}`) + all, []int{1, 0}, 2},
		{"meta every key must match", "meta=" + url.QueryEscape(`{"app":"a","team":"x"}`) + all, []int{0}, 1},
		{"before", "before=" + url.QueryEscape(created[2].Format(time.RFC3339Nano)) + all, []int{1, 0}, 2},
		{"after", "after=" + url.QueryEscape(created[2].Format(time.RFC3339Nano)) + all, []int{4, 3}, 2},
		{"before and after", "after=" + url.QueryEscape(created[0].Format(time.RFC3339Nano)) + "&before=" + url.QueryEscape(created[4].Format(time.RFC3339Nano)) + all, []int{3, 2, 1}, 3},
		{"limit keeps the count", "limit=2" + all, []int{4, 3}, 5},
		{"a search by name finds every status", "name=recious&match=partial", []int{1, 0}, 2},
		{"a search by cid finds every status", "cid=" + roots[2].String(), []int{2}, 1},
		{"a search by meta finds every status", "meta=" + url.QueryEscape(`{"team":"x"}`), []int{4, 0}, 2},
		{"paging alone keeps pinned only", "before=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339Nano)), []int{1}, 1},
		{"filters combine", "status=queued&meta=" + url.QueryEscape(`{"team":"x"}`), []int{4, 0}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var list api.PinResults
			c.do(http.MethodGet, "/pins?"+tc.query, "").want(t, http.StatusOK, &list)
			var got []string
			for _, r := range list.Results {
				got = append(got, r.RequestID)
			}
			var want []string
			for _, i := range tc.want {
				want = append(want, ids[i])
			}
			if list.Count != tc.count || !slices.Equal(got, want) {
				t.Fatalf("count %d, results %q; want count %d, %q", list.Count, got, tc.count, want)
			}
		})
	}
}

// Paging with before=<oldest created> reads every pin once, however many
// were made at once, and count tells when to stop, as kubo's client pages.
func TestPagination(t *testing.T) {
	_, _, c := setup(t, gateway.Config{})
	const n = 57
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { c.addPin(`{"cid":"` + newCID(t).String() + `"}`) })
	}
	wg.Wait()
	seen := map[string]bool{}
	query := "status=queued&limit=10"
	var last time.Time
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		var list api.PinResults
		c.do(http.MethodGet, "/pins?"+query, "").want(t, http.StatusOK, &list)
		for _, r := range list.Results {
			if seen[r.RequestID] {
				t.Fatalf("page %d repeats %s", pages, r.RequestID)
			}
			if !last.IsZero() && !r.Created.Before(last) {
				t.Fatalf("page %d is not newest first: %v after %v", pages, r.Created, last)
			}
			seen[r.RequestID], last = true, r.Created.Time
		}
		if list.Count == len(list.Results) {
			break
		}
		query = "status=queued&limit=10&before=" + url.QueryEscape(last.Format(time.RFC3339Nano))
	}
	if len(seen) != n {
		t.Fatalf("paged through %d pins, want %d", len(seen), n)
	}
}

// POST /pins with an Idempotency-Key: a retry gets the first answer, byte
// for byte, and appends nothing; another request under the same key is
// refused.
func TestIdempotencyKey(t *testing.T) {
	s, base, c := setup(t, gateway.Config{})
	body := `{"cid":"` + newCID(t).String() + `","name":"once"}`
	first := c.do(http.MethodPost, "/pins", body, "Idempotency-Key", "key-1")
	first.want(t, http.StatusAccepted, nil)
	head, _ := s.Log.Head(context.Background())

	var wg sync.WaitGroup
	retries := make([]response, 8)
	for i := range retries {
		wg.Go(func() { retries[i] = c.do(http.MethodPost, "/pins", body, "Idempotency-Key", "key-1") })
	}
	wg.Wait()
	for _, r := range retries {
		if r.status != http.StatusAccepted || string(r.body) != string(first.body) {
			t.Fatalf("retry answered %d %s, want the first answer %s", r.status, r.body, first.body)
		}
	}
	if after, _ := s.Log.Head(context.Background()); after != head {
		t.Fatalf("retries appended to the log (%d -> %d)", head, after)
	}
	c.do(http.MethodPost, "/pins", `{"cid":"`+newCID(t).String()+`"}`, "Idempotency-Key", "key-1").
		wantError(t, http.StatusUnprocessableEntity, "IDEMPOTENCY_KEY_REUSED", "different request")

	// Keys are the tenant's own: bob's key-1 is another request.
	bob := bearer(t, base, s.Token(t, "bob"))
	var mine, his api.PinStatus
	first.want(t, http.StatusAccepted, &mine)
	bob.do(http.MethodPost, "/pins", body, "Idempotency-Key", "key-1").want(t, http.StatusAccepted, &his)
	if mine.RequestID == his.RequestID {
		t.Fatal("two tenants' keys named one request")
	}

	// Concurrent first tries make one request.
	body2 := `{"cid":"` + newCID(t).String() + `"}`
	answers := make([]response, 8)
	for i := range answers {
		wg.Go(func() { answers[i] = c.do(http.MethodPost, "/pins", body2, "Idempotency-Key", "key-2") })
	}
	wg.Wait()
	for _, a := range answers[1:] {
		if a.status != http.StatusAccepted || string(a.body) != string(answers[0].body) {
			t.Fatalf("concurrent tries answered differently: %s and %s", answers[0].body, a.body)
		}
	}
	var list api.PinResults
	c.do(http.MethodGet, "/pins?status=queued", "").want(t, http.StatusOK, &list)
	if list.Count != 2 {
		t.Fatalf("alice has %d pins, want 2 (one per key)", list.Count)
	}

	// A replace with a key: its retry finds the old pin gone and answers
	// with the replacement it made.
	var repl, again api.PinStatus
	c.do(http.MethodPost, "/pins/"+mine.RequestID, body2, "Idempotency-Key", "key-3").want(t, http.StatusAccepted, &repl)
	c.do(http.MethodPost, "/pins/"+mine.RequestID, body2, "Idempotency-Key", "key-3").want(t, http.StatusAccepted, &again)
	if repl.RequestID != again.RequestID || !repl.Created.Equal(again.Created.Time) {
		t.Fatalf("retried replace answered %+v, first %+v", again, repl)
	}
	c.do(http.MethodPost, "/pins/"+mine.RequestID, body2, "Idempotency-Key", "key-4").wantError(t, http.StatusNotFound, "NOT_FOUND", "")
}

// A replace whose process stopped after recording the new request but
// before removing the old one is finished by its keyed retry.
func TestReplaceRetryFinishesRemoval(t *testing.T) {
	s, _, c := setup(t, gateway.Config{})
	old := c.addPin(`{"cid":"` + newCID(t).String() + `"}`)
	root := newCID(t).String()
	// What the replace had appended when it stopped: the new request only.
	newID := gateway.KeyedRequestID("alice", "crash")
	r, err := pin.Request(pin.State{}, pin.Requested{RequestID: newID, Tenant: "alice", CID: root,
		Created: time.Now().UTC().Truncate(time.Microsecond), Replaces: uuid.MustParse(old.RequestID)})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := pinlog.Propose(r, uuid.New(), eventlog.Metadata{})
	if _, err := s.Log.Append(context.Background(), pin.Stream(newID), eventlog.NoStream, e); err != nil {
		t.Fatal(err)
	}
	var got api.PinStatus
	c.do(http.MethodPost, "/pins/"+old.RequestID, `{"cid":"`+root+`"}`, "Idempotency-Key", "crash").want(t, http.StatusAccepted, &got)
	if got.RequestID != newID.String() || !got.Created.Equal(r.Created) {
		t.Fatalf("retry answered %+v, want the recorded %s created %v", got, newID, r.Created)
	}
	if st := s.Pin(t, uuid.MustParse(old.RequestID)); !st.Removed || st.ReplacedBy != newID {
		t.Fatalf("old pin after the retry: removed %v by %s, want replaced by %s", st.Removed, st.ReplacedBy, newID)
	}
	c.do(http.MethodGet, "/pins/"+old.RequestID, "").wantError(t, http.StatusNotFound, "NOT_FOUND", "")
}
