// Package audit tells a pin's story from its events: for each one, when it
// happened, who did it, in which attempt, what it meant, and, for every
// decision nobody asked for (a retry, a dead letter, a watchdog's failure),
// why. It reads only the log: an audit owes nothing to the views.
//
// A pin's story includes its root's: the events of the root's stream
// ("root-<canonical CID>": holds by this pin's and other pins' fetchers,
// the garbage collector's decision to delete the root's CAR, its takeover,
// the deletion done) from the pin's request on, in log order, each
// labelled with the root (Entry.Root, and "root <cid>:" in its words).
// Read reads both streams.
package audit

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/termsafe"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// Entry is one event of a pin's timeline.
type Entry struct {
	Position eventlog.Position `json:"position"`
	Revision uint64            `json:"revision"`
	EventID  uuid.UUID         `json:"event_id"`
	// CausedBy is the event that led to this one, when the writer said.
	CausedBy *uuid.UUID `json:"caused_by,omitempty"`
	Time     time.Time  `json:"time"`
	Actor    string     `json:"actor"`
	Type     string     `json:"type"`
	// Attempt is the attempt the event belongs to (0 before the first).
	Attempt int `json:"attempt"`
	// Status is the API status after the event.
	Status pin.Status `json:"status"`
	// What says what happened.
	What string `json:"what"`
	// Reason says why, for failures and decisions.
	Reason string `json:"reason,omitempty"`
	// Root is set for an event of the root's stream: the root, canonical.
	Root string `json:"root,omitempty"`
}

// Read returns the events of a pin's story: its stream's, and, once its
// request names a root, the events of the root's stream that came after
// the request, merged in log order. A pin never requested has no events
// and no error. An error reading the root's stream is returned with the
// pin's events, which tell the story still.
func Read(ctx context.Context, log pinlog.Reader, requestID uuid.UUID) ([]eventlog.Event, error) {
	s, events, err := pinlog.Read(ctx, log, requestID)
	if err != nil || len(events) == 0 || !s.Exists {
		return events, err
	}
	c, err := cid.Decode(s.Request.CID)
	if err != nil {
		return events, nil // no root to tell of
	}
	_, roots, err := pinlog.ReadRoot(ctx, log, pinlog.CanonicalRoot(c))
	if err != nil {
		return events, err
	}
	start := events[0].Position
	for _, e := range roots {
		if e.Position > start {
			events = append(events, e)
		}
	}
	slices.SortStableFunc(events, func(a, b eventlog.Event) int { return cmp.Compare(a.Position, b.Position) })
	return events, nil
}

// Timeline folds a pin's events into its timeline. Events it cannot read
// appear as such, and the rest of the story goes on.
func Timeline(events []eventlog.Event) []Entry {
	var s pin.State
	var rs pin.RootState
	out := make([]Entry, 0, len(events))
	for _, e := range events {
		en := Entry{Position: e.Position, Revision: e.Revision, EventID: e.ID, Time: e.Meta.Time.UTC(), Actor: e.Meta.Actor, Type: e.Type}
		if e.Meta.CausationID != uuid.Nil {
			c := e.Meta.CausationID
			en.CausedBy = &c
		}
		if root, ok := pin.RootOf(e.Stream); ok {
			en.Root = root
			en.Attempt, en.Status = s.Attempt, s.Status()
			r, err := pinlog.DecodeRoot(e)
			if err != nil {
				en.What, en.Reason = "root "+root+": unreadable event", err.Error()
				out = append(out, en)
				continue
			}
			before := rs
			rs = rs.Apply(r)
			en.What, en.Reason = describeRoot(root, s.Request.RequestID, before, r)
			out = append(out, en)
			continue
		}
		before := s
		r, err := pinlog.Decode(e)
		if err == nil {
			s = s.Apply(r)
		}
		if err != nil {
			en.What = "unreadable event"
			en.Reason = err.Error()
			en.Attempt, en.Status = s.Attempt, s.Status()
			out = append(out, en)
			continue
		}
		en.Attempt, en.Status = s.Attempt, s.Status()
		en.What, en.Reason = describe(before, s, r.Payload)
		out = append(out, en)
	}
	return out
}

