package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/internal/telemetry"
)

// Every line logged with a context names the ids the context carries,
// exactly once, whatever else the logger or the call adds.
func TestHandlerAddsTheContextsIDs(t *testing.T) {
	base := context.Background()
	both := telemetry.WithPinRequestID(telemetry.WithRequestID(base, "req-1"), "pin-1")
	for _, c := range []struct {
		name string
		ctx  context.Context
		log  func(l *slog.Logger, ctx context.Context)
		// want is the line's attributes that matter; "" means absent.
		want map[string]string
	}{
		{"no ids", base, func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m") },
			map[string]string{"request_id": "", "pin_request_id": ""}},
		{"both ids", both, func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m", "k", "v") },
			map[string]string{"request_id": "req-1", "pin_request_id": "pin-1", "k": "v"}},
		{"a logger without context", both, func(l *slog.Logger, ctx context.Context) { l.Info("m") },
			map[string]string{"request_id": "", "pin_request_id": ""}},
		{"the logger binds the key", both, func(l *slog.Logger, ctx context.Context) {
			l.With("pin_request_id", "bound").InfoContext(ctx, "m")
		}, map[string]string{"request_id": "req-1", "pin_request_id": "bound"}},
		{"the call names the key", both, func(l *slog.Logger, ctx context.Context) {
			l.InfoContext(ctx, "m", "request_id", "own")
		}, map[string]string{"request_id": "own", "pin_request_id": "pin-1"}},
		{"a later id replaces an earlier", telemetry.WithRequestID(both, "req-2"), func(l *slog.Logger, ctx context.Context) {
			l.InfoContext(ctx, "m")
		}, map[string]string{"request_id": "req-2", "pin_request_id": "pin-1"}},
		{"below the level", both, func(l *slog.Logger, ctx context.Context) { l.DebugContext(ctx, "m") }, nil},
		{"in a group, the ids go where the record's attributes go, once", both, func(l *slog.Logger, ctx context.Context) {
			l.WithGroup("g").With("request_id", "inner").InfoContext(ctx, "m")
		}, map[string]string{"request_id": "", "pin_request_id": "", "g.request_id": "inner", "g.pin_request_id": "pin-1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			l := slog.New(telemetry.NewHandler(slog.NewJSONHandler(&out, nil)))
			c.log(l, c.ctx)
			if c.want == nil {
				if out.Len() != 0 {
					t.Fatalf("logged %q below the level", out.String())
				}
				return
			}
			line := out.String()
			var got map[string]any
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			for k, want := range c.want {
				v, present := lookup(got, k)
				if want == "" && present {
					t.Errorf("%s = %v, want it absent; line %s", k, v, line)
				}
				if want != "" && v != want {
					t.Errorf("%s = %v, want %q; line %s", k, v, want, line)
				}
				// A key twice on a line is ambiguous to every log tool.
				if n := strings.Count(line, `"`+k+`":`); n > 1 {
					t.Errorf("%s appears %d times in %s", k, n, line)
				}
			}
		})
	}
}

func lookup(m map[string]any, key string) (any, bool) {
	if group, rest, ok := strings.Cut(key, "."); ok {
		sub, _ := m[group].(map[string]any)
		return lookup(sub, rest)
	}
	v, ok := m[key]
	return v, ok
}

// The handler leaves the record it was given alone: another handler of the
// same record sees it as logged.
func TestHandlerDoesNotChangeTheCallersRecord(t *testing.T) {
	var out bytes.Buffer
	h := telemetry.NewHandler(slog.NewJSONHandler(&out, nil))
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0)
	r.AddAttrs(slog.String("k", "v"))
	if err := h.Handle(telemetry.WithRequestID(context.Background(), "r"), r); err != nil {
		t.Fatal(err)
	}
	if r.NumAttrs() != 1 || !strings.Contains(out.String(), `"request_id":"r"`) {
		t.Errorf("record has %d attributes after Handle (want 1); line %s", r.NumAttrs(), out.String())
	}
	if got := telemetry.RequestID(telemetry.WithRequestID(context.Background(), "abc")); got != "abc" {
		t.Errorf("RequestID = %q, want abc", got)
	}
}
