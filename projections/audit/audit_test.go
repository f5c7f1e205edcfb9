package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections/audit"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// history records a pin's life as a log would.
type history struct {
	t      *testing.T
	id     uuid.UUID
	s      pin.State
	events []eventlog.Event
}

func (h *history) add(actor string, at time.Time, decide func(pin.State) (pin.Payload, error)) {
	h.t.Helper()
	p, err := decide(h.s)
	if err != nil {
		h.t.Fatal(err)
	}
	n := len(h.events)
	pr, err := pinlog.Propose(p, uuid.NewSHA1(h.id, []byte{byte(n)}), eventlog.Metadata{Time: at, Actor: actor, CorrelationID: h.id})
	if err != nil {
		h.t.Fatal(err)
	}
	e := eventlog.Event{ID: pr.ID, Stream: pin.Stream(h.id), Revision: uint64(n), Position: eventlog.Position(100 + 2*n),
		Type: pr.Type, Version: pr.Version, Data: pr.Data, Meta: pr.Meta}
	if n > 0 {
		e.Meta.CausationID = h.events[n-1].ID
	}
	if h.s, err = pinlog.Apply(h.s, e); err != nil {
		h.t.Fatal(err)
	}
	h.events = append(h.events, e)
}

// story is a pin that stalls, loses its fetcher, and runs out of attempts.
func story(t *testing.T) *history {
	policy := pin.RetryPolicy{MaxAttempts: 3, BaseDelay: 30 * time.Second, MaxDelay: time.Hour, Jitter: 0.2}
	h := &history{t: t, id: uuid.MustParse("0a0a0a0a-0000-4000-8000-000000000001")}
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	tick := func(d time.Duration) time.Time { at = at.Add(d); return at }
	h.add("gateway", at, func(s pin.State) (pin.Payload, error) {
		return pin.Request(s, pin.Requested{RequestID: h.id, Tenant: "alice", CID: "bafkqaaa", Name: "holiday photos", Created: at})
	})
	h.add("fetcher/a", tick(time.Second), func(s pin.State) (pin.Payload, error) { return s.Claim("fetcher/a", at, 30*time.Second) })
	h.add("fetcher/a", tick(10*time.Second), func(s pin.State) (pin.Payload, error) {
		return s.Progress(pin.FetchProgress{Fetcher: "fetcher/a", Attempt: 1, Bytes: 3 << 20, Blocks: 12, Source: "gateway"}, at, 30*time.Second)
	})
	h.add("fetcher/a", tick(2*time.Minute), func(s pin.State) (pin.Payload, error) {
		return s.Fail("fetcher/a", 1, pin.ReasonStalled, "no bytes for 2m0s", false)
	})
	h.add("decider", tick(time.Second), func(s pin.State) (pin.Payload, error) { return s.DecideRetry(policy) })
	h.add("fetcher/b", tick(time.Minute), func(s pin.State) (pin.Payload, error) { return s.Claim("fetcher/b", at, 30*time.Second) })
	h.add("watchdog", tick(time.Minute), func(s pin.State) (pin.Payload, error) { return s.Expire(at, time.Hour) })
	h.add("decider", tick(time.Second), func(s pin.State) (pin.Payload, error) { return s.DecideRetry(policy) })
	h.add("fetcher/a", tick(2*time.Minute), func(s pin.State) (pin.Payload, error) { return s.Claim("fetcher/a", at, 30*time.Second) })
	h.add("fetcher/a", tick(time.Minute), func(s pin.State) (pin.Payload, error) {
		return s.Fail("fetcher/a", 3, pin.ReasonSourcesFailed, "gateway: 504; bitswap: no providers", false)
	})
	h.add("decider", tick(time.Second), func(s pin.State) (pin.Payload, error) { return s.DecideRetry(policy) })
	return h
}

