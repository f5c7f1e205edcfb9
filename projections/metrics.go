package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
)

// figuresReader is the view the metrics read.
// Figures are the views' totals, what the metrics report.
type Figures = viewrow.Figures

// figuresReader is the views as the metrics read them.
type figuresReader interface {
	Figures(ctx context.Context, now time.Time) (Figures, error)
}

// MetricsConfig configures the metrics projection.
type MetricsConfig struct {
	// Interval is the time between updates (and EMF lines). Default 1m.
	Interval time.Duration
	// Registerer receives the Prometheus gauges; nil registers none.
	Registerer prometheus.Registerer
	// EMF receives a CloudWatch embedded-metric-format line per update
	// (stdout on Lambda and Fargate, where CloudWatch Logs picks them up);
	// nil writes none.
	EMF io.Writer
	// Namespace and Deployment name the CloudWatch metrics: namespace, and
	// the value of the Deployment dimension. Defaults "Pickup", "local".
	Namespace  string
	Deployment string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// MetricsDeps are what the metrics projection works with.
type MetricsDeps struct {
	// Views are where the figures come from.
	Views figuresReader
	// Logger receives failures; nil discards them.
	Logger *slog.Logger
}

// Validate reports a configuration that cannot work.
func (c MetricsConfig) Validate() error {
	if c.Interval < 0 {
		return fmt.Errorf("metrics: negative interval %v", c.Interval)
	}
	return nil
}

func (c *MetricsConfig) setDefaults() {
	if c.Interval == 0 {
		c.Interval = time.Minute
	}
	if c.Namespace == "" {
		c.Namespace = "Pickup"
	}
	if c.Deployment == "" {
		c.Deployment = "local"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Metrics publishes the figures the deployment scales on: the backlog
// (queued plus retries due), pins in flight, pinned and failed counts,
// bytes stored, and the age of the oldest queued pin. It reads them from the
// views every Interval, and exposes them as Prometheus gauges and as
// CloudWatch EMF lines.
type Metrics struct {
	views  figuresReader
	cfg    MetricsConfig
	logger *slog.Logger

	mu   sync.Mutex
	last Figures
	// prev is the last update's figures, for the EMF counts "new in the
	// interval"; seen is false before the first update.
	prev Figures
	seen bool
	age  float64
}

// NewMetrics returns the metrics projection, with its gauges registered.
func NewMetrics(cfg MetricsConfig, d MetricsDeps) (*Metrics, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if d.Views == nil {
		return nil, errors.New("metrics: no views")
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{views: d.Views, cfg: cfg, logger: logger.With("component", "metrics")}
	if cfg.Registerer == nil {
		return m, nil
	}
	gauge := func(name, help string, f func(Figures) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			m.mu.Lock()
			defer m.mu.Unlock()
			return f(m.last)
		})
	}
	counter := func(name, help string, f func(Figures) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			m.mu.Lock()
			defer m.mu.Unlock()
			return f(m.last)
		})
	}
	for _, c := range []prometheus.Collector{
		gauge("pickup_backlog_pins", "Pins a fetcher may claim now: queued, and retries whose time has come.", func(f Figures) float64 { return float64(f.Backlog) }),
		gauge("pickup_scheduled_retry_pins", "Queued pins whose retry is not due yet.", func(f Figures) float64 { return float64(f.Scheduled) }),
		gauge("pickup_in_flight_pins", "Pins claimed by a running attempt.", func(f Figures) float64 { return float64(f.InFlight) }),
		gauge("pickup_awaiting_decision_pins", "Pins whose attempt failed, awaiting the retry decider.", func(f Figures) float64 { return float64(f.AwaitingDecision) }),
		gauge("pickup_pinned_pins", "Pins pinned (not removed).", func(f Figures) float64 { return float64(f.Pinned) }),
		gauge("pickup_failed_pins", "Pins failed for good (dead-lettered, not removed).", func(f Figures) float64 { return float64(f.DeadLettered) }),
		gauge("pickup_stored_bytes", "Bytes of the CARs of pinned pins.", func(f Figures) float64 { return float64(f.BytesPinned) }),
		gauge("pickup_oldest_queued_age_seconds", "How long the longest-waiting claimable pin has waited.", func(Figures) float64 { return m.age }),
		gauge("pickup_views_checkpoint", "Log position the views reflect.", func(f Figures) float64 { return float64(f.Checkpoint) }),
		counter("pickup_pinned_total", "Pins validated into the carpark, since the log began.", func(f Figures) float64 { return float64(f.PinnedEver) }),
		counter("pickup_dead_lettered_total", "Pins dead-lettered, since the log began.", func(f Figures) float64 { return float64(f.DeadLetteredEver) }),
	} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// Run updates the metrics every Interval until ctx ends, and returns ctx's
// error.
func (m *Metrics) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := m.Update(ctx, m.cfg.Now()); err != nil && ctx.Err() == nil {
			m.logger.Error("update failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Update reads the figures at now, sets the gauges and writes an EMF line.
func (m *Metrics) Update(ctx context.Context, now time.Time) (Figures, error) {
	f, err := m.views.Figures(ctx, now)
	if err != nil {
		return f, err
	}
	age := 0.0
	if !f.OldestDue.IsZero() {
		age = max(0, now.Sub(f.OldestDue).Seconds())
	}
	m.mu.Lock()
	prev, seen := m.prev, m.seen
	m.last, m.prev, m.seen, m.age = f, f, true, age
	m.mu.Unlock()
	if m.cfg.EMF == nil {
		return f, nil
	}
	// New in the interval: the first update has no interval before it.
	var pinned, dead int64
	if seen {
		pinned = max(0, f.PinnedEver-prev.PinnedEver)
		dead = max(0, f.DeadLetteredEver-prev.DeadLetteredEver)
	}
	line, err := emfLine(m.cfg.Namespace, m.cfg.Deployment, now, []emfMetric{
		{"Backlog", "Count", float64(f.Backlog)},
		{"InFlight", "Count", float64(f.InFlight)},
		{"OldestQueuedAgeSeconds", "Seconds", age},
		{"DeadLettered", "Count", float64(dead)},
		{"Pinned", "Count", float64(pinned)},
		{"BytesStored", "Bytes", float64(f.BytesPinned)},
	})
	if err != nil {
		return f, err
	}
	if _, err := m.cfg.EMF.Write(line); err != nil {
		return f, fmt.Errorf("write EMF line: %w", err)
	}
	return f, nil
}

type emfMetric struct {
	name, unit string
	value      float64
}

// emfLine is one CloudWatch embedded-metric-format record: the metrics'
// definitions under _aws, their values and the dimension at the top level.
func emfLine(namespace, deployment string, at time.Time, metrics []emfMetric) ([]byte, error) {
	type def struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	defs := make([]def, len(metrics))
	rec := map[string]any{"Deployment": deployment}
	for i, m := range metrics {
		defs[i] = def{m.name, m.unit}
		rec[m.name] = m.value
	}
	rec["_aws"] = map[string]any{
		"Timestamp": at.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  namespace,
			"Dimensions": [][]string{{"Deployment"}},
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode EMF line: %w", err)
	}
	return append(b, '\n'), nil
}
