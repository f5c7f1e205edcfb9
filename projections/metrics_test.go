package projections_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/internal/pintest"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/deciders"
	"github.com/pickup-ipfs/pickup/projections"
)

// TestMetrics checks the figures the deployment scales on, as Prometheus
// gauges and as CloudWatch EMF lines, over pins in every state.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	w := pintest.New(t)
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c := deciders.DefaultBoundConfig()
	w.Request(t0) // queued since t0
	w.Request(t0.Add(time.Minute))
	flying := w.Request(t0)
	w.Do(flying, t0, "f", func(s pin.State) (pin.Payload, error) { return s.Claim("f", t0, c.Lease) })
	pinned := func() {
		id := w.Request(t0)
		w.Do(id, t0, "f", func(s pin.State) (pin.Payload, error) { return s.Claim("f", t0, c.Lease) })
		w.Do(id, t0, "f", func(s pin.State) (pin.Payload, error) {
			return s.Upload(pin.CarUploaded{Attempt: 1, Fetcher: "f", Key: "s", Bytes: 1000, Blocks: 2, CarCID: "c"})
		})
		w.Do(id, t0, "v", func(s pin.State) (pin.Payload, error) {
			return s.Validate(pin.CarValidated{Attempt: 1, Key: "k", Bytes: 1000, CarCID: "c"})
		})
	}
	pinned()
	w.Sync()

	reg := prometheus.NewRegistry()
	var emf bytes.Buffer
	m, err := projections.NewMetrics(projections.MetricsConfig{Registerer: reg, EMF: &emf, Deployment: "test"}, projections.MetricsDeps{Views: w.Views})
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(10 * time.Minute)
	if _, err := m.Update(ctx, now); err != nil {
		t.Fatal(err)
	}
	gauges := telemetrytest.Samples(t, reg)
	for name, want := range map[string]float64{
		"pickup_backlog_pins": 2, "pickup_in_flight_pins": 1, "pickup_oldest_queued_age_seconds": 600,
		"pickup_pinned_pins": 1, "pickup_stored_bytes": 1000, "pickup_pinned_total": 1, "pickup_failed_pins": 0,
	} {
		if got, ok := gauges[name+"{}"]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}

	// Two more pinned in the next interval: the EMF line counts them as new.
	pinned()
	pinned()
	w.Sync()
	if _, err := m.Update(ctx, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(emf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d EMF lines, want one per update:\n%s", len(lines), emf.String())
	}
	var rec struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Deployment                                                                   string
		Backlog, InFlight, OldestQueuedAgeSeconds, DeadLettered, Pinned, BytesStored float64
	}
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatalf("EMF line %s: %v", lines[1], err)
	}
	cw := rec.AWS.CloudWatchMetrics
	if len(cw) != 1 || cw[0].Namespace != "Pickup" || len(cw[0].Dimensions) != 1 || cw[0].Dimensions[0][0] != "Deployment" || len(cw[0].Metrics) != 6 {
		t.Errorf("EMF metadata %+v", rec.AWS)
	}
	if rec.AWS.Timestamp != now.Add(time.Minute).UnixMilli() || rec.Deployment != "test" {
		t.Errorf("EMF timestamp %d, deployment %q", rec.AWS.Timestamp, rec.Deployment)
	}
	if rec.Pinned != 2 || rec.BytesStored != 3000 || rec.Backlog != 2 || rec.InFlight != 1 || rec.DeadLettered != 0 || rec.OldestQueuedAgeSeconds != 660 {
		t.Errorf("EMF values %+v, want 2 new pinned, 3000 bytes, backlog 2, 1 in flight, oldest 660s", rec)
	}
}
