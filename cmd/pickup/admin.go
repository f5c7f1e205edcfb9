package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pickup-ipfs/pickup/internal/telemetry"
)

// health collects the readiness checks of a process's parts: /readyz is
// ready when every check passes; /healthz only says the process serves.
type health struct {
	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

func newHealth() *health { return &health{checks: map[string]func(context.Context) error{}} }

// add registers a readiness check under a name shown in /readyz.
func (h *health) add(name string, check func(context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = check
}

// ready runs every check, all at once (so that /readyz takes as long as
// the slowest, not their sum, when the process is busy), and returns the
// failures by name.
func (h *health) ready(ctx context.Context) map[string]string {
	h.mu.Lock()
	checks := make(map[string]func(context.Context) error, len(h.checks))
	for k, v := range h.checks {
		checks[k] = v
	}
	h.mu.Unlock()
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := map[string]string{}
	for name, check := range checks {
		wg.Go(func() {
			if err := check(ctx); err != nil {
				mu.Lock()
				failed[name] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

// adminHandler serves /metrics, /healthz and /readyz.
func adminHandler(reg *prometheus.Registry, h *health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		failed := h.ready(ctx)
		w.Header().Set("Content-Type", "application/json")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]any{"status": "not ready", "failed": failed})
			return
		}
		w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	return mux
}

// newRegistry returns a metrics registry with the Go runtime's and the
// process's own collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// httpServer is an HTTP server as an actor: execute serves until interrupt
// shuts it down gracefully.
type httpServer struct {
	name   string
	srv    *http.Server
	ln     net.Listener
	logger *slog.Logger
}

// serverConfig is what every HTTP server of pickup is given: timeouts that
// free the connections of idle and slow clients, and caps on the
// connections it holds (conns.go).
type serverConfig struct {
	// readHeader bounds the wait for a request's headers; read, for the
	// whole request with its body (a slow body holds a connection no
	// longer); write, from the end of the headers to the end of the answer;
	// idle, the wait for a keep-alive connection's next request.
	readHeader, read, write, idle time.Duration
	limits                        connLimits
}

func listen(name, addr string, cfg serverConfig, h http.Handler, metrics *telemetry.ConnMetrics, logger *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	limited := newLimitListener(ln, name, cfg.limits, metrics)
	return &httpServer{
		name: name, ln: limited, logger: logger,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: cfg.readHeader,
			ReadTimeout:       cfg.read,
			WriteTimeout:      cfg.write,
			IdleTimeout:       cfg.idle,
			ConnState:         limited.connState,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}, nil
}

// Addr is where the server listens.
func (s *httpServer) Addr() string { return s.ln.Addr().String() }

func (s *httpServer) execute() error {
	s.logger.Info("listening", "server", s.name, "addr", s.Addr(),
		"max_conns", s.ln.(*limitListener).limits.max, "max_conns_per_client", s.ln.(*limitListener).limits.perClient,
		"read_timeout", s.srv.ReadTimeout.String(), "write_timeout", s.srv.WriteTimeout.String(), "idle_timeout", s.srv.IdleTimeout.String())
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return nil
}

func (s *httpServer) interrupt(error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
}
