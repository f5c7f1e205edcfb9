package telemetry_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

func event(at time.Time) eventlog.Proposed {
	return eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: []byte(`{}`), Meta: eventlog.Metadata{Time: at, Actor: "test"}}
}

// openLog opens an embedded log in a temporary directory, and the log
// figures on a registry of their own.
func openLog(t *testing.T) (*embedded.Store, *prometheus.Registry, *telemetry.LogMetrics) {
	t.Helper()
	store, err := embedded.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewLogMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return store, reg, m
}

// Appends through the real embedded log are counted by outcome and timed;
// a subscriber's events are counted under its name, and its lag is the age
// of the newest event it was handed.
func TestLogFigures(t *testing.T) {
	ctx := context.Background()
	store, reg, m := openLog(t)
	log := telemetry.NewLog(store, m, "process")

	// Three appends that go through, a stale writer, a bad stream name, and
	// a caller that has gone.
	hourAgo := time.Now().Add(-time.Hour)
	for i, stream := range []string{"a", "b", "a"} {
		expected := eventlog.NoStream
		if i == 2 {
			expected = eventlog.At(0)
		}
		if _, err := log.Append(ctx, stream, expected, event(hourAgo)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := log.Append(ctx, "a", eventlog.At(0), event(time.Time{})); !eventlog.IsWrongRevision(err) {
		t.Fatalf("stale append: %v, want a wrong revision", err)
	}
	if _, err := log.Append(ctx, "$reserved", eventlog.Any, event(time.Time{})); !errors.Is(err, eventlog.ErrInvalid) {
		t.Fatalf("bad stream: %v, want invalid", err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := log.Append(gone, "c", eventlog.Any, event(time.Time{})); err == nil {
		t.Fatal("append with a cancelled context went through")
	}

	// The projections read everything: three events, the newest an hour old.
	sub, stop := context.WithCancel(ctx)
	var seen int
	err := log.As("projections").Subscribe(sub, 0, eventlog.Filter{}, func(batch []eventlog.Event) error {
		if seen += len(batch); seen == 3 {
			stop()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("subscription ended with %v", err)
	}

	got := telemetrytest.Samples(t, reg)
	for k, want := range map[string]float64{
		`pickup_eventlog_appends_total{outcome="ok"}`:                     3,
		`pickup_eventlog_appends_total{outcome="wrong_revision"}`:         1,
		`pickup_eventlog_appends_total{outcome="invalid"}`:                1,
		`pickup_eventlog_appends_total{outcome="canceled"}`:               1,
		`pickup_eventlog_append_duration_seconds_count{}`:                 6,
		`pickup_subscription_events_total{subscriber="projections"}`:      3,
		`pickup_subscription_events_total{subscriber="process"}`:          0,
		`pickup_subscription_lag_seconds{subscriber="projections"} >= 1h`: 1,
	} {
		switch k {
		case `pickup_subscription_events_total{subscriber="process"}`:
			if _, ok := got[k]; ok {
				t.Errorf("%s reported; only the subscriber that subscribed should be", k)
			}
		case `pickup_subscription_lag_seconds{subscriber="projections"} >= 1h`:
			if lag := got[`pickup_subscription_lag_seconds{subscriber="projections"}`]; lag < time.Hour.Seconds() {
				t.Errorf("lag %vs, want at least the newest event's age, an hour", lag)
			}
		default:
			if got[k] != want {
				t.Errorf("%s = %v, want %v", k, got[k], want)
			}
		}
	}
}

func TestAppendOutcome(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{&eventlog.WrongRevisionError{Stream: "s"}, "wrong_revision"},
		{eventlog.ErrDuplicateID, "duplicate_id"},
		{eventlog.ErrInvalid, "invalid"},
		{eventlog.ErrClosed, "closed"},
		{context.DeadlineExceeded, "canceled"},
		{errors.New("disk on fire"), "error"},
	} {
		if got := telemetry.AppendOutcome(c.err); got != c.want {
			t.Errorf("AppendOutcome(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// failingStore fails its next fail subscriptions at once, with a handler
// error, and otherwise follows the real log.
type failingStore struct {
	eventlog.Store
	fail int
}

func (s *failingStore) Subscribe(ctx context.Context, after eventlog.Position, f eventlog.Filter, handle func([]eventlog.Event) error) error {
	if s.fail > 0 {
		s.fail--
		return errors.New("injected")
	}
	return s.Store.Subscribe(ctx, after, f, handle)
}

// A subscription that fails makes its subscriber (and only it) not
// following, counted and shown as down, until the next subscription
// delivers a batch; one that ends because its caller went counts nothing.
func TestSubscriptionFailures(t *testing.T) {
	ctx := context.Background()
	store, reg, m := openLog(t)
	log := telemetry.NewLog(&failingStore{Store: store, fail: 2}, m, "process")
	fetcher, projections := log.As("fetcher"), log.As("projections")
	nop := func([]eventlog.Event) error { return nil }
	for range 2 {
		if err := fetcher.Subscribe(ctx, 0, eventlog.Filter{}, nop); err == nil {
			t.Fatal("an injected failure was not returned")
		}
	}
	if err := log.Following(ctx); err == nil || !strings.Contains(err.Error(), "fetcher: following the log failed 2 times") || strings.Contains(err.Error(), "projections") {
		t.Errorf("Following after two failures of the fetcher: %v", err)
	}
	samples := telemetrytest.Samples(t, reg)
	if samples[`pickup_subscription_failures_total{subscriber="fetcher"}`] != 2 || samples[`pickup_subscription_up{subscriber="fetcher"}`] != 0 {
		t.Errorf("failures %v, up %v; want 2 and 0", samples[`pickup_subscription_failures_total{subscriber="fetcher"}`], samples[`pickup_subscription_up{subscriber="fetcher"}`])
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	projections.Subscribe(gone, 0, eventlog.Filter{}, nop)
	if _, err := log.Append(ctx, "a", eventlog.Any, event(time.Now())); err != nil {
		t.Fatal(err)
	}
	// The next subscription delivers the event: following again.
	stop := errors.New("stop")
	if err := fetcher.Subscribe(ctx, 0, eventlog.Filter{}, func([]eventlog.Event) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("subscription: %v", err)
	}
	// The handler's own error is a failure too: the subscriber stopped
	// following the log.
	if err := log.Following(ctx); err == nil || !strings.Contains(err.Error(), "failed 1 times") {
		t.Errorf("Following after the handler's error: %v", err)
	}
	if err := fetcher.Subscribe(ctx, 0, eventlog.Filter{}, func([]eventlog.Event) error {
		if err := log.Following(ctx); err != nil {
			t.Errorf("Following once a batch is delivered: %v", err)
		}
		return stop
	}); !errors.Is(err, stop) {
		t.Fatalf("subscription: %v", err)
	}
	if got := telemetrytest.Samples(t, reg)[`pickup_subscription_failures_total{subscriber="projections"}`]; got != 0 {
		t.Errorf("a subscription whose caller went counted %v failures", got)
	}
}
