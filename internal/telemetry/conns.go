package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a connection is shed, for the reason label of
// pickup_http_connections_shed_total.
const (
	// ShedMaxConns: the server held its cap of connections, none of them
	// idle.
	ShedMaxConns = "max_conns"
	// ShedMaxConnsPerClient: the client's address held its cap.
	ShedMaxConnsPerClient = "max_conns_per_client"
)

// ConnMetrics are the figures of the connections an HTTP server holds, by
// server (api, admin): how many are open, and what was done to stay under
// the caps. Its methods are safe for concurrent use; a nil *ConnMetrics
// counts nothing.
type ConnMetrics struct {
	open    *prometheus.GaugeVec
	shed    *prometheus.CounterVec
	evicted *prometheus.CounterVec
	accept  *prometheus.CounterVec
}

// NewConnMetrics makes the connection figures and registers them on reg.
func NewConnMetrics(reg prometheus.Registerer) (*ConnMetrics, error) {
	m := &ConnMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pickup_http_connections_open",
			Help: "Connections an HTTP server holds open, by server (api, admin).",
		}, []string{"server"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pickup_http_connections_shed_total",
			Help: "Connections answered 503 with Retry-After and closed at once, because the server (max_conns) or the client's address (max_conns_per_client) held its cap.",
		}, []string{"server", "reason"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pickup_http_connections_evicted_total",
			Help: "Idle keep-alive connections closed to make room for a new one, the server being at its cap.",
		}, []string{"server"}),
		accept: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pickup_http_accept_errors_total",
			Help: "Errors accepting a connection (such as too many open files); the server retries with backoff.",
		}, []string{"server"}),
	}
	if err := register(reg, m.open, m.shed, m.evicted, m.accept); err != nil {
		return nil, err
	}
	return m, nil
}

// Open sets how many connections server holds.
func (m *ConnMetrics) Open(server string, n int) {
	if m != nil {
		m.open.WithLabelValues(server).Set(float64(n))
	}
}

// Shed counts a connection refused for reason (Shed*).
func (m *ConnMetrics) Shed(server, reason string) {
	if m != nil {
		m.shed.WithLabelValues(server, reason).Inc()
	}
}

// Evicted counts an idle connection closed to make room.
func (m *ConnMetrics) Evicted(server string) {
	if m != nil {
		m.evicted.WithLabelValues(server).Inc()
	}
}

// AcceptError counts a failed accept.
func (m *ConnMetrics) AcceptError(server string) {
	if m != nil {
		m.accept.WithLabelValues(server).Inc()
	}
}
