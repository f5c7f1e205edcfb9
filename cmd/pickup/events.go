package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// runEvents prints events as JSON lines, one event a line, in the shape of
// eventlog.Event's JSON: the raw material of every audit.
func runEvents(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: events cat STREAM | events tail [--from POSITION] [--follow] | events copy --from LOG --to LOG | events setup", errUsage)
	}
	switch args[0] {
	case "cat":
		return eventsCat(ctx, e, args[1:])
	case "tail":
		return eventsTail(ctx, e, args[1:])
	case "copy":
		return eventsCopy(ctx, e, args[1:])
	case "setup":
		return eventsSetup(ctx, e, args[1:])
	case "-h", "--help", "help":
		eventsCat(ctx, e, []string{"-h"})
		eventsTail(ctx, e, []string{"-h"})
		eventsCopy(ctx, e, []string{"-h"})
		return eventsSetup(ctx, e, []string{"-h"})
	}
	return fmt.Errorf("%w: unknown events command %q (want cat, tail, copy or setup)", errUsage, args[0])
}

func eventsCat(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "events cat")
	stores := addLogFlags(f)
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup events cat [flags] STREAM: print every event of one stream, oldest first")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 1 {
		return fmt.Errorf("%w: events cat takes one stream name", errUsage)
	}
	stream := f.Arg(0)
	if err := eventlog.CheckStream(stream); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log, err := stores.openLog(ctx)
	if err != nil {
		return err
	}
	defer log.Close()
	out := json.NewEncoder(e.stdout)
	for from := uint64(0); ; {
		evs, err := log.ReadStream(ctx, stream, from, eventlog.Forwards, 1000)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			if from == 0 {
				return fmt.Errorf("stream %s has no events", stream)
			}
			return nil
		}
		for _, ev := range evs {
			if err := out.Encode(ev); err != nil {
				return err
			}
		}
		from = evs[len(evs)-1].Revision + 1
	}
}

func eventsTail(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "events tail")
	stores := addLogFlags(f)
	from := f.String("from", "0", "print the events after this log position")
	follow := f.Bool("follow", false, "keep printing events as they are appended, until interrupted")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup events tail [flags]: print the events of every stream in log order")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return fmt.Errorf("%w: events tail takes no arguments", errUsage)
	}
	after, err := strconv.ParseUint(*from, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: --from %q: want a log position, a whole number", errUsage, *from)
	}
	log, err := stores.openLog(ctx)
	if err != nil {
		return err
	}
	defer log.Close()
	if e.wrapLog != nil {
		log = e.wrapLog(log)
	}
	out := json.NewEncoder(e.stdout)
	print := func(evs []eventlog.Event) error {
		for _, ev := range evs {
			if err := out.Encode(ev); err != nil {
				return err
			}
		}
		return nil
	}
	if *follow {
		return followLog(ctx, e, log, eventlog.Position(after), print)
	}
	for pos := eventlog.Position(after); ; {
		evs, err := log.ReadAll(ctx, pos, 1000)
		if err != nil || len(evs) == 0 {
			return err
		}
		if err := print(evs); err != nil {
			return err
		}
		pos = evs[len(evs)-1].Position
	}
}

// followLog prints the log's events after pos until ctx ends. A
// subscription that fails is followed again from the last event printed,
// after a wait that doubles from a quarter of a second up to 30 s: a log
// that hiccups does not end a --follow. An error of print itself (stdout
// gone) does.
func followLog(ctx context.Context, e *env, log eventlog.Store, pos eventlog.Position, print func([]eventlog.Event) error) error {
	const first, most = 250 * time.Millisecond, 30 * time.Second
	var printErr error
	for delay := first; ; delay = min(2*delay, most) {
		moved := false
		err := log.Subscribe(ctx, pos, eventlog.Filter{}, func(evs []eventlog.Event) error {
			if printErr = print(evs); printErr != nil {
				return printErr
			}
			pos, moved = evs[len(evs)-1].Position, true
			return nil
		})
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case printErr != nil:
			return printErr
		case moved:
			delay = first
		}
		fmt.Fprintf(e.stderr, "pickup events tail: following the log failed after position %d: %v; following it again in %v\n", pos, err, delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}
