package telemetry

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FetchMetrics are a fetcher pool's figures. It implements
// fetcher.Metrics.
type FetchMetrics struct {
	bytes    *prometheus.CounterVec
	blocks   *prometheus.CounterVec
	attempts *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// NewFetchMetrics makes the fetch figures and registers them on reg.
func NewFetchMetrics(reg prometheus.Registerer) (*FetchMetrics, error) {
	m := &FetchMetrics{
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pickup_fetch_bytes_total",
			Help: "Bytes of verified CAR written from IPFS, by source kind (gateway, bitswap, kubo); its rate is the fetch throughput.",
		}, []string{"source"}),
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pickup_fetch_blocks_total",
			Help: "Verified blocks written from IPFS, by source kind.",
		}, []string{"source"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pickup_fetch_attempts_total",
			Help: "Attempts this process claimed and ended, by outcome (pinned, failed, claim_lost, error) and reason (the failure reason; fetched or carpark for pinned).",
		}, []string{"outcome", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pickup_fetch_duration_seconds",
			Help: "Time from an attempt's claim to its end, by outcome.",
			// 0.1 s to about 7 h.
			Buckets: prometheus.ExponentialBuckets(0.1, 4, 10),
		}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pickup_fetches_in_flight",
			Help: "Attempts this process holds a claim on now.",
		}),
	}
	if err := register(reg, m.bytes, m.blocks, m.attempts, m.duration, m.inFlight); err != nil {
		return nil, err
	}
	return m, nil
}

// sourceKind is the source label of a DAG source's name: its kind, the
// first word ("gateway https://…" is gateway), so that a label never holds
// a URL.
func sourceKind(name string) string {
	kind, _, _ := strings.Cut(name, " ")
	switch kind {
	case "gateway", "bitswap", "kubo":
		return kind
	case "":
		return "unknown"
	}
	return "other"
}

// Received counts bytes and blocks newly written from a source.
func (m *FetchMetrics) Received(source string, bytes, blocks int64) {
	kind := sourceKind(source)
	if bytes > 0 {
		m.bytes.WithLabelValues(kind).Add(float64(bytes))
	}
	if blocks > 0 {
		m.blocks.WithLabelValues(kind).Add(float64(blocks))
	}
}

// Started counts an attempt claimed.
func (m *FetchMetrics) Started() { m.inFlight.Inc() }

// Ended counts an attempt's end, and how long it held its claim.
func (m *FetchMetrics) Ended(outcome, reason string, took time.Duration) {
	m.inFlight.Dec()
	m.attempts.WithLabelValues(outcome, reason).Inc()
	m.duration.WithLabelValues(outcome).Observe(took.Seconds())
}

// OpenUploads is a collector of pickup_multipart_uploads_open: it asks the
// CAR store, at each scrape, how many uploads are begun and neither
// completed nor aborted. The store answers for the whole bucket, crashed
// processes' leftovers included, so every fetcher sharing it reports the
// same figure: aggregate with max, not sum.
type OpenUploads struct {
	ctx     context.Context
	count   func(context.Context) (int, error)
	timeout time.Duration
	logger  *slog.Logger
	desc    *prometheus.Desc
}

// NewOpenUploads returns the collector. ctx bounds every count (the
// process's context: a stopping process stops asking); count is the
// store's (len of carstore's OpenUploads).
func NewOpenUploads(ctx context.Context, count func(context.Context) (int, error), logger *slog.Logger) *OpenUploads {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &OpenUploads{
		ctx: ctx, count: count, timeout: 10 * time.Second, logger: logger.With(slog.String("component", "metrics")),
		desc: prometheus.NewDesc("pickup_multipart_uploads_open",
			"Multipart uploads begun in the CAR store's buckets and neither completed nor aborted (the whole bucket: aggregate with max).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (o *OpenUploads) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }

// Collect implements prometheus.Collector. A count that fails leaves the
// figure out of this scrape, and says why in the log, rather than failing
// the whole scrape.
func (o *OpenUploads) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(o.ctx, o.timeout)
	defer cancel()
	n, err := o.count(ctx)
	if err != nil {
		if o.ctx.Err() == nil {
			o.logger.WarnContext(ctx, "counting open uploads", "err", err)
		}
		return
	}
	ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, float64(n))
}
