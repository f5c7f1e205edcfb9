//go:build !wasip1 && !js

package loadtest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
	"github.com/pickup-ipfs/pickup/gateway/internal/loadtest"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/viewtest"
)

// generate appends n pins of one tenant straight to the log, each pin's
// events in one append: 70% queued, 10% pinning, 10% pinned, 10% failed
// for good, with names from a small vocabulary and meta app=0..9.
func generate(b *testing.B, log eventlog.Store, tenant string, n int) []string {
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				id := uuid.New()
				cids[i] = loadtest.CID(tenant, uint64(i))
				at := base.Add(time.Duration(i) * time.Millisecond)
				payloads := []pin.Payload{pin.Requested{RequestID: id, Tenant: tenant, CID: cids[i],
					Name: fmt.Sprintf("%s %d", viewtest.BenchNames()[i%len(viewtest.BenchNames())], i), Meta: map[string]string{"app": strconv.Itoa(i % 10)}, Created: at}}
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
				events := make([]eventlog.Proposed, len(payloads))
				for j, p := range payloads {
					e, err := pinlog.Propose(p, uuid.New(), eventlog.Metadata{Actor: "bench", CorrelationID: id, Time: at})
					if err != nil {
						b.Error(err)
						return
					}
					events[j] = e
				}
				if _, err := log.Append(ctx, pin.Stream(id), eventlog.NoStream, events...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return cids
}

// BenchmarkGetPins: GET /pins with filters over a million pins of one
// tenant (the worst case for its listings), from a second process on
// loopback, 4 clients at a time for 3 s per query. Target: p99 under 20 ms.
// The pins are generated into a fresh embedded log and the views rebuilt
// from it by the projections runner, once per run.
func BenchmarkGetPins(b *testing.B) {
	n := viewtest.BenchPins(b)
	s := gatewaytest.New(b, gateway.Config{})
	s.StopRunner()
	start := time.Now()
	cids := generate(b, s.Log, "big", n)
	if b.Failed() {
		return
	}
	generated := time.Since(start)
	start = time.Now()
	runner, err := projections.NewRunner(projections.RunnerConfig{}, projections.RunnerDeps{Log: s.Log, Views: s.Views})
	if err != nil {
		b.Fatal(err)
	}
	head, _ := s.Log.Head(context.Background())
	if _, err := runner.CatchUp(context.Background(), head, nil); err != nil {
		b.Fatal(err)
	}
	// Printed rather than logged: a benchmark with sub-benchmarks shows
	// none of its own log.
	fmt.Printf("BenchmarkGetPins: %d pins: log written in %v, views rebuilt in %v\n", n, generated.Round(time.Second), time.Since(start).Round(time.Second))
	s.StartRunner()
	token := s.Token(b, "big")
	srv := s.Server(b)
	mid := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n/2) * time.Millisecond).Format(time.RFC3339Nano)
	for _, q := range []struct{ name, query string }{
		{"default (pinned, 10 newest)", ""},
		{"every status", "status=queued,pinning,pinned,failed"},
		{"failed", "status=failed"},
		{"one cid", "cid=" + cids[n/3]},
		{"ten cids", "cid=" + cids[1] + "," + cids[n/9] + "," + cids[n/8] + "," + cids[n/7] + "," + cids[n/6] + "," + cids[n/5] + "," + cids[n/4] + "," + cids[n/3] + "," + cids[n/2] + "," + cids[n-1]},
		{"name exact", "name=" + url.QueryEscape(fmt.Sprintf("%s %d", viewtest.BenchNames()[(n/2)%len(viewtest.BenchNames())], n/2))},
		{"name iexact", "match=iexact&name=" + url.QueryEscape(fmt.Sprintf("preciousdata.pdf %d", n/2/8*8))},
		{"name partial, rare", "match=partial&name=" + url.QueryEscape(fmt.Sprintf("photos %d", n/2+1))},
		{"name partial, common", "match=partial&name=photos"},
		{"name ipartial", "match=ipartial&name=INVOICES"},
		{"meta", "meta=" + url.QueryEscape(`{"app":"7"}`) + "&status=queued"},
		{"before (page in the middle)", "status=queued,pinning,pinned,failed&before=" + url.QueryEscape(mid)},
		{"after and before", "status=queued&after=" + url.QueryEscape(time.Date(2025, 1, 1, 0, 0, 1, 0, time.UTC).Format(time.RFC3339)) + "&before=" + url.QueryEscape(mid)},
		{"limit 1000", "status=queued,pinning,pinned,failed&limit=1000"},
	} {
		b.Run(q.name, func(b *testing.B) {
			for range b.N {
				r := load(b, spec{Method: http.MethodGet, URLs: []string{srv.URL + "/pins?" + q.query}, Auth: "Bearer " + token,
					Duration: 3 * time.Second, Clients: 4, Want: http.StatusOK})
				report(b, q.name, r)
				b.ReportMetric(r.PerSec, "req/s")
				b.ReportMetric(float64(r.P50)/1e6, "p50-ms")
				b.ReportMetric(float64(r.P99)/1e6, "p99-ms")
			}
		})
	}
}