// describe says what a payload did to a pin, and why for the decisions.
func describe(before, after pin.State, p pin.Payload) (what, why string) {
	switch p := p.(type) {
	case pin.Requested:
		what = fmt.Sprintf("requested %s by tenant %s", p.CID, p.Tenant)
		if p.Name != "" {
			what += fmt.Sprintf(" as %q", p.Name)
		}
		if p.Replaces != uuid.Nil {
			what += fmt.Sprintf(", replacing request %s", p.Replaces)
		}
	case pin.FetchStarted:
		what = fmt.Sprintf("attempt %d claimed by %s, lease until %s", p.Attempt, p.Fetcher, clock(p.LeaseUntil))
	case pin.FetchProgress:
		what = fmt.Sprintf("attempt %d: %s in %d blocks", p.Attempt, Bytes(p.Bytes), p.Blocks)
		if p.Source != "" {
			what += " from " + p.Source
		}
		if p.ExpectedBytes > 0 {
			what += fmt.Sprintf(", %s of the %s its root declares", Bytes(p.BlockBytes), Bytes(p.ExpectedBytes))
		}
		if p.ResumedFrom > 0 {
			what += fmt.Sprintf(", going on from the %s an earlier attempt kept", Bytes(p.ResumedFrom))
		}
		if p.Checkpoint > 0 {
			what += fmt.Sprintf(", %s kept for a later attempt", Bytes(p.Checkpoint))
		}
		what += ", lease until " + clock(p.LeaseUntil)
	case pin.CarUploaded:
		what = fmt.Sprintf("attempt %d: CAR %s staged, %s in %d blocks", p.Attempt, p.CarCID, Bytes(p.Bytes), p.Blocks)
		if p.ResumedFrom > 0 {
			what += fmt.Sprintf(" (the first %s kept by an earlier attempt)", Bytes(p.ResumedFrom))
		}
	case pin.CarValidated:
		what = fmt.Sprintf("pinned: CAR %s (%s) validated into the carpark at %s", p.CarCID, Bytes(p.Bytes), p.Key)
		if p.Reused {
			what = fmt.Sprintf("pinned without fetching: reused CAR %s (%s) at %s", p.CarCID, Bytes(p.Bytes), p.Key)
		}
	case pin.Failed:
		kind := "transient"
		switch {
		case p.Permanent:
			kind = "permanent"
		case !p.Reason.Counts():
			kind = "handed back, spends no attempt"
		}
		what = fmt.Sprintf("attempt %d failed (%s)", p.Attempt, kind)
		why = failure(p.Reason, p.Message)
	case pin.RetryScheduled:
		next := after.Attempt + 1
		switch {
		case p.Requeued:
			what = fmt.Sprintf("requeued by the tenant: attempt %d may start at %s", next, clock(p.NotBefore))
			why = "the tenant asked again for a pin that had failed; its count of failures starts over"
		case before.LastFailure != nil && !before.LastFailure.Reason.Counts():
			what = fmt.Sprintf("attempt %d may start at once (%s)", next, clock(p.NotBefore))
			why = "the last attempt was handed back: " + failure(before.LastFailure.Reason, before.LastFailure.Message)
		default:
			what = fmt.Sprintf("retry %d scheduled for %s", next, clock(p.NotBefore))
			if before.LastFailure != nil {
				why = fmt.Sprintf("after %s; %d of the attempts failed so far", failure(before.LastFailure.Reason, before.LastFailure.Message), p.Failures)
			}
		}
	case pin.DeadLettered:
		what = fmt.Sprintf("dead-lettered after %d %s", p.Failures, plural(p.Failures, "failure"))
		why = failure(p.Reason, p.Message)
		if before.LastFailure != nil && before.LastFailure.Permanent {
			why = "permanent failure: " + why
		} else {
			why = "out of attempts: " + why
		}
	case pin.Removed:
		what = "removed by the tenant"
		if p.ReplacedBy != uuid.Nil {
			what = fmt.Sprintf("replaced by request %s", p.ReplacedBy)
		}
	}
	return what, why
}

// describeRoot says what an event of the root's stream did, for the story
// of the pin self.
func describeRoot(root string, self uuid.UUID, before pin.RootState, r pin.RootRecorded) (what, why string) {
	switch p := r.Payload.(type) {
	case pin.RootHeld:
		who := "request " + p.RequestID.String()
		if p.RequestID == self {
			who = "this pin"
		}
		what = fmt.Sprintf("root %s: held by %s, before its CAR is stored or used", root, who)
	case pin.RootDeleting:
		what = fmt.Sprintf("root %s: deletion of its CAR, index and mapping decided by %s, lease until %s", root, p.Actor, clock(p.LeaseUntil))
		why = "no live pin held the root for the grace period"
		if before.Deleting {
			what = fmt.Sprintf("root %s: deletion taken over by %s, lease until %s", root, p.Actor, clock(p.LeaseUntil))
			why = fmt.Sprintf("the lease of %s ran out at %s before it recorded the deletion done", before.Deleter, clock(before.LeaseUntil))
		}
	case pin.RootDeleted:
		what = fmt.Sprintf("root %s: CAR, index and mapping deleted (%d %s found); a later pin of the root fetches it again", root, p.Objects, plural(p.Objects, "object"))
	}
	return what, why
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func failure(r pin.Reason, msg string) string {
	if msg == "" {
		return string(r)
	}
	return fmt.Sprintf("%s: %s", r, msg)
}

func clock(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Bytes writes a size for people: 1.5 MiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Remaining writes a time still to go for people, rounded up to what it
// shows: whole seconds under a minute (12s), then minutes and seconds
// (4m05s), then hours and minutes (3h20m).
func Remaining(d time.Duration) string {
	switch {
	case d <= 59*time.Second:
		return fmt.Sprintf("%ds", int64((d+time.Second-1)/time.Second))
	case d <= 59*time.Minute+59*time.Second:
		d = (d + time.Second - 1).Truncate(time.Second)
		return fmt.Sprintf("%dm%02ds", int64(d/time.Minute), int64(d%time.Minute/time.Second))
	}
	d = (d + time.Minute - 1).Truncate(time.Minute)
	return fmt.Sprintf("%dh%02dm", int64(d/time.Hour), int64(d%time.Hour/time.Minute))
}

// WriteText prints the timeline for people: a line per event, then where
// the pin stands.
func WriteText(w io.Writer, requestID uuid.UUID, entries []Entry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "pin request %s\n", requestID)
	fmt.Fprintln(tw, "TIME\tACTOR\tATTEMPT\tEVENT\tWHAT\tWHY")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339Nano), termsafe.String(e.Actor), e.Attempt,
			termsafe.String(e.Type), termsafe.String(e.What), termsafe.String(e.Reason))
	}
	if len(entries) > 0 {
		last := entries[len(entries)-1]
		fmt.Fprintf(tw, "status now: %s, after %d events\n", last.Status, len(entries))
	}
	return tw.Flush()
}

// WriteJSON prints the timeline for machines: one JSON object per line.
func WriteJSON(w io.Writer, entries []Entry) error {
	enc := json.NewEncoder(w)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}
