package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
)

// Applier is a view store as the runner drives it.
type Applier interface {
	// Checkpoint returns the position of the last event applied.
	Checkpoint(ctx context.Context) (eventlog.Position, error)
	// Apply applies a batch (viewrow.Prepare), the log's events that follow
	// position after, in one transaction with the new checkpoint. Events at
	// or before the checkpoint are left out (another runner applied them).
	// If the checkpoint is behind after, the views were reset since the
	// caller read it: Apply changes nothing and fails with
	// ErrCheckpointMoved.
	Apply(ctx context.Context, after eventlog.Position, b *viewrow.Batch) (Applied, error)
}

// ErrCheckpointMoved is Apply's refusal of events that do not follow the
// views' checkpoint: the views were reset (or restored) meanwhile. The
// runner starts again from the new checkpoint.
var ErrCheckpointMoved = errors.New("views checkpoint moved back")

// Applied says what an Apply did.
type Applied struct {
	// Events counts the events after the old checkpoint.
	Events int
	// Checkpoint is the checkpoint after the apply.
	Checkpoint eventlog.Position
	// Skipped are the events the views left out.
	Skipped []viewrow.Skip
}

// logReader is the event log as the runner reads it.
type logReader interface {
	ReadAll(ctx context.Context, after eventlog.Position, limit int) ([]eventlog.Event, error)
	Head(ctx context.Context) (eventlog.Position, error)
	Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error
}

// DefaultBatch is the runner's batch by default. Bigger batches rebuild
// faster: a pin's events in one batch are written once, and so is each
// index page they touch. On the 1M-event rebuild benchmark 65536 makes
// 208,000–220,000 events/s with a heap of 300 MiB at its peak, 16384
// makes 182,000–191,000 with 76 MiB (two batches are in memory at once:
// one is read ahead while the other is applied).
const DefaultBatch = 65536

// RunnerConfig tunes a Runner.
type RunnerConfig struct {
	// Batch is the most events applied in one transaction while catching
	// up. Default DefaultBatch.
	Batch int
	// RetryDelay is the wait before resuming after a failure. Default 1s.
	RetryDelay time.Duration
}

// RunnerDeps are what a Runner works with.
type RunnerDeps struct {
	// Log is the event log it follows.
	Log logReader
	// Views is the view store it keeps.
	Views Applier
	// Logger receives the runner's logs; nil discards them.
	Logger *slog.Logger
}

// Validate reports a configuration that cannot work.
func (c RunnerConfig) Validate() error {
	switch {
	case c.Batch < 0:
		return fmt.Errorf("runner: negative batch %d", c.Batch)
	case c.RetryDelay < 0:
		return fmt.Errorf("runner: negative retry delay %v", c.RetryDelay)
	}
	return nil
}

func (c *RunnerConfig) setDefaults() {
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
}

// Runner keeps a view store up to date with the log: it reads from the
// store's checkpoint and applies each batch of events in one transaction
// with the new checkpoint, so that a crash at any point neither applies an
// event twice nor skips one; a restart resumes from the checkpoint. Two
// runners on one store are safe: each batch is applied once.
type Runner struct {
	log    logReader
	views  Applier
	cfg    RunnerConfig
	logger *slog.Logger
}

// NewRunner returns a runner applying d.Log to d.Views.
func NewRunner(cfg RunnerConfig, d RunnerDeps) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if d.Log == nil || d.Views == nil {
		return nil, errors.New("runner: a runner needs a log and views")
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{log: d.Log, views: d.Views, cfg: cfg, logger: logger.With("component", "projections")}, nil
}

// Run applies the log to the views until ctx ends, resuming after failures.
// It returns ctx's error.
func (r *Runner) Run(ctx context.Context) error {
	for {
		err := r.follow(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrCheckpointMoved) {
			r.logger.Warn("views were reset; following the log again from their checkpoint")
			continue
		}
		r.logger.Error("views stopped following the log; resuming", "err", err, "after", r.cfg.RetryDelay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.cfg.RetryDelay):
		}
	}
}

// follow catches up in big batches, then applies events as they come.
func (r *Runner) follow(ctx context.Context) error {
	head, err := r.log.Head(ctx)
	if err != nil {
		return fmt.Errorf("read log head: %w", err)
	}
	cp, err := r.CatchUp(ctx, head, nil)
	if err != nil {
		return err
	}
	return r.log.Subscribe(ctx, cp, eventlog.Filter{}, func(evs []eventlog.Event) error {
		_, err := r.apply(ctx, cp, viewrow.Prepare(evs))
		cp = evs[len(evs)-1].Position
		return err
	})
}

// CatchUp applies the events up to position until (or the log's end,
// whichever comes first) and returns the checkpoint reached. progress, if
// not nil, is called after each batch. While one batch is applied, the
// next is read and decoded: on two cores a rebuild runs both at once.
func (r *Runner) CatchUp(ctx context.Context, until eventlog.Position, progress func(eventlog.Position)) (eventlog.Position, error) {
	cp, err := r.views.Checkpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("read views checkpoint: %w", err)
	}
	if cp >= until {
		return cp, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type prepared struct {
		after eventlog.Position
		batch *viewrow.Batch
		err   error
	}
	ahead := make(chan prepared, 1)
	go func() {
		defer close(ahead)
		for after := cp; after < until; {
			evs, err := r.log.ReadAll(ctx, after, r.cfg.Batch)
			if err != nil {
				ahead <- prepared{err: fmt.Errorf("read log after %d: %w", after, err)}
				return
			}
			n := 0
			for n < len(evs) && evs[n].Position <= until {
				n++
			}
			if n == 0 {
				return
			}
			select {
			case ahead <- prepared{after: after, batch: viewrow.Prepare(evs[:n])}:
			case <-ctx.Done():
				return
			}
			after = evs[n-1].Position
		}
	}()
	for p := range ahead {
		if p.err != nil {
			return cp, p.err
		}
		next, err := r.apply(ctx, p.after, p.batch)
		if err != nil {
			return cp, err
		}
		cp = next
		if progress != nil {
			progress(cp)
		}
	}
	return cp, nil
}

func (r *Runner) apply(ctx context.Context, after eventlog.Position, b *viewrow.Batch) (eventlog.Position, error) {
	res, err := r.views.Apply(ctx, after, b)
	if err != nil {
		return 0, err
	}
	for _, s := range res.Skipped {
		r.logger.Warn("event left out of the views", "position", s.Event.Position, "stream", s.Event.Stream, "type", s.Event.Type, "err", s.Err)
	}
	return res.Checkpoint, nil
}

// Rows is a dump of the views, row by row in a fixed order: what
// `pickup replay --verify` compares between the live views and a rebuild.
type Rows = viewrow.Rows

// Diff compares two dumps and returns up to limit of the rows that differ,
// described, and how many differ in all.
func Diff(a, b Rows, limit int) (shown []string, total int, err error) {
	return viewrow.Diff(a, b, limit)
}
