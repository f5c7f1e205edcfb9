package telemetry_test

import (
	"context"
	"errors"
	"path/filepath"
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

// Appends through the real embedded log are counted by outcome and timed;
// a subscriber's events are counted under its name, and its lag is the age
// of the newest event it was handed.
func TestLogFigures(t *testing.T) {
	ctx := context.Background()
	store, err := embedded.Open(ctx, filepath.Join(t.TempDir(), "events.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewLogMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
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
	err = log.As("projections").Subscribe(sub, 0, eventlog.Filter{}, func(batch []eventlog.Event) error {
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
