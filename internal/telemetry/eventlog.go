package telemetry

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// LogMetrics are the event log's figures, as one process sees them.
type LogMetrics struct {
	appends  *prometheus.CounterVec
	duration prometheus.Histogram
	lag      *prometheus.GaugeVec
	events   *prometheus.CounterVec
}

// NewLogMetrics makes the event log figures and registers them on reg.
func NewLogMetrics(reg prometheus.Registerer) (*LogMetrics, error) {
	m := &LogMetrics{
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pickup_eventlog_appends_total",
			Help: "Appends this process made to the event log, by outcome: ok, wrong_revision (a stale writer lost), duplicate_id, invalid, closed, canceled, error.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pickup_eventlog_append_duration_seconds",
			Help: "Time an append took, from the call to its durable answer (group commit included).",
			// 0.25 ms to 4 s.
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 15),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pickup_subscription_lag_seconds",
			Help: "How far a subscriber of the event log is behind: the age of the newest event of the last batch handed to it, when it was handed over.",
		}, []string{"subscriber"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pickup_subscription_events_total",
			Help: "Events handed to a subscriber of the event log.",
		}, []string{"subscriber"}),
	}
	if err := register(reg, m.appends, m.duration, m.lag, m.events); err != nil {
		return nil, err
	}
	return m, nil
}

// AppendOutcome names an append's result for the outcome label.
func AppendOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case eventlog.IsWrongRevision(err):
		return "wrong_revision"
	case errors.Is(err, eventlog.ErrDuplicateID):
		return "duplicate_id"
	case errors.Is(err, eventlog.ErrInvalid):
		return "invalid"
	case errors.Is(err, eventlog.ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

// Log is an event log that counts and times its appends, and measures how
// far its subscriptions are behind. It works over any backend (embedded,
// EventStoreDB), so the figures mean the same everywhere; it is safe for
// concurrent use, as the store it wraps is.
type Log struct {
	eventlog.Store
	metrics    *LogMetrics
	subscriber string
	now        func() time.Time
}

var _ eventlog.Store = (*Log)(nil)

// NewLog wraps store. Its subscriptions are labelled subscriber (see As).
func NewLog(store eventlog.Store, metrics *LogMetrics, subscriber string) *Log {
	return &Log{Store: store, metrics: metrics, subscriber: subscriber, now: time.Now}
}

// As returns the same log with its subscriptions labelled subscriber, so
// that each part of a process (projections, fetcher) shows its own lag.
func (l *Log) As(subscriber string) *Log {
	out := *l
	out.subscriber = subscriber
	return &out
}

// Append implements eventlog.Store.
func (l *Log) Append(ctx context.Context, stream string, expected eventlog.Expected, events ...eventlog.Proposed) (eventlog.AppendResult, error) {
	start := l.now()
	res, err := l.Store.Append(ctx, stream, expected, events...)
	if l.metrics != nil {
		l.metrics.appends.WithLabelValues(AppendOutcome(err)).Inc()
		l.metrics.duration.Observe(l.now().Sub(start).Seconds())
	}
	return res, err
}

// Subscribe implements eventlog.Store.
func (l *Log) Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error {
	if l.metrics == nil {
		return l.Store.Subscribe(ctx, after, filter, handle)
	}
	lag := l.metrics.lag.WithLabelValues(l.subscriber)
	count := l.metrics.events.WithLabelValues(l.subscriber)
	return l.Store.Subscribe(ctx, after, filter, func(batch []eventlog.Event) error {
		count.Add(float64(len(batch)))
		if t := batch[len(batch)-1].Meta.Time; !t.IsZero() {
			// Clocks of other machines may run ahead: never below zero.
			lag.Set(max(0, l.now().Sub(t).Seconds()))
		}
		return handle(batch)
	})
}