func TestTimelineSaysWhatAndWhy(t *testing.T) {
	h := story(t)
	tl := audit.Timeline(h.events)
	if len(tl) != len(h.events) {
		t.Fatalf("%d entries for %d events", len(tl), len(h.events))
	}
	for _, c := range []struct {
		i                int
		actor, what, why string
		attempt          int
		status           pin.Status
	}{
		{0, "gateway", `requested bafkqaaa by tenant alice as "holiday photos"`, "", 0, pin.StatusQueued},
		{1, "fetcher/a", "attempt 1 claimed by fetcher/a, lease until 2026-05-01T10:00:31Z", "", 1, pin.StatusPinning},
		{2, "fetcher/a", "attempt 1: 3.0 MiB in 12 blocks from gateway", "", 1, pin.StatusPinning},
		{3, "fetcher/a", "attempt 1 failed (transient)", "stalled: no bytes for 2m0s", 1, pin.StatusQueued},
		{4, "decider", "retry 2 scheduled for 2026-05-01T10:02:", "after stalled: no bytes for 2m0s; 1 of the attempts failed so far", 1, pin.StatusQueued},
		{6, "watchdog", "attempt 2 failed (transient)", "lease_expired: no word from fetcher/b since its lease ran out at", 2, pin.StatusQueued},
		{10, "decider", "dead-lettered after 3 failures", "out of attempts: sources_failed: 3 attempts failed; the last: gateway: 504; bitswap: no providers", 3, pin.StatusFailed},
	} {
		e := tl[c.i]
		if e.Actor != c.actor || !strings.HasPrefix(e.What, c.what) || !strings.HasPrefix(e.Reason, c.why) || e.Attempt != c.attempt || e.Status != c.status {
			t.Errorf("entry %d: %s %q %q attempt %d %s\nwant %s %q %q attempt %d %s", c.i, e.Actor, e.What, e.Reason, e.Attempt, e.Status,
				c.actor, c.what, c.why, c.attempt, c.status)
		}
		if e.EventID != h.events[c.i].ID || !e.Time.Equal(h.events[c.i].Meta.Time) || e.Position != h.events[c.i].Position {
			t.Errorf("entry %d does not name its event", c.i)
		}
	}
	if tl[4].CausedBy == nil || *tl[4].CausedBy != h.events[3].ID {
		t.Errorf("the retry decision does not name the failure that caused it")
	}
}

func TestTimelineGoesOnPastUnreadableEvents(t *testing.T) {
	h := story(t)
	evs := append([]eventlog.Event(nil), h.events[:2]...)
	evs = append(evs, eventlog.Event{Stream: evs[0].Stream, Revision: 2, Type: "Mystery", Version: 1, Data: []byte(`{}`)})
	evs = append(evs, h.events[2])
	tl := audit.Timeline(evs)
	if tl[2].What != "unreadable event" || !strings.Contains(tl[2].Reason, "Mystery") || tl[3].What == "unreadable event" {
		t.Errorf("timeline around an unreadable event: %+v", tl[1:])
	}
}

func TestTimelineText(t *testing.T) {
	h := story(t)
	var out bytes.Buffer
	if err := audit.WriteText(&out, h.id, audit.Timeline(h.events)); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "timeline.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("text timeline differs from %s (run with -update to accept):\n%s", golden, out.String())
	}
}

