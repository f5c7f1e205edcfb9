package viewtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// Model lists pins the slow, obvious way: filter every pin the tenant can
// see, sort newest first, count, cut. The stores must agree with it.
func Model(all []views.Pin, q views.ListQuery) views.ListResult {
	var match []views.Pin
	for _, v := range all {
		if v.Tenant != q.Tenant || v.Removed {
			continue
		}
		if len(q.CIDs) > 0 {
			k, err := views.CanonicalCID(v.CID)
			if err != nil {
				k = v.CID
			}
			if !slices.Contains(q.CIDs, k) {
				continue
			}
		}
		if q.Name != "" {
			ok := false
			switch q.Match {
			case views.MatchExact, "":
				ok = v.Name == q.Name
			case views.MatchIExact:
				ok = strings.ToLower(v.Name) == strings.ToLower(q.Name)
			case views.MatchPartial:
				ok = strings.Contains(v.Name, q.Name)
			case views.MatchIPartial:
				ok = strings.Contains(strings.ToLower(v.Name), strings.ToLower(q.Name))
			}
			if !ok {
				continue
			}
		}
		if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, v.Status) {
			continue
		}
		if !q.Before.IsZero() && !v.Created.Before(q.Before) || !q.After.IsZero() && !v.Created.After(q.After) {
			continue
		}
		metaOK := true
		for k, want := range q.Meta {
			if got, ok := v.Meta[k]; !ok || got != want {
				metaOK = false
			}
		}
		if !metaOK {
			continue
		}
		match = append(match, v)
	}
	slices.SortFunc(match, func(a, b views.Pin) int { return b.Created.Compare(a.Created) })
	return views.ListResult{Count: len(match), Pins: match[:min(q.Limit, len(match))]}
}

func describe(q views.ListQuery) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tenant=%s limit=%d", q.Tenant, q.Limit)
	if len(q.CIDs) > 0 {
		fmt.Fprintf(&b, " cid=%v", q.CIDs)
	}
	if q.Name != "" {
		fmt.Fprintf(&b, " name=%q match=%s", q.Name, q.Match)
	}
	if len(q.Statuses) > 0 {
		fmt.Fprintf(&b, " status=%v", q.Statuses)
	}
	if !q.Before.IsZero() {
		fmt.Fprintf(&b, " before=%s", q.Before.Format(time.RFC3339Nano))
	}
	if !q.After.IsZero() {
		fmt.Fprintf(&b, " after=%s", q.After.Format(time.RFC3339Nano))
	}
	if len(q.Meta) > 0 {
		fmt.Fprintf(&b, " meta=%v", q.Meta)
	}
	return b.String()
}

// checkList runs q on the store and compares with the model.
func checkList(t testing.TB, s Store, all []views.Pin, q views.ListQuery) {
	t.Helper()
	got, err := s.List(context.Background(), q)
	if err != nil {
		t.Fatalf("list %s: %v", describe(q), err)
	}
	want := Model(all, q)
	if got.Count != want.Count || !slices.Equal(ids(got.Pins), ids(want.Pins)) {
		t.Errorf("list %s:\n got count %d %v\nwant count %d %v", describe(q), got.Count, ids(got.Pins), want.Count, ids(want.Pins))
	}
	for i := 1; i < len(got.Pins); i++ {
		if !got.Pins[i].Created.Before(got.Pins[i-1].Created) {
			t.Errorf("list %s: not newest first at %d", describe(q), i)
		}
	}
}

