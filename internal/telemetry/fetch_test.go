package telemetry_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

// Sources are labelled by kind, never by their URL.
func TestFetchSourceLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewFetchMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Received("gateway https://trustless-gateway.link", 100, 2)
	m.Received("gateway http://127.0.0.1:8080", 50, 1)
	m.Received("kubo http://127.0.0.1:5001", 7, 1)
	m.Received("bitswap", 3, 1)
	m.Received("something new", 1, 1)
	m.Started()
	m.Started()
	m.Ended("pinned", "fetched", time.Second)
	got := telemetrytest.Samples(t, reg)
	for k, want := range map[string]float64{
		`pickup_fetch_bytes_total{source="gateway"}`:                     150,
		`pickup_fetch_blocks_total{source="gateway"}`:                    3,
		`pickup_fetch_bytes_total{source="kubo"}`:                        7,
		`pickup_fetch_bytes_total{source="bitswap"}`:                     3,
		`pickup_fetch_bytes_total{source="other"}`:                       1,
		`pickup_fetches_in_flight{}`:                                     1,
		`pickup_fetch_attempts_total{outcome="pinned",reason="fetched"}`: 1,
		`pickup_fetch_duration_seconds_count{outcome="pinned"}`:          1,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	for k := range got {
		if strings.Contains(k, "http") {
			t.Errorf("a URL in a label: %s", k)
		}
	}
}

// The open uploads are counted at each scrape; a count that fails leaves
// the figure out and says why, and the rest of the scrape goes on.
func TestOpenUploads(t *testing.T) {
	var logs telemetrytest.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	n, fail := 3, false
	count := func(ctx context.Context) (int, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("count without a deadline")
		}
		if fail {
			return 0, errors.New("bucket unreachable")
		}
		return n, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.NewOpenUploads(t.Context(), count, logger))
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "other"})
	reg.MustRegister(other)

	if got := telemetrytest.Samples(t, reg)[`pickup_multipart_uploads_open{}`]; got != 3 {
		t.Errorf("open uploads %v, want 3", got)
	}
	n = 1
	if got := telemetrytest.Samples(t, reg)[`pickup_multipart_uploads_open{}`]; got != 1 {
		t.Errorf("open uploads %v after one closed, want 1 (counted at each scrape)", got)
	}
	fail = true
	got := telemetrytest.Samples(t, reg)
	if _, ok := got[`pickup_multipart_uploads_open{}`]; ok {
		t.Error("a figure reported when the count failed")
	}
	if _, ok := got[`other{}`]; !ok {
		t.Error("a failed count spoiled the rest of the scrape")
	}
	if !strings.Contains(logs.String(), "bucket unreachable") {
		t.Errorf("the failure was not logged: %q", logs.String())
	}
}
