package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/internal/sqlite"
	"github.com/pickup-ipfs/pickup/projections/viewtest"
)

// TestReplayRebuildsAndVerifies rebuilds the views of a history, verifies
// them, damages them behind pickup's back, sees --verify find the damage
// and fail, and a replay repair it.
func TestReplayRebuildsAndVerifies(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	vars := map[string]string{"PICKUP_EVENTLOG": filepath.Join(dir, "events.db"), "PICKUP_VIEWS": filepath.Join(dir, "views.db")}
	log, err := embedded.Open(ctx, vars["PICKUP_EVENTLOG"], embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := viewtest.AppendConcurrently(ctx, log, viewtest.History(viewtest.HistoryConfig{Events: 1500, Seed: 5}), 16); err != nil {
		t.Fatal(err)
	}
	log.Close()

	replay := func(args ...string) (int, string) {
		t.Helper()
		e, out, errs := testEnv(vars)
		code := run(ctx, e, append([]string{"replay"}, args...))
		return code, out.String() + errs.String()
	}
	if code, out := replay(); code != 0 || !strings.Contains(out, "rebuilt the views") {
		t.Fatalf("replay: exit %d: %s", code, out)
	}
	if code, out := replay("--verify"); code != 0 || !strings.Contains(out, "equal a rebuild") {
		t.Fatalf("verify after a replay: exit %d: %s", code, out)
	}

	// Damage a counter and a pin's status, as a bug or a hand would.
	c, err := sqlite.Open(ctx, vars["PICKUP_VIEWS"])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(`UPDATE totals SET n = n + 1 WHERE name = 'phase_pinned';
		UPDATE pins SET list_status = 'queued' WHERE rowid = (SELECT min(rowid) FROM pins WHERE list_status = 'pinned')`); err != nil {
		t.Fatal(err)
	}
	c.Close()
	code, out := replay("--verify")
	if code != 1 || !strings.Contains(out, `totals "phase_pinned"`) || !strings.Contains(out, "differ from a rebuild") || !strings.Contains(out, "in 2 rows") {
		t.Errorf("verify of damaged views: exit %d:\n%s", code, out)
	}
	if code, out := replay(); code != 0 {
		t.Fatalf("replay: exit %d: %s", code, out)
	}
	if code, out := replay("--verify"); code != 0 {
		t.Errorf("verify after repairing: exit %d: %s", code, out)
	}
}

// The progress bar is for people at a terminal: pipes and logs get none.
func TestNoProgressBarOffTerminal(t *testing.T) {
	var buf strings.Builder
	if progress(&buf, 100, "replaying") != nil {
		t.Error("a progress bar drawn into a buffer")
	}
}
