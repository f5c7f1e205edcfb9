package viewtest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// BenchPins is how many pins the listing benchmarks (the stores' and GET
// /pins') list over: PICKUP_BENCH_PINS, or the million.
func BenchPins(b *testing.B) int {
	if s := os.Getenv("PICKUP_BENCH_PINS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			b.Fatalf("PICKUP_BENCH_PINS=%q: want a number of at least 1000", s)
		}
		return n
	}
	return 1_000_000
}

// BenchNames returns the vocabulary of the listing benchmarks' pin names: the
// i-th pin is named BenchNames()[i%8] followed by i, so that a word of it is
// in one name in eight.
func BenchNames() []string {
	return []string{"PreciousData.pdf", "holiday-photos", "Invoices 2024", "backup.tar", "dataset-v2", "README", "site", "Podcast Episode"}
}

// benchCID is the i-th pin's CID: raw leaves of distinct content.
func benchCID(i int) string {
	mh, _ := multihash.Sum([]byte("pin "+strconv.Itoa(i)), multihash.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, mh).String()
}

// fillTenant applies n pins of one tenant to the store, a millisecond
// apart: 70% queued, 10% pinning, 10% pinned, 10% failed for good, named
// from a small vocabulary with their number, with meta app=0..9.
func fillTenant(b *testing.B, s Store, tenant string, n int) time.Time {
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []eventlog.Event
	var pos eventlog.Position
	flush := func() {
		if len(evs) == 0 {
			return
		}
		if _, err := s.Apply(ctx, evs[0].Position-1, viewrow.Prepare(evs)); err != nil {
			b.Fatal(err)
		}
		evs = evs[:0]
	}
	for i := range n {
		id := uuid.New()
		at := base.Add(time.Duration(i) * time.Millisecond)
		payloads := []pin.Payload{pin.Requested{RequestID: id, Tenant: tenant, CID: benchCID(i),
			Name: fmt.Sprintf("%s %d", BenchNames()[i%len(BenchNames())], i), Meta: map[string]string{"app": strconv.Itoa(i % 10)}, Created: at}}
		started := pin.FetchStarted{Attempt: 1, Fetcher: "f", LeaseUntil: at.Add(time.Hour)}
		switch i % 10 {
		case 1:
			payloads = append(payloads, started, pin.FetchProgress{Attempt: 1, Fetcher: "f", Bytes: 1 << 20, Blocks: 4, LeaseUntil: at.Add(time.Hour)})
		case 2:
			payloads = append(payloads, started,
				pin.CarUploaded{Attempt: 1, Fetcher: "f", Key: "k", Bytes: 100, Blocks: 1, CarCID: "car"},
				pin.CarValidated{Attempt: 1, Key: "k", Bytes: 100, CarCID: "car"})
		case 3:
			payloads = append(payloads, started, pin.Failed{Attempt: 1, Reason: pin.ReasonTooBig, Message: "big", Permanent: true},
				pin.DeadLettered{Failures: 1, Reason: pin.ReasonTooBig, Message: "big"})
		}
		for rev, p := range payloads {
			pr, err := pinlog.Propose(p, uuid.New(), eventlog.Metadata{Actor: "bench", Time: at})
			if err != nil {
				b.Fatal(err)
			}
			pos++
			evs = append(evs, eventlog.Event{ID: pr.ID, Stream: pin.Stream(id), Revision: uint64(rev), Position: pos, Type: pr.Type,
				Version: pr.Version, Data: pr.Data, Meta: pr.Meta})
		}
		if len(evs) >= 16384 {
			flush()
		}
	}
	flush()
	return base
}

// BenchmarkList lists a tenant of BenchPins pins with every kind of
// filter, as GET /pins does, and reports each query's latency: p50 and
// p99 in milliseconds. Target: p99 under 20 ms. The pins are applied to
// the store once, through the same path as the runner's.
func BenchmarkList(b *testing.B, s Store, prepare func()) {
	n := BenchPins(b)
	start := time.Now()
	base := fillTenant(b, s, "big", n)
	if prepare != nil {
		prepare()
	}
	b.Logf("%d pins of one tenant applied in %v", n, time.Since(start).Round(time.Millisecond))
	mid := base.Add(time.Duration(n/2) * time.Millisecond)
	all := pin.Statuses()
	tenCIDs := []string{benchCID(1), benchCID(n / 9), benchCID(n / 8), benchCID(n / 7), benchCID(n / 6), benchCID(n / 5), benchCID(n / 4), benchCID(n / 3), benchCID(n / 2), benchCID(n - 1)}
	for _, q := range []struct {
		name string
		q    views.ListQuery
	}{
		{"default (pinned, 10 newest)", views.ListQuery{Statuses: []pin.Status{pin.StatusPinned}}},
		{"every status", views.ListQuery{Statuses: all}},
		{"failed", views.ListQuery{Statuses: []pin.Status{pin.StatusFailed}}},
		{"queued and pinning", views.ListQuery{Statuses: []pin.Status{pin.StatusQueued, pin.StatusPinning}}},
		{"one cid", views.ListQuery{CIDs: []string{benchCID(n / 3)}, Statuses: all}},
		{"ten cids", views.ListQuery{CIDs: tenCIDs, Statuses: all}},
		{"name exact", views.ListQuery{Name: fmt.Sprintf("%s %d", BenchNames()[(n/2)%len(BenchNames())], n/2), Statuses: all}},
		{"name iexact", views.ListQuery{Name: fmt.Sprintf("preciousdata.pdf %d", n/2/8*8), Match: views.MatchIExact, Statuses: all}},
		{"name partial, rare", views.ListQuery{Name: fmt.Sprintf("photos %d", n/2+1), Match: views.MatchPartial, Statuses: all}},
		{"name partial, common", views.ListQuery{Name: "photos", Match: views.MatchPartial, Statuses: all}},
		{"name ipartial, common", views.ListQuery{Name: "INVOICES", Match: views.MatchIPartial, Statuses: all}},
		{"meta", views.ListQuery{Meta: map[string]string{"app": "7"}, Statuses: []pin.Status{pin.StatusQueued}}},
		{"before (a page in the middle)", views.ListQuery{Before: mid, Statuses: all}},
		{"after and before", views.ListQuery{After: base.Add(time.Second), Before: mid, Statuses: []pin.Status{pin.StatusQueued}}},
		{"limit 1000", views.ListQuery{Statuses: all, Limit: 1000}},
	} {
		b.Run(q.name, func(b *testing.B) {
			lq := q.q
			lq.Tenant = "big"
			if lq.Limit == 0 {
				lq.Limit = 10
			}
			ctx := context.Background()
			var lat []time.Duration
			var count int
			// About a second of queries, and at least 5.
			deadline := time.Now().Add(time.Second)
			for i := 0; i < b.N || len(lat) < 5 || time.Now().Before(deadline); i++ {
				t0 := time.Now()
				res, err := s.List(ctx, lq)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				count = res.Count
				if len(lat) >= 2000 {
					break
				}
			}
			slices.Sort(lat)
			p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(p(0.5), "p50-ms")
			b.ReportMetric(p(0.99), "p99-ms")
			b.ReportMetric(float64(count), "matches")
		})
	}
}
