package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// importer is a log that can take a page of another log's events in one
// transaction, in order (eventlog/postgres does). A target without it gets
// one Append per run of a stream's events, in the same order.
type importer interface {
	Import(ctx context.Context, events []eventlog.Event) error
}

// eventsCopy copies a whole history from one event log to another,
// preserving every event's stream, revision, id, type, version, data and
// metadata, in log order (positions are the target's own). It resumes
// after the target's last event, so it may be killed and run again, and a
// run over a complete copy writes nothing. It ends by reading both logs
// through and comparing their counts and checksums.
func eventsCopy(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "events copy")
	from := f.String("from", "", "the event log to copy from: a file, a postgres:// URL, or an esdb:// connection string")
	to := f.String("to", "", "the event log to copy to, empty or holding an earlier, partial copy of --from")
	page := f.Int("page", 1000, "events read, and written, at a time")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup events copy --from LOG --to LOG: copy a whole history between event logs (resumable, idempotent), then verify both sides")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	switch {
	case f.NArg() != 0:
		return fmt.Errorf("%w: events copy takes no arguments", errUsage)
	case *from == "" || *to == "":
		return fmt.Errorf("%w: events copy needs --from and --to", errUsage)
	case *from == *to:
		return fmt.Errorf("%w: events copy --from and --to name the same log", errUsage)
	case *page < 1 || *page > 10000:
		return fmt.Errorf("%w: --page %d: want 1 to 10000", errUsage, *page)
	}
	src, err := openEventLog(ctx, *from)
	if err != nil {
		return fmt.Errorf("open --from: %w", err)
	}
	defer src.Close()
	dst, err := openEventLog(ctx, *to)
	if err != nil {
		return fmt.Errorf("open --to: %w", err)
	}
	defer dst.Close()

	after, err := resumePoint(ctx, src, dst)
	if err != nil {
		return err
	}
	head, err := src.Head(ctx)
	if err != nil {
		return fmt.Errorf("read the head of --from: %w", err)
	}
	if after > 0 {
		fmt.Fprintf(e.stderr, "the target holds a copy up to position %d of the source: resuming after it\n", after)
	}
	show := copyProgress(e.stderr, head)
	copied, err := copyEvents(ctx, src, dst, after, *page, func(n int, pos eventlog.Position) { show(n, pos) })
	show(-1, 0)
	if err != nil {
		return fmt.Errorf("copy after %d events: %w", copied, err)
	}
	fmt.Fprintf(e.stdout, "copied %d events\n", copied)
	return verifyCopy(ctx, e.stdout, src, dst)
}

// resumePoint returns the source position after which the copy goes on:
// 0 for an empty target, else the source position of the target's last
// event. A target whose last event is not in the source holds another
// history, and is refused.
func resumePoint(ctx context.Context, src, dst eventlog.Store) (eventlog.Position, error) {
	head, err := dst.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the head of --to: %w", err)
	}
	if head == 0 {
		return 0, nil
	}
	// The event at head is the first after head-1, whatever the backend's
	// positions are.
	last, err := dst.ReadAll(ctx, head-1, 1)
	if err != nil || len(last) == 0 {
		return 0, fmt.Errorf("read the last event of --to: %v", orNoEvent(err))
	}
	t := last[0]
	same, err := src.ReadStream(ctx, t.Stream, t.Revision, eventlog.Forwards, 1)
	if err != nil {
		return 0, fmt.Errorf("look up the target's last event in --from: %w", err)
	}
	if len(same) == 0 || same[0].ID != t.ID || same[0].Revision != t.Revision {
		return 0, fmt.Errorf("--to is not empty and its last event (%s at %s/%d) is not in --from: it holds another history; copy into an empty log", t.ID, t.Stream, t.Revision)
	}
	return same[0].Position, nil
}

func orNoEvent(err error) error {
	if err != nil {
		return err
	}
	return errors.New("no event at its head")
}

// copyEvents copies the source's events after pos, a page at a time, and
// calls progress after each page with the events copied so far and the
// source position reached.
func copyEvents(ctx context.Context, src, dst eventlog.Store, after eventlog.Position, page int, progress func(int, eventlog.Position)) (int, error) {
	copied := 0
	for {
		evs, err := src.ReadAll(ctx, after, page)
		if err != nil {
			return copied, fmt.Errorf("read --from after %d: %w", after, err)
		}
		if len(evs) == 0 {
			return copied, nil
		}
		if err := writePage(ctx, dst, evs); err != nil {
			return copied, err
		}
		copied += len(evs)
		after = evs[len(evs)-1].Position
		progress(copied, after)
	}
}

