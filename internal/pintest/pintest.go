// Package pintest drives pins through their life in tests, on real parts:
// an embedded event log, embedded views and a runner, in a temporary
// directory, with every event stamped by a clock the test holds. Writes go
// through pin/pinlog, the write path every writer of a pin stream uses.
package pintest

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	logstore "github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/embedded"
)

// World is a log, its views and a runner that brings the views up to the
// log when asked (Sync).
type World struct {
	t      testing.TB
	Log    *logstore.Store
	Views  *embedded.Store
	Runner *projections.Runner
}

// New returns a world in a temporary directory, closed with the test.
func New(t testing.TB) *World {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log, err := logstore.Open(ctx, filepath.Join(dir, "events.db"), logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	views, err := embedded.Open(ctx, filepath.Join(dir, "views.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { views.Close() })
	r, err := projections.NewRunner(projections.RunnerConfig{}, projections.RunnerDeps{Log: log, Views: views, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return &World{t: t, Log: log, Views: views, Runner: r}
}

// Sync brings the views up to the log.
func (w *World) Sync() {
	w.t.Helper()
	ctx := context.Background()
	head, err := w.Log.Head(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.Runner.CatchUp(ctx, head, nil); err != nil {
		w.t.Fatal(err)
	}
}

// State reads the pin's stream and folds it.
func (w *World) State(id uuid.UUID) pin.State {
	w.t.Helper()
	s, _, err := pinlog.Read(context.Background(), w.Log, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// Do commits what decide returns on the pin's current state, as actor, at
// time at; a refusal fails the test.
func (w *World) Do(id uuid.UUID, at time.Time, actor string, decide func(pin.State) (pin.Payload, error)) {
	w.t.Helper()
	_, err := pinlog.New(w.Log, nil).Commit(context.Background(), pinlog.Commit{RequestID: id, Actor: actor,
		Decide: func(s pin.State) (pinlog.Decision, error) {
			p, err := decide(s)
			return pinlog.Decision{Payload: p, At: at}, err
		}})
	if err != nil {
		w.t.Fatalf("%s at %s: %v", actor, at, err)
	}
}

// Request requests a pin of tenant alice at time at.
func (w *World) Request(at time.Time) uuid.UUID {
	w.t.Helper()
	id := uuid.New()
	w.Do(id, at, "gateway", func(s pin.State) (pin.Payload, error) {
		return pin.Request(s, pin.Requested{RequestID: id, Tenant: "alice", CID: "bafkqaaa", Created: at})
	})
	return id
}
