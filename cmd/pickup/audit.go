package main

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/audit"
)

// runAudit prints a pin's timeline from the log: each event with its time,
// actor and attempt, what it did, and why for each decision.
func runAudit(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "audit")
	stores := addLogFlags(f)
	asJSON := f.Bool("json", false, "print JSON lines, one event a line, for machines")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup audit [flags] REQUEST_ID: print a pin's timeline, with the reason for each decision")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 1 {
		return fmt.Errorf("%w: audit takes one request id", errUsage)
	}
	id, err := uuid.Parse(f.Arg(0))
	if err != nil {
		return fmt.Errorf("%w: request id %q: %v", errUsage, f.Arg(0), err)
	}
	log, err := stores.openLog(ctx)
	if err != nil {
		return err
	}
	defer log.Close()
	// The fold may fail on an event it cannot read; the timeline still
	// shows every event.
	events, err := audit.Read(ctx, log, id)
	if len(events) == 0 {
		if err != nil {
			return err
		}
		return fmt.Errorf("no pin request %s in the log (stream %s is empty)", id, pin.Stream(id))
	}
	timeline := audit.Timeline(events)
	if *asJSON {
		return audit.WriteJSON(e.stdout, timeline)
	}
	return audit.WriteText(e.stdout, id, timeline)
}
