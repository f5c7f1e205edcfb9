package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/eventlog"
)

// Checkpoints tells how far the views have read the log. Implementations are
// safe for concurrent use; views.Reader is one.
type Checkpoints interface {
	// Checkpoint returns the log position of the last event the views
	// reflect. It never goes backwards.
	Checkpoint(ctx context.Context) (eventlog.Position, error)
}

// heads tells where the log ends.
type heads interface {
	Head(ctx context.Context) (eventlog.Position, error)
}

// freshness makes reads see the writes before them although views are built
// asynchronously: a read first waits, briefly and boundedly, until the views
// reach a position that covers those writes (see Consistency).
type freshness struct {
	mode   Consistency
	log    heads
	views  Checkpoints
	wait   time.Duration
	logger *slog.Logger

	// seen is the highest checkpoint observed, so that reads whose target
	// the views passed long ago ask nothing.
	seen atomic.Uint64
	// lagSince is when the views were first seen behind a position they
	// had to reach, at the checkpoint they still hold (Unix nanoseconds; 0:
	// not behind, or moved since). Views behind for a whole wait without
	// moving are stalled (the projector is down, or its store): reads stop
	// waiting for them.
	lagSince atomic.Int64

	mu sync.Mutex
	// latest holds, per tenant, the position of its latest append through
	// this process that the views were not yet seen to reach.
	latest map[string]eventlog.Position
}

// wrote records a tenant's append.
func (f *freshness) wrote(tenant string, p eventlog.Position) {
	if uint64(p) <= f.seen.Load() {
		return
	}
	f.mu.Lock()
	if p > f.latest[tenant] {
		f.latest[tenant] = p
	}
	f.mu.Unlock()
}

// target is the position a read by tenant must wait for, 0 for none.
func (f *freshness) target(ctx context.Context, tenant string) (eventlog.Position, error) {
	f.mu.Lock()
	p := f.latest[tenant]
	f.mu.Unlock()
	if f.mode == ConsistencyLog {
		head, err := f.log.Head(ctx)
		if err != nil {
			return 0, fmt.Errorf("read the log's head: %w", err)
		}
		p = max(p, head)
	}
	return p, nil
}

// errViewsBehind answers a read that the views cannot answer truly: they
// have not taken in writes the read must see, within the wait (at once
// when they are stalled). Reads of one pin answer from its stream instead.
var errViewsBehind = &apiError{status: http.StatusServiceUnavailable, reason: api.ReasonUnavailable, retryAfter: 1,
	details: "The pin views are behind the log; try again shortly"}

// await returns once the views reflect every write a read by tenant must
// see, or errViewsBehind once the wait runs out, at once when the views
// are stalled: the read must then not trust the views to hold those
// writes.
func (f *freshness) await(ctx context.Context, tenant string) error {
	target, err := f.target(ctx, tenant)
	if err != nil || uint64(target) <= f.seen.Load() {
		return err
	}
	deadline := time.Now().Add(f.wait)
	pause := 100 * time.Microsecond
	for {
		cp, err := f.views.Checkpoint(ctx)
		if err != nil {
			return fmt.Errorf("read the views' checkpoint: %w", err)
		}
		f.observe(cp)
		switch {
		case cp >= target:
			return nil
		case f.behindAt(cp):
			return errViewsBehind
		case !time.Now().Add(pause).Before(deadline):
			f.logger.LogAttrs(ctx, slog.LevelWarn, "views lag behind a read's writes",
				slog.Uint64("checkpoint", uint64(cp)), slog.Uint64("target", uint64(target)), slog.Duration("waited", f.wait))
			return errViewsBehind
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// behindAt notes that the views, at checkpoint cp, are behind where they
// must be, and reports whether they have been behind at cp, not moving,
// for a whole wait.
func (f *freshness) behindAt(cp eventlog.Position) bool {
	now := time.Now().UnixNano()
	f.lagSince.CompareAndSwap(0, now)
	since := f.lagSince.Load()
	return uint64(cp) == f.seen.Load() && since != 0 && time.Duration(now-since) > f.wait
}

// behind reports views that are behind the log's head and stalled: what
// /readyz says of the gateway.
func (f *freshness) behind(ctx context.Context) error {
	head, err := f.log.Head(ctx)
	if err != nil {
		return fmt.Errorf("read the log's head: %w", err)
	}
	cp, err := f.views.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("read the views' checkpoint: %w", err)
	}
	f.observe(cp)
	if cp < head && f.behindAt(cp) {
		return fmt.Errorf("views at position %d, the log at %d: they have not moved for %s", cp, head, time.Since(time.Unix(0, f.lagSince.Load())).Round(time.Millisecond))
	}
	return nil
}

// observe records a checkpoint and forgets the appends it covers.
func (f *freshness) observe(cp eventlog.Position) {
	for {
		old := f.seen.Load()
		if uint64(cp) <= old {
			return
		}
		if f.seen.CompareAndSwap(old, uint64(cp)) {
			f.lagSince.Store(0) // the views moved
			break
		}
	}
	f.mu.Lock()
	for tenant, p := range f.latest {
		if p <= cp {
			delete(f.latest, tenant)
		}
	}
	f.mu.Unlock()
}

// Ready reports whether the gateway can answer reads truly: an error when
// the views are behind the log and have not moved for a whole ReadWait (the
// projector, or its store, is down). /readyz shows it.
func (h *Handler) Ready(ctx context.Context) error { return h.fresh.behind(ctx) }
