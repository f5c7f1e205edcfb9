package viewrow_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/views"
	"github.com/pickup-ipfs/pickup/tenant"
)

func TestCanonicalCID(t *testing.T) {
	const v1 = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
	for _, c := range []struct {
		in, want string
	}{
		// Expected forms computed apart: multihash bytes, 0x01 0x70 before them,
		// base32.
		{"QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "bafybeie5nqv6kd3qnfjupgvz34woh3oksc3iau6abmyajn7qvtf6d2ho34"},
		{v1, v1},
		{"zdj7WhuEjrB52m1BisYCtmjH1hSKa7yZ3jEZ9JcXaFRD51wVz", "bafybeifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"}, // base58btc CIDv1
		{"bafkqaaa", "bafkqaaa"}, // identity hash, raw
	} {
		got, err := views.CanonicalCID(c.in)
		if err != nil || got != c.want {
			t.Errorf("CanonicalCID(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "Qm", "not a cid", "bafy", "b" + strings.Repeat("a", 80)} {
		if got, err := views.CanonicalCID(bad); err == nil {
			t.Errorf("CanonicalCID(%q) = %q, want an error", bad, got)
		}
	}
}

// FuzzCanonicalCID: whatever a client sends as a CID, CanonicalCID fails
// or returns a canonical form, which is its own canonical form.
func FuzzCanonicalCID(f *testing.F) {
	for _, s := range []string{"QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "bafkqaaa", "zdj7WhuEjrB52m1BisYCtmjH1hSKa7yZ3jEZ9JcXaFRD51wVz", "", "f01", "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := views.CanonicalCID(s)
		if err != nil {
			return
		}
		if again, err := views.CanonicalCID(c); err != nil || again != c {
			t.Errorf("CanonicalCID(%q) = %q, whose canonical form is %q, %v", s, c, again, err)
		}
		if !strings.HasPrefix(c, "b") {
			t.Errorf("CanonicalCID(%q) = %q, not base32", s, c)
		}
	})
}

func TestPlanList(t *testing.T) {
	for _, c := range []struct {
		name    string
		q       views.ListQuery
		driver  viewrow.Driver
		counted bool
	}{
		{"no filter", views.ListQuery{}, viewrow.DriveStatus, true},
		{"statuses and dates", views.ListQuery{Statuses: []pin.Status{pin.StatusPinned}, Before: time.Now()}, viewrow.DriveStatus, true},
		{"partial name", views.ListQuery{Name: "x", Match: views.MatchPartial}, viewrow.DriveStatus, false},
		{"cid first", views.ListQuery{CIDs: []string{"bafkqaaa"}, Name: "x", Meta: map[string]string{"a": "b"}}, viewrow.DriveCID, false},
		{"exact name", views.ListQuery{Name: "x", Meta: map[string]string{"a": "b"}}, viewrow.DriveName, false},
		{"iexact name", views.ListQuery{Name: "X", Match: views.MatchIExact}, viewrow.DriveName, false},
		{"meta", views.ListQuery{Name: "x", Match: views.MatchIPartial, Meta: map[string]string{"a": "b"}}, viewrow.DriveMeta, false},
	} {
		c.q.Tenant, c.q.Limit = "t", 10
		p, err := viewrow.PlanList(c.q)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.Driver != c.driver || p.Counted() != c.counted {
			t.Errorf("%s: driver %d counted %v, want %d %v", c.name, p.Driver, p.Counted(), c.driver, c.counted)
		}
	}
	p, _ := viewrow.PlanList(views.ListQuery{Tenant: "t", Limit: 1, Name: "ÄB", Match: views.MatchIPartial,
		Before: time.Unix(10, 1500), After: time.Unix(10, 1500)})
	if p.Name != "äb" || p.Before != 10_000_002 || p.After != 10_000_001 {
		t.Errorf("plan %+v: want the folded name, before rounded up and after down to whole micros", p)
	}
	if p, _ := viewrow.PlanList(views.ListQuery{Tenant: "t", Limit: 1, Statuses: pin.Statuses()}); !p.AllStatuses {
		t.Errorf("every status named is no status filter")
	}
	if _, err := viewrow.PlanList(views.ListQuery{Tenant: "t", Limit: 1, Statuses: []pin.Status{"pinning", "Pinned"}}); !errors.Is(err, views.ErrInvalid) {
		t.Errorf("status Pinned: %v, want ErrInvalid", err)
	}
}

// TestCountBetween checks counting from block counters against counting
// every row, over random pinsets and bounds.
func TestCountBetween(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := int64(rnd.IntN(5 * viewrow.BlockSize))
		in := make([]bool, n+1) // in[seq]: the row matches
		blocks := map[int64]int64{}
		for seq := int64(1); seq <= n; seq++ {
			if rnd.IntN(3) > 0 {
				in[seq] = true
				blocks[seq/viewrow.BlockSize]++
			}
		}
		sum := func(below int64) (int64, error) {
			var s int64
			for b, c := range blocks {
				if b < below {
					s += c
				}
			}
			return s, nil
		}
		rows := func(from, to int64) (int64, error) {
			var c int64
			for seq := max(from, 1); seq < min(to, n+1); seq++ {
				if in[seq] {
					c++
				}
			}
			return c, nil
		}
		lo := int64(rnd.IntN(int(n) + 2))
		hi := int64(rnd.IntN(int(n)+2)) + lo
		if rnd.IntN(4) == 0 {
			hi = viewrow.NoSeq
		}
		want, _ := rows(lo+1, hi)
		if got, _ := viewrow.CountBetween(lo, hi, sum, rows); got != want {
			t.Fatalf("%d rows, %d < seq < %d: counted %d, want %d", n, lo, hi, got, want)
		}
	}
}

// FuzzProject feeds the projection events with any type and body, as a log
// written by anyone may hold: it never fails or panics, leaves out what it
// cannot read, and gives the same changes every time.
func FuzzProject(f *testing.F) {
	id := uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	req, _ := json.Marshal(pin.Requested{RequestID: id, Tenant: "t", CID: "bafkqaaa", Created: time.Unix(1, 0)})
	f.Add(pin.TypeRequested, req, pin.TypeFetchStarted, []byte(`{"attempt":1,"fetcher":"f","lease_until":"2026-01-01T00:00:00Z"}`), true)
	f.Add(pin.TypeRequested, []byte(`{"request_id":"`+id.String()+`","tenant":"","cid":"","meta":{"":"\u0000"}}`), pin.TypeRemoved, []byte(`{}`), false)
	f.Add(tenant.TypeTokenIssued, []byte(`{"token_id":"`+id.String()+`","hash":"zz"}`), tenant.TypeTokenRevoked, []byte(`{}`), false)
	f.Fuzz(func(t *testing.T, type1 string, data1 []byte, type2 string, data2 []byte, token bool) {
		stream := pin.Stream(id)
		if token {
			stream = tenant.Stream(id)
		}
		evs := []eventlog.Event{
			{ID: uuid.New(), Stream: stream, Revision: 0, Position: 1, Type: type1, Version: 1, Data: data1},
			{ID: uuid.New(), Stream: stream, Revision: 1, Position: 2, Type: type2, Version: 1, Data: data2},
		}
		var first *viewrow.Changes
		for range 2 {
			b := viewrow.Prepare(evs)
			l := viewrow.NewLoaded()
			b.RootKeys(l)
			ch, err := b.Project(l)
			if err != nil {
				t.Fatalf("project: %v", err)
			}
			if ch.Checkpoint != 2 {
				t.Errorf("checkpoint %d, want 2", ch.Checkpoint)
			}
			for _, p := range ch.Pins {
				if strings.ContainsRune(p.New.Tenant+p.New.Name+p.New.CID, 0) {
					t.Errorf("NUL in a text column: %+v", p.New)
				}
			}
			ch.Skipped = nil // errors hold fresh values
			if first == nil {
				first = ch
			} else if !reflect.DeepEqual(first, ch) {
				t.Errorf("two projections of the same events differ")
			}
		}
	})
}

func rowsOf(rows ...viewrow.DumpRow) viewrow.Rows {
	return func(yield func(viewrow.DumpRow, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func TestDiffAndChecksum(t *testing.T) {
	row := func(table, key, value string) viewrow.DumpRow {
		return viewrow.DumpRow{Table: table, Key: key, Value: json.RawMessage(value)}
	}
	a := []viewrow.DumpRow{row("pins", "a", "1"), row("pins", "b", "2"), row("tenants", "x", "1"), row("totals", "n", "5")}
	b := []viewrow.DumpRow{row("pins", "a", "1"), row("pins", "c", "3"), row("tenants", "x", "9"), row("tokens", "t", "1")}
	shown, total, err := viewrow.Diff(rowsOf(a...), rowsOf(b...), 2)
	if err != nil {
		t.Fatal(err)
	}
	if total != 5 || len(shown) != 2 || !strings.Contains(shown[0], `pins "b": only in the first`) || !strings.Contains(shown[1], `pins "c": only in the second`) {
		t.Errorf("diff: %d in all, shown %q", total, shown)
	}
	if _, total, _ := viewrow.Diff(rowsOf(a...), rowsOf(a...), 10); total != 0 {
		t.Errorf("a dump differs from itself in %d rows", total)
	}
	sa, _ := viewrow.Checksum(rowsOf(a...))
	sb, _ := viewrow.Checksum(rowsOf(b...))
	sa2, _ := viewrow.Checksum(rowsOf(a...))
	if sa == sb || sa != sa2 {
		t.Errorf("checksums %s %s %s", sa, sb, sa2)
	}
}
