// Package pintest drives pins through their life in tests, on real parts:
// an embedded event log, embedded views and a runner, in a temporary
// directory, with every event stamped by a clock the test holds. Writes go
// through pin/pinlog, the write path every writer of a pin stream uses.
package pintest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
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
// log when asked (Sync), or follows it (Follow).
type World struct {
	t      testing.TB
	Log    *logstore.Store
	Views  *embedded.Store
	Runner *projections.Runner

	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

// New returns a world in a temporary directory, closed with the test.
func New(t testing.TB) *World {
	t.Helper()
	return Open(t, t.TempDir())
}

// Open returns a world on the files in dir (a log and views left by another
// world are taken up where they were), closed with the test.
func Open(t testing.TB, dir string) *World {
	t.Helper()
	ctx := context.Background()
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
	r, err := projections.NewRunner(projections.RunnerConfig{RetryDelay: 10 * time.Millisecond},
		projections.RunnerDeps{Log: log, Views: views, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w := &World{t: t, Log: log, Views: views, Runner: r}
	t.Cleanup(w.Unfollow)
	return w
}

// Follow starts the runner following the log in the background, if it is
// not already, until Unfollow or the end of the test.
func (w *World) Follow() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stop, w.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		w.Runner.Run(ctx)
	}(w.done)
}

// Unfollow stops the runner, leaving the views where they are (so that
// tests can show what reads do while the views lag).
func (w *World) Unfollow() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop == nil {
		return
	}
	w.stop()
	<-w.done
	w.stop, w.done = nil, nil
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
