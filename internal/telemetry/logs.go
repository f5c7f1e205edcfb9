// Package telemetry is what operators see of a running pickup: the
// Prometheus metrics every role exposes (HTTP requests, event log appends
// and subscriptions, fetches, open multipart uploads), the HTTP middleware
// that gives each request an id, counts it and logs it, and the slog handler
// that puts the ids a context carries (request_id, pin_request_id) on every
// line logged with that context.
//
// Metrics are created by cmd/pickup, registered on the process's registry,
// and handed to the parts that move them; nothing here is global. Label
// values come from small fixed sets (routes, outcomes, reasons, source
// kinds), never from ids or CIDs, so that no series is made per request.
package telemetry

import (
	"context"
	"log/slog"
	"slices"
)

// The attribute keys that tie log lines together across packages and
// processes.
const (
	// RequestIDKey names an HTTP request's id: the client's X-Request-Id when
	// it sent a sane one, otherwise one made up; echoed in the response.
	RequestIDKey = "request_id"
	// PinRequestIDKey names a pin request's id (its stream is pin-<id>):
	// every line about a pin carries it, in the gateway and in the fetchers.
	PinRequestIDKey = "pin_request_id"
)

type attrsKey struct{}

// WithAttrs returns a context carrying attrs on top of those ctx carries;
// an attribute replaces one of the same key. A Handler adds them to every
// record logged with the context (logger.InfoContext(ctx, ...)).
func WithAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	old := Attrs(ctx)
	merged := make([]slog.Attr, 0, len(old)+len(attrs))
	for _, a := range old {
		if !slices.ContainsFunc(attrs, func(b slog.Attr) bool { return b.Key == a.Key }) {
			merged = append(merged, a)
		}
	}
	merged = append(merged, attrs...)
	return context.WithValue(ctx, attrsKey{}, merged)
}

// Attrs returns the attributes ctx carries for logging. The slice is
// shared: do not modify it.
func Attrs(ctx context.Context) []slog.Attr {
	if ctx == nil {
		return nil
	}
	a, _ := ctx.Value(attrsKey{}).([]slog.Attr)
	return a
}

// WithRequestID returns a context whose log lines carry the HTTP request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return WithAttrs(ctx, slog.String(RequestIDKey, id))
}

// WithPinRequestID returns a context whose log lines carry the pin request
// id.
func WithPinRequestID(ctx context.Context, id string) context.Context {
	return WithAttrs(ctx, slog.String(PinRequestIDKey, id))
}

// RequestID returns the HTTP request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	for _, a := range Attrs(ctx) {
		if a.Key == RequestIDKey {
			return a.Value.String()
		}
	}
	return ""
}

// Handler is a slog.Handler that adds the attributes a record's context
// carries (see WithAttrs) before passing the record on. A key already on
// the record, or bound to the logger with With, is not added again, so a
// line never names the same id twice. The attributes go where the record's
// own go: inside the logger's open group, if it has one (pickup's loggers
// open none).
type Handler struct {
	inner slog.Handler
	// bound are the keys bound with WithAttrs in the innermost open group
	// (or at the top level): where the context's attributes would land.
	bound []string
}

// NewHandler returns a Handler that writes through inner.
func NewHandler(inner slog.Handler) *Handler { return &Handler{inner: inner} }

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	carried := Attrs(ctx)
	if len(carried) == 0 {
		return h.inner.Handle(ctx, r)
	}
	var add []slog.Attr
	for _, a := range carried {
		if slices.Contains(h.bound, a.Key) || onRecord(r, a.Key) {
			continue
		}
		add = append(add, a)
	}
	if len(add) > 0 {
		// Copies of a Record share state: another handler may hold this one.
		r = r.Clone()
		r.AddAttrs(add...)
	}
	return h.inner.Handle(ctx, r)
}

func onRecord(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	bound := slices.Clip(h.bound)
	for _, a := range attrs {
		bound = append(bound, a.Key)
	}
	return &Handler{inner: h.inner.WithAttrs(attrs), bound: bound}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{inner: h.inner.WithGroup(name)}
}
