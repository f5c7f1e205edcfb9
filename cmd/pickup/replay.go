package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/projections"
	viewembedded "github.com/pickup-ipfs/pickup/projections/embedded"
)

// runReplay rebuilds the views from position zero. With --verify it
// rebuilds them into a scratch store instead, compares that with the live
// views row by row, prints the differences, and fails if there are any.
func runReplay(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "replay")
	stores := addStoreFlags(f)
	verify := f.Bool("verify", false, "rebuild into a scratch store and compare with the live views, changing nothing")
	maxDiffs := f.Int("max-diffs", 100, "with --verify, the most differences printed")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup replay [--verify] [flags]: rebuild every view from the log's first event (drop and replay), or verify the live views against a rebuild")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return fmt.Errorf("%w: replay takes no arguments", errUsage)
	}
	log, err := stores.openLog(ctx)
	if err != nil {
		return err
	}
	defer log.Close()
	live, err := stores.openViews(ctx)
	if err != nil {
		return err
	}
	defer live.Close()
	if *verify {
		return verifyViews(ctx, e, log, live, *maxDiffs)
	}
	head, err := log.Head(ctx)
	if err != nil {
		return fmt.Errorf("read log head: %w", err)
	}
	start := time.Now()
	if err := live.Reset(ctx); err != nil {
		return err
	}
	bar := progress(e.stderr, head, "rebuilding views")
	if err := catchUp(ctx, log, live, e, bar); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "rebuilt the views from the log up to position %d in %v\n", head, time.Since(start).Round(time.Millisecond))
	return nil
}

// verifyViews rebuilds the views into a scratch embedded store up to the
// live views' checkpoint, from one snapshot of the live views, and
// compares the two row by row.
func verifyViews(ctx context.Context, e *env, log eventlog.Store, live viewStore, maxDiffs int) error {
	dir, err := os.MkdirTemp("", "pickup-replay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	scratch, err := viewembedded.Open(ctx, filepath.Join(dir, "views.db"), viewembedded.Options{})
	if err != nil {
		return err
	}
	defer scratch.Close()
	var checkpoint eventlog.Position
	var shown []string
	var total int
	err = live.Dump(ctx, func(cp eventlog.Position, liveRows projections.Rows) error {
		checkpoint = cp
		r, err := projections.NewRunner(projections.RunnerConfig{}, projections.RunnerDeps{Log: log, Views: scratch, Logger: toolLogger(e)})
		if err != nil {
			return err
		}
		reached, err := r.CatchUp(ctx, cp, progress(e.stderr, cp, "replaying"))
		if err != nil {
			return err
		}
		if reached != cp {
			return fmt.Errorf("the log ends at %d, before the live views' checkpoint %d: the views are of another log", reached, cp)
		}
		return scratch.Dump(ctx, func(_ eventlog.Position, rebuilt projections.Rows) (err error) {
			shown, total, err = projections.Diff(liveRows, rebuilt, maxDiffs)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("verify views: %w", err)
	}
	for _, d := range shown {
		fmt.Fprintln(e.stdout, d)
	}
	if total > 0 {
		if total > len(shown) {
			fmt.Fprintf(e.stdout, "... and %d more\n", total-len(shown))
		}
		return fmt.Errorf("the live views differ from a rebuild up to position %d in %d rows (first: live, second: rebuilt)", checkpoint, total)
	}
	fmt.Fprintf(e.stdout, "the live views equal a rebuild from the log up to position %d\n", checkpoint)
	return nil
}

// progress returns a progress callback that draws a bar on w when w is a
// terminal, and nil otherwise: logs and pipes get no bar.
func progress(w io.Writer, until eventlog.Position, what string) func(eventlog.Position) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || until == 0 {
		return nil
	}
	bar := progressbar.NewOptions64(int64(until),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	return func(p eventlog.Position) { bar.Set64(int64(p)) }
}
