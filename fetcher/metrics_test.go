package fetcher_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/fetcher"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
	"github.com/pickup-ipfs/pickup/pin"
)

// A fetched pin, a pin completed from the carpark, and a failed one: the
// pool's figures count each attempt once with its outcome and reason, and
// the bytes and blocks received are exactly the CAR's; every line logged
// about a pin, by the pool and by the CAR store below it, names the pin.
func TestAttemptFiguresAndLogs(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewFetchMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var logs telemetrytest.Buffer
	logger := slog.New(telemetry.NewHandler(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if w.cars, err = carstore.NewDir(w.carDir, logger); err != nil {
		t.Fatal(err)
	}
	w.startPool(poolOptions{name: "f1", metrics: m, logger: logger})

	root := w.file(3<<20+4321, 31)
	fetched := w.request(root)
	w.waitFor(fetched, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
	reused := w.request(root)
	w.waitFor(reused, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
	sum := sha256.Sum256([]byte("a block no one has"))
	mh, _ := multihash.Encode(sum[:], multihash.SHA2_256)
	failed := w.request(cid.NewCidV1(cid.Raw, mh))
	f := w.waitFor(failed, "failed", func(s pin.State) bool { return s.LastFailure != nil }).LastFailure

	carBytes := w.exported(root)
	br, err := car.NewBlockReader(bytes.NewReader(carBytes))
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for {
		if _, err := br.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		blocks++
	}
	got := telemetrytest.Samples(t, reg)
	for k, want := range map[string]float64{
		`pickup_fetch_attempts_total{outcome="pinned",reason="fetched"}`:                         1,
		`pickup_fetch_attempts_total{outcome="pinned",reason="carpark"}`:                         1,
		fmt.Sprintf(`pickup_fetch_attempts_total{outcome="failed",reason=%q}`, string(f.Reason)): 1,
		`pickup_fetch_bytes_total{source="gateway"}`:                                             float64(len(carBytes)),
		`pickup_fetch_blocks_total{source="gateway"}`:                                            float64(blocks),
		`pickup_fetch_duration_seconds_count{outcome="pinned"}`:                                  2,
		`pickup_fetch_duration_seconds_count{outcome="failed"}`:                                  1,
		`pickup_fetches_in_flight{}`:                                                             0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "pickup_fetch_attempts_total") && !strings.Contains(k, `"pinned"`) && !strings.Contains(k, `"failed"`) {
			t.Errorf("unexpected attempt outcome %s", k)
		}
	}

	// What each pin's lines say, by pin_request_id.
	byPin := map[string][]string{}
	for _, l := range logs.Lines(t) {
		id, _ := l[telemetry.PinRequestIDKey].(string)
		byPin[id] = append(byPin[id], fmt.Sprint(l["component"], ": ", l["msg"]))
	}
	for _, c := range []struct {
		id   string
		want []string
	}{
		{fetched.String(), []string{"fetcher: claimed", "carstore: CAR promoted", "fetcher: pinned"}},
		{reused.String(), []string{"fetcher: claimed", "fetcher: pinned from the carpark without fetching"}},
		{failed.String(), []string{"fetcher: claimed", "fetcher: attempt failed"}},
	} {
		lines := strings.Join(byPin[c.id], "\n")
		for _, want := range c.want {
			if !strings.Contains(lines, want) {
				t.Errorf("pin %s: no line %q among its lines:\n%s", c.id, want, lines)
			}
		}
	}
	// A claimed attempt's line never names another pin, nor none.
	for _, msg := range byPin[""] {
		if strings.Contains(msg, "claimed") || strings.Contains(msg, "pinned") {
			t.Errorf("line %q names no pin", msg)
		}
	}
}

var _ fetcher.Metrics = (*telemetry.FetchMetrics)(nil)