// writePage writes a page of events to dst, in order: at once through
// Import, or one Append per run of one stream's events, each expecting the
// stream to end just before the run. An append already done (same ids) is
// answered as done by every Store, so a page written in part before a
// kill is written again safely.
func writePage(ctx context.Context, dst eventlog.Store, evs []eventlog.Event) error {
	if imp, ok := dst.(importer); ok {
		return imp.Import(ctx, evs)
	}
	for i := 0; i < len(evs); {
		j := i + 1
		for j < len(evs) && evs[j].Stream == evs[i].Stream && evs[j].Revision == evs[j-1].Revision+1 {
			j++
		}
		run := make([]eventlog.Proposed, 0, j-i)
		for _, ev := range evs[i:j] {
			run = append(run, eventlog.Proposed{ID: ev.ID, Type: ev.Type, Version: ev.Version, Data: ev.Data, Meta: ev.Meta})
		}
		first := evs[i]
		if _, err := dst.Append(ctx, first.Stream, eventlog.ExpectedAfter(first.Revision-1, first.Revision > 0), run...); err != nil {
			return fmt.Errorf("write %s/%d: %w", first.Stream, first.Revision, err)
		}
		i = j
	}
	return nil
}

// logSum is what verification reads of a log: how many events, and a
// SHA-256 over every one in log order (all but its position).
type logSum struct {
	events int
	sum    string
}

func (s logSum) String() string { return fmt.Sprintf("%d events, sha256 %s", s.events, s.sum) }

// sumLog reads the whole log through and sums it.
func sumLog(ctx context.Context, log eventlog.Store) (logSum, error) {
	h := sha256.New()
	n := 0
	for after := eventlog.Position(0); ; {
		evs, err := log.ReadAll(ctx, after, 1000)
		if err != nil {
			return logSum{}, err
		}
		if len(evs) == 0 {
			return logSum{events: n, sum: hex.EncodeToString(h.Sum(nil))}, nil
		}
		for _, ev := range evs {
			hashEvent(h, ev)
		}
		n += len(evs)
		after = evs[len(evs)-1].Position
	}
}

// hashEvent writes one event to h, every variable-length field prefixed by
// its length so that no two different events hash the same bytes.
func hashEvent(h hash.Hash, ev eventlog.Event) {
	var num [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(num[:], uint64(len(b)))
		h.Write(num[:])
		h.Write(b)
	}
	integer := func(v uint64) {
		binary.BigEndian.PutUint64(num[:], v)
		h.Write(num[:])
	}
	field([]byte(ev.Stream))
	integer(ev.Revision)
	h.Write(ev.ID[:])
	field([]byte(ev.Type))
	integer(uint64(ev.Version))
	integer(uint64(ev.Meta.Time.UnixNano()))
	field([]byte(ev.Meta.Actor))
	h.Write(ev.Meta.CorrelationID[:])
	h.Write(ev.Meta.CausationID[:])
	field(ev.Data)
}

// verifyCopy sums both logs and prints both sums; they must be equal.
func verifyCopy(ctx context.Context, w io.Writer, src, dst eventlog.Store) error {
	a, err := sumLog(ctx, src)
	if err != nil {
		return fmt.Errorf("verify: read --from: %w", err)
	}
	b, err := sumLog(ctx, dst)
	if err != nil {
		return fmt.Errorf("verify: read --to: %w", err)
	}
	fmt.Fprintf(w, "source: %s\ntarget: %s\n", a, b)
	if a != b {
		return errors.New("verify: the target differs from the source (was --from appended to during the copy, or --to written by something else?)")
	}
	fmt.Fprintln(w, "verified: the target holds the source's history")
	return nil
}

// copyProgress returns how the copy shows its progress on w: a bar over
// the source's positions on a terminal (as replay draws), or a plain line
// every few seconds otherwise. Called with n < 0, it ends the display.
func copyProgress(w io.Writer, head eventlog.Position) func(n int, pos eventlog.Position) {
	var copied int
	show := showProgress(w, head, "copying events", func(pos eventlog.Position) string {
		return fmt.Sprintf("copied %d events, up to position %d of %d", copied, pos, head)
	})
	return func(n int, pos eventlog.Position) {
		if n >= 0 {
			copied = n
			show(pos)
		}
	}
}
