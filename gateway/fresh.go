package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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

// await returns once the views reflect every write a read by tenant must
// see, or once the wait runs out (the read then answers with what the
// views have, and the lag is logged).
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
		if cp >= target {
			return nil
		}
		if !time.Now().Add(pause).Before(deadline) {
			f.logger.LogAttrs(ctx, slog.LevelWarn, "views lag: answering with what they have",
				slog.Uint64("checkpoint", uint64(cp)), slog.Uint64("target", uint64(target)), slog.Duration("waited", f.wait))
			return nil
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

// observe records a checkpoint and forgets the appends it covers.
func (f *freshness) observe(cp eventlog.Position) {
	for {
		old := f.seen.Load()
		if uint64(cp) <= old {
			return
		}
		if f.seen.CompareAndSwap(old, uint64(cp)) {
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
