package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
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
	failures *prometheus.CounterVec
	up       *prometheus.GaugeVec
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
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pickup_subscription_failures_total",
			Help: "Subscriptions to the event log that ended in an error (the store's, or the subscriber's own in handling a batch); each is resumed with backoff.",
		}, []string{"subscriber"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pickup_subscription_up",
			Help: "1 while a subscriber follows the event log, 0 from a failed subscription until its successor has delivered a batch or run for a second.",
		}, []string{"subscriber"}),
	}
	if err := register(reg, m.appends, m.duration, m.lag, m.events, m.failures, m.up); err != nil {
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
	// subs is shared by every copy As makes.
	subs *subscriptions
}

var _ eventlog.Store = (*Log)(nil)

// NewLog wraps store. Its subscriptions are labelled subscriber (see As).
func NewLog(store eventlog.Store, metrics *LogMetrics, subscriber string) *Log {
	return &Log{Store: store, metrics: metrics, subscriber: subscriber, now: time.Now,
		subs: &subscriptions{failing: map[string]*subFailure{}}}
}

// SubscriptionSettle is how long a subscription that follows a failed one
// must run without failing (or deliver a batch) before its subscriber counts
// as following the log again.
const SubscriptionSettle = time.Second

// subscriptions is what the subscribers of a process are doing: those whose
// last subscription failed and whose next has not settled.
type subscriptions struct {
	mu      sync.Mutex
	failing map[string]*subFailure
}

type subFailure struct {
	err   error
	since time.Time
	count int
}

// Following reports nil when every subscriber of the log (and of its copies
// made by As) follows it, or an error naming those whose subscription failed
// and has not yet resumed: a readiness check.
func (l *Log) Following(context.Context) error {
	l.subs.mu.Lock()
	defer l.subs.mu.Unlock()
	if len(l.subs.failing) == 0 {
		return nil
	}
	var parts []string
	for name, f := range l.subs.failing {
		parts = append(parts, fmt.Sprintf("%s: following the log failed %d times since %s, resubscribing: %v",
			name, f.count, f.since.UTC().Format(time.RFC3339), f.err))
	}
	sort.Strings(parts)
	return errors.New(strings.Join(parts, "; "))
}

func (l *Log) setUp(up bool) {
	if l.metrics == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	l.metrics.up.WithLabelValues(l.subscriber).Set(v)
}

// failures returns how many failures the subscriber has had since it last
// followed the log, and whether it has had any.
func (l *Log) failures() (int, bool) {
	l.subs.mu.Lock()
	defer l.subs.mu.Unlock()
	f := l.subs.failing[l.subscriber]
	if f == nil {
		return 0, false
	}
	return f.count, true
}

// resumed marks the subscriber as following the log again, unless it has
// failed since the subscription that calls it began (after failures
// failures): a late timer must not hide a newer failure.
func (l *Log) resumed(failures int) {
	l.subs.mu.Lock()
	f := l.subs.failing[l.subscriber]
	was := f != nil && f.count == failures
	if was {
		delete(l.subs.failing, l.subscriber)
	}
	l.subs.mu.Unlock()
	if was {
		l.setUp(true)
	}
}

func (l *Log) failed(err error) {
	l.subs.mu.Lock()
	f := l.subs.failing[l.subscriber]
	if f == nil {
		f = &subFailure{since: l.now()}
		l.subs.failing[l.subscriber] = f
	}
	f.err, f.count = err, f.count+1
	l.subs.mu.Unlock()
	l.setUp(false)
	if l.metrics != nil {
		l.metrics.failures.WithLabelValues(l.subscriber).Inc()
	}
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

// Subscribe implements eventlog.Store. A subscription that ends in an
// error while ctx lives counts as a failure of its subscriber (Following,
// pickup_subscription_failures_total) until the next one settles: it
// delivers a batch, or runs for SubscriptionSettle without failing.
func (l *Log) Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error {
	before, failing := l.failures()
	if !failing {
		l.setUp(true)
	}
	settled := time.AfterFunc(SubscriptionSettle, func() { l.resumed(before) })
	defer settled.Stop()
	var lag prometheus.Gauge
	var count prometheus.Counter
	if l.metrics != nil {
		lag = l.metrics.lag.WithLabelValues(l.subscriber)
		count = l.metrics.events.WithLabelValues(l.subscriber)
	}
	err := l.Store.Subscribe(ctx, after, filter, func(batch []eventlog.Event) error {
		l.resumed(before)
		if l.metrics != nil {
			count.Add(float64(len(batch)))
			if t := batch[len(batch)-1].Meta.Time; !t.IsZero() {
				// Clocks of other machines may run ahead: never below zero.
				lag.Set(max(0, l.now().Sub(t).Seconds()))
			}
		}
		return handle(batch)
	})
	settled.Stop()
	if err != nil && ctx.Err() == nil {
		l.failed(err)
	}
	return err
}