func TestTimelineJSONLines(t *testing.T) {
	h := story(t)
	entries := audit.Timeline(h.events)
	var out bytes.Buffer
	if err := audit.WriteJSON(&out, entries); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(entries) {
		t.Fatalf("%d lines for %d entries", len(lines), len(entries))
	}
	var back audit.Entry
	if err := json.Unmarshal([]byte(lines[4]), &back); err != nil {
		t.Fatal(err)
	}
	if back.What != entries[4].What || back.Reason != entries[4].Reason || back.EventID != entries[4].EventID || !back.Time.Equal(entries[4].Time) {
		t.Errorf("line %s reads back as %+v, want %+v", lines[4], back, entries[4])
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 20: "3.0 MiB", 31 << 30: "31.0 GiB"} {
		if got := audit.Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// What tenants and remotes wrote (names, failure messages, actors) is
// printed escaped: a terminal escape in a message does not reach the
// auditor's terminal.
func TestTimelineTextIsEscaped(t *testing.T) {
	h := &history{t: t, id: uuid.New()}
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	h.add("gateway", at, func(s pin.State) (pin.Payload, error) {
		return pin.Request(s, pin.Requested{RequestID: h.id, Tenant: "alice", CID: "bafkqaaa", Name: "\x1b[31mred\n", Created: at})
	})
	h.add("fetcher/\x1b]0;x\a", at, func(s pin.State) (pin.Payload, error) { return s.Claim("f", at, time.Minute) })
	h.add("fetcher/\x1b]0;x\a", at, func(s pin.State) (pin.Payload, error) {
		return s.Fail("f", 1, pin.ReasonSourcesFailed, "gateway said \x1b[2J<html>", false)
	})
	var out bytes.Buffer
	if err := audit.WriteText(&out, h.id, audit.Timeline(h.events)); err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(out.Bytes(), "\x1b\a") {
		t.Errorf("raw control characters in the timeline:\n%q", out.String())
	}
	if !strings.Contains(out.String(), `\x1b[2J`) {
		t.Errorf("the escaped message is missing:\n%s", out.String())
	}
}

// TestTimelineTellsTheRootsStory writes a pin's life on a real log, with
// its root's stream beside it (a hold by an earlier pin, which the story
// leaves out; this pin's hold; the GC's decision, a takeover and the
// deletion), and reads it back with Read: the root's events come in log
// order, labelled with the root.
func TestTimelineTellsTheRootsStory(t *testing.T) {
	ctx := context.Background()
	log, err := embedded.Open(ctx, filepath.Join(t.TempDir(), "events.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	c := pinlog.New(log, func() time.Time { return at })
	root, err := cid.Decode("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n")
	if err != nil {
		t.Fatal(err)
	}
	canonical := pinlog.CanonicalRoot(root)
	if err := pinlog.HoldRoot(ctx, log, root, uuid.New()); err != nil { // an earlier pin's
		t.Fatal(err)
	}
	id := uuid.New()
	do := func(actor string, decide func(pin.State) (pin.Payload, error)) {
		t.Helper()
		if _, err := c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: actor, Decide: func(s pin.State) (pinlog.Decision, error) {
			p, err := decide(s)
			return pinlog.Decision{Payload: p}, err
		}}); err != nil {
			t.Fatal(err)
		}
	}
	do("gateway", func(s pin.State) (pin.Payload, error) {
		return pin.Request(s, pin.Requested{RequestID: id, Tenant: "alice", CID: root.String(), Created: at})
	})
	do("f", func(s pin.State) (pin.Payload, error) { return s.Claim("f", at, time.Minute) })
	if err := pinlog.HoldRoot(ctx, log, root, id); err != nil {
		t.Fatal(err)
	}
	do("f", func(s pin.State) (pin.Payload, error) {
		return s.Reuse("f", pin.CarValidated{Attempt: 1, Key: "k", Bytes: 10, CarCID: "bagcar"})
	})
	do("gateway", func(s pin.State) (pin.Payload, error) { return s.Remove(uuid.Nil) })
	root1 := func(actor string, decide func(pin.RootState) (pin.RootPayload, error)) {
		t.Helper()
		if _, err := c.CommitRoot(ctx, pinlog.RootCommit{Root: canonical, Actor: actor, Decide: func(s pin.RootState) (pinlog.RootDecision, error) {
			p, err := decide(s)
			return pinlog.RootDecision{Payload: p}, err
		}}); err != nil {
			t.Fatal(err)
		}
	}
	decide := func(actor string, now time.Time) func(pin.RootState) (pin.RootPayload, error) {
		return func(s pin.RootState) (pin.RootPayload, error) {
			d, err := s.DecideDelete(actor, now, time.Minute)
			if err != nil {
				return nil, err
			}
			return *d, nil
		}
	}
	root1("gc/1", decide("gc/1", at))
	root1("gc/2", decide("gc/2", at.Add(2*time.Minute)))
	root1("gc/2", func(s pin.RootState) (pin.RootPayload, error) { return s.Deleted("gc/2", at, 3) })

	events, err := audit.Read(ctx, log, id)
	if err != nil {
		t.Fatal(err)
	}
	tl := audit.Timeline(events)
	var got []string
	for _, e := range tl {
		got = append(got, e.Type+" "+e.Root)
	}
	want := []string{"PinRequested ", "FetchStarted ", "RootHeld " + canonical, "CarValidated ", "PinRemoved ",
		"RootDeleting " + canonical, "RootDeleting " + canonical, "RootDeleted " + canonical}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("story %q\nwant %q", got, want)
	}
	for i, w := range map[int]string{
		2: "root " + canonical + ": held by this pin",
		5: "root " + canonical + ": deletion of its CAR, index and mapping decided by gc/1",
		6: "root " + canonical + ": deletion taken over by gc/2",
		7: "root " + canonical + ": CAR, index and mapping deleted (3 objects found)",
	} {
		if !strings.HasPrefix(tl[i].What, w) {
			t.Errorf("entry %d: %q, want %q", i, tl[i].What, w)
		}
	}
	if !strings.Contains(tl[6].Reason, "the lease of gc/1 ran out") || tl[7].Status != pin.StatusPinned {
		t.Errorf("takeover %q; status after the deletion %s", tl[6].Reason, tl[7].Status)
	}
	var out bytes.Buffer
	if err := audit.WriteText(&out, id, tl); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "RootDeleted") {
		t.Errorf("text timeline without the root's events:\n%s", out.String())
	}
}