// visible returns every pin of the ids that its tenant can see.
func visible(t testing.TB, s Store, tenants []string, requests []uuid.UUID) []views.Pin {
	t.Helper()
	var out []views.Pin
	for _, id := range requests {
		for _, tn := range tenants {
			v, err := s.Pin(context.Background(), tn, id)
			if errors.Is(err, views.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
	}
	return out
}

func testListFilters(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	cidA, cidB, cidC, cidD := testCID(1), canonical(t, testCID(2)), testCID(3), testCID(4)
	step := func() { h.now = h.now.Add(time.Second) }
	p1 := h.request(pin.Requested{CID: cidA, Name: "Photo.JPG", Meta: map[string]string{"app": "web", "env": "prod"}})
	h.do(p1, must[pin.FetchStarted](t)(h.state(p1).Claim("f", h.now, lease)))
	h.do(p1, must[pin.CarUploaded](t)(h.state(p1).Upload(pin.CarUploaded{Attempt: 1, Fetcher: "f", Key: "s", Bytes: 5, Blocks: 1, CarCID: "c"})))
	h.do(p1, must[pin.CarValidated](t)(h.state(p1).Validate(pin.CarValidated{Attempt: 1, Key: "k", Bytes: 5, CarCID: "c"})))
	step()
	p2 := h.request(pin.Requested{CID: cidB, Name: "photo.jpg", Meta: map[string]string{"app": "web"}})
	step()
	p3 := h.request(pin.Requested{CID: canonical(t, cidA), Name: "backup", Meta: map[string]string{"app": "cli", "env": "prod"}})
	h.do(p3, must[pin.FetchStarted](t)(h.state(p3).Claim("f", h.now, lease)))
	h.do(p3, must[pin.Failed](t)(h.state(p3).Fail("f", 1, pin.ReasonTooBig, "big", true)))
	h.do(p3, must[pin.Payload](t)(h.state(p3).DecideRetry(Policy())))
	step()
	p4 := h.request(pin.Requested{CID: cidC, Name: "notes"})
	h.do(p4, must[pin.FetchStarted](t)(h.state(p4).Claim("f", h.now, lease)))
	step()
	p5 := h.request(pin.Requested{CID: cidD, Name: "Photos of 2026", Meta: map[string]string{"env": "prod"}})
	h.do(p5, must[pin.Removed](t)(h.state(p5).Remove(uuid.Nil)))
	step()
	h.request(pin.Requested{Tenant: "bob", CID: cidA, Name: "photo.jpg", Meta: map[string]string{"app": "web"}})
	created := func(id uuid.UUID) time.Time { return mustView(t, s, "alice", id).Created }

	for _, c := range []struct {
		name  string
		q     views.ListQuery
		want  []uuid.UUID
		count int
	}{
		{"everything, newest first", views.ListQuery{}, []uuid.UUID{p4, p3, p2, p1}, 4},
		{"a CID in either version", views.ListQuery{CIDs: []string{canonical(t, cidA)}}, []uuid.UUID{p3, p1}, 2},
		{"several CIDs", views.ListQuery{CIDs: []string{canonical(t, cidA), canonical(t, cidC)}}, []uuid.UUID{p4, p3, p1}, 3},
		{"a removed pin's CID", views.ListQuery{CIDs: []string{canonical(t, cidD)}}, nil, 0},
		{"name exact", views.ListQuery{Name: "photo.jpg", Match: views.MatchExact}, []uuid.UUID{p2}, 1},
		{"name exact by default", views.ListQuery{Name: "Photo.JPG"}, []uuid.UUID{p1}, 1},
		{"name iexact", views.ListQuery{Name: "PHOTO.jpg", Match: views.MatchIExact}, []uuid.UUID{p2, p1}, 2},
		{"name partial", views.ListQuery{Name: "hoto", Match: views.MatchPartial}, []uuid.UUID{p2, p1}, 2},
		{"name partial is case sensitive", views.ListQuery{Name: "Photo", Match: views.MatchPartial}, []uuid.UUID{p1}, 1},
		{"name ipartial", views.ListQuery{Name: "PHOTO", Match: views.MatchIPartial}, []uuid.UUID{p2, p1}, 2},
		{"name partial shorter than a trigram", views.ListQuery{Name: "ot", Match: views.MatchPartial}, []uuid.UUID{p4, p2, p1}, 3},
		{"name ipartial across a dot", views.ListQuery{Name: "tO.j", Match: views.MatchIPartial}, []uuid.UUID{p2, p1}, 2},
		{"name partial with query syntax", views.ListQuery{Name: `"photo" OR *`, Match: views.MatchPartial}, nil, 0},
		{"one status", views.ListQuery{Statuses: []pin.Status{pin.StatusPinned}}, []uuid.UUID{p1}, 1},
		{"several statuses", views.ListQuery{Statuses: []pin.Status{pin.StatusQueued, pin.StatusFailed}}, []uuid.UUID{p3, p2}, 2},
		{"pinning", views.ListQuery{Statuses: []pin.Status{pin.StatusPinning}}, []uuid.UUID{p4}, 1},
		{"meta key", views.ListQuery{Meta: map[string]string{"app": "web"}}, []uuid.UUID{p2, p1}, 2},
		{"every meta key must match", views.ListQuery{Meta: map[string]string{"app": "web", "env": "prod"}}, []uuid.UUID{p1}, 1},
		{"meta of a removed pin", views.ListQuery{Meta: map[string]string{"env": "prod"}}, []uuid.UUID{p3, p1}, 2},
		{"meta value differs", views.ListQuery{Meta: map[string]string{"env": "dev"}}, nil, 0},
		{"before", views.ListQuery{Before: created(p3)}, []uuid.UUID{p2, p1}, 2},
		{"after", views.ListQuery{After: created(p2)}, []uuid.UUID{p4, p3}, 2},
		{"between", views.ListQuery{Before: created(p4), After: created(p1)}, []uuid.UUID{p3, p2}, 2},
		{"limit counts all", views.ListQuery{Limit: 2}, []uuid.UUID{p4, p3}, 4},
		{"cid and status", views.ListQuery{CIDs: []string{canonical(t, cidA)}, Statuses: []pin.Status{pin.StatusPinned}}, []uuid.UUID{p1}, 1},
		{"name, meta and status", views.ListQuery{Name: "photo", Match: views.MatchIPartial, Meta: map[string]string{"app": "web"}, Statuses: []pin.Status{pin.StatusQueued}}, []uuid.UUID{p2}, 1},
		{"cid, name and before", views.ListQuery{CIDs: []string{canonical(t, cidA), cidB}, Name: "photo.jpg", Match: views.MatchIExact, Before: created(p2)}, []uuid.UUID{p1}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := c.q
			q.Tenant = "alice"
			if q.Limit == 0 {
				q.Limit = 10
			}
			res, err := s.List(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if res.Count != c.count || !slices.Equal(ids(res.Pins), c.want) {
				t.Errorf("got count %d %v, want count %d %v", res.Count, ids(res.Pins), c.count, c.want)
			}
		})
	}
}

func testListInvalid(t *testing.T, b Backend) {
	s, _ := open(t, b)
	many := make([]string, views.MaxListCIDs+1)
	for i := range many {
		many[i] = canonical(t, testCID(i))
	}
	for _, q := range []views.ListQuery{
		{Tenant: "alice", Limit: 0},
		{Tenant: "alice", Limit: views.MaxListLimit + 1},
		{Tenant: "alice", Limit: 10, CIDs: many},
		{Tenant: "alice", Limit: 10, Statuses: []pin.Status{"lost"}},
		{Tenant: "alice", Limit: 10, Name: "x", Match: "fuzzy"},
		{Limit: 10},
	} {
		if _, err := s.List(context.Background(), q); !errors.Is(err, views.ErrInvalid) {
			t.Errorf("list %s: %v, want ErrInvalid", describe(q), err)
		}
	}
}

// randomQuery draws a query from the values the pins hold, so that most
// filters match something.
func randomQuery(rnd *rand.Rand, tn string, all []views.Pin) views.ListQuery {
	q := views.ListQuery{Tenant: tn, Limit: []int{1, 3, 10, 1000}[rnd.IntN(4)]}
	pick := func() views.Pin { return all[rnd.IntN(len(all))] }
	if rnd.IntN(5) == 0 {
		for range 1 + rnd.IntN(3) {
			k, _ := views.CanonicalCID(pick().CID)
			q.CIDs = append(q.CIDs, k)
		}
	}
	if rnd.IntN(3) == 0 {
		name := pick().Name
		q.Match = []views.Match{views.MatchExact, views.MatchIExact, views.MatchPartial, views.MatchIPartial}[rnd.IntN(4)]
		if (q.Match == views.MatchPartial || q.Match == views.MatchIPartial) && len(name) > 2 {
			r := []rune(name)
			i := rnd.IntN(len(r) - 1)
			name = string(r[i : i+1+rnd.IntN(len(r)-i)])
		}
		if q.Match == views.MatchIExact || q.Match == views.MatchIPartial {
			name = strings.ToUpper(name)
		}
		q.Name = name
	}
	if rnd.IntN(2) == 0 {
		for _, st := range pin.Statuses() {
			if rnd.IntN(2) == 0 {
				q.Statuses = append(q.Statuses, st)
			}
		}
	}
	if rnd.IntN(3) == 0 {
		q.Before = pick().Created.Add(time.Duration(rnd.IntN(3)-1) * time.Microsecond)
	}
	if rnd.IntN(3) == 0 {
		q.After = pick().Created.Add(time.Duration(rnd.IntN(3)-1) * time.Microsecond)
	}
	if rnd.IntN(4) == 0 {
		if m := pick().Meta; len(m) > 0 {
			q.Meta = map[string]string{}
			for _, k := range slices.Sorted(maps.Keys(m)) {
				if len(q.Meta) == 0 || rnd.IntN(2) == 0 {
					q.Meta[k] = m[k]
				}
			}
		}
	}
	return q
}

func testListModel(t *testing.T, b Backend) {
	s, _ := open(t, b)
	tenants := []string{"alice", "bob", "carol"}
	steps := History(HistoryConfig{Events: size(6000), Seed: 11, Tenants: tenants, Junk: true})
	if _, err := s.Apply(context.Background(), after(Events(steps)), viewrow.Prepare(Events(steps))); err != nil {
		t.Fatal(err)
	}
	var requests []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, st := range steps {
		if id, ok := pin.RequestIDOf(st.Stream); ok && !seen[id] {
			seen[id] = true
			requests = append(requests, id)
		}
	}
	all := visible(t, s, tenants, requests)
	if len(all) < size(200) {
		t.Fatalf("only %d visible pins in the history", len(all))
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	for range size(400) {
		checkList(t, s, all, randomQuery(rnd, tenants[rnd.IntN(len(tenants))], all))
		if t.Failed() {
			return
		}
	}
}

// testListBlocks lists a tenant with pins across several block counters,
// with statuses changing and pins removed, so that counts come from whole
// blocks and partial ones.
func testListBlocks(t *testing.T, b Backend) {
	s, _ := open(t, b)
	h := newPins(t, s)
	rnd := rand.New(rand.NewPCG(8, 9))
	n := 2*viewrow.BlockSize + 300
	var requests []uuid.UUID
	var batch []eventlog.Event
	for i := range n {
		h.now = h.now.Add(time.Millisecond)
		id := uuid.New()
		requests = append(requests, id)
		batch = append(batch, h.pinEvent(id, pin.Requested{RequestID: id, Tenant: "alice", CID: testCID(i % 50), Name: fmt.Sprint("pin ", i%7), Created: h.now,
			Meta: map[string]string{"app": fmt.Sprint(i % 3), "n": fmt.Sprint(i)}}))
		switch rnd.IntN(5) {
		case 0:
			batch = append(batch, h.pinEvent(id, must[pin.FetchStarted](t)(h.state(id).Claim("f", h.now, lease))))
		case 1:
			batch = append(batch, h.pinEvent(id, must[pin.Removed](t)(h.state(id).Remove(uuid.Nil))))
		case 2:
			batch = append(batch, h.pinEvent(id, must[pin.FetchStarted](t)(h.state(id).Claim("f", h.now, lease))))
			batch = append(batch, h.pinEvent(id, must[pin.Failed](t)(h.state(id).Fail("f", 1, pin.ReasonTooBig, "big", true))))
		}
		if len(batch) > 700 {
			h.apply(batch...)
			batch = nil
		}
	}
	h.apply(batch...)
	// Later changes to early pins move counts between blocks' statuses.
	for _, id := range requests[:300] {
		if st := h.state(id); st.Phase == pin.PhaseFetching && !st.Removed {
			h.do(id, must[pin.Removed](t)(st.Remove(uuid.Nil)))
		}
	}
	all := visible(t, s, []string{"alice"}, requests)
	for range size(300) {
		q := views.ListQuery{Tenant: "alice", Limit: []int{1, 10, 100, 1000}[rnd.IntN(4)]}
		if rnd.IntN(4) > 0 {
			q.Before = all[rnd.IntN(len(all))].Created.Add(time.Duration(rnd.IntN(3)-1) * time.Microsecond)
		}
		if rnd.IntN(2) > 0 {
			q.After = all[rnd.IntN(len(all))].Created.Add(time.Duration(rnd.IntN(3)-1) * time.Microsecond)
		}
		for _, st := range pin.Statuses() {
			if rnd.IntN(3) == 0 {
				q.Statuses = append(q.Statuses, st)
			}
		}
		if rnd.IntN(3) == 0 {
			// One meta key: counted from the meta block counters.
			q.Meta = map[string]string{"app": fmt.Sprint(rnd.IntN(4))}
		}
		checkList(t, s, all, q)
		if t.Failed() {
			return
		}
	}
}
