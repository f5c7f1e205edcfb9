package deciders_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/pintest"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/deciders"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newActors(t testing.TB, w *pintest.World, c deciders.BoundConfig) (*deciders.Decider, *deciders.Watchdog) {
	t.Helper()
	deps := deciders.Deps{Log: w.Log, Logger: quiet()}
	d, err := deciders.NewDecider(deciders.DeciderConfig{Config: deciders.Config{Period: c.DeciderPeriod}, Policy: c.Policy}, w.Views, deps)
	if err != nil {
		t.Fatal(err)
	}
	wd, err := deciders.NewWatchdog(deciders.WatchdogConfig{Config: deciders.Config{Period: c.WatchdogPeriod}, QueueTimeout: c.QueueTimeout}, w.Views, deps)
	if err != nil {
		t.Fatal(err)
	}
	return d, wd
}

// tickAfter is the first tick of a period-p actor, started at t0, strictly
// after t.
func tickAfter(t0, t time.Time, p time.Duration) time.Time {
	n := t.Sub(t0)/p + 1
	return t0.Add(n * p)
}

// worstCase drives one pin through the worst its configuration allows:
// each attempt is claimed at the last moment before the watchdog would
// time it out, keeps its lease until the fetch timeout, and then its
// fetcher vanishes; the watchdog and the decider pass on their periods'
// ticks. It returns the time the pin failed for good. With claim false, no
// fetcher ever comes: every attempt times out in the queue.
func worstCase(t *testing.T, c deciders.BoundConfig, claim bool) (start, end time.Time, s pin.State) {
	ctx := context.Background()
	w := pintest.New(t)
	d, wd := newActors(t, w, c)
	start = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	id := w.Request(start)
	now := start
	for round := 0; ; round++ {
		if round > 20*c.Policy.MaxAttempts {
			t.Fatalf("no end after %d rounds: %+v", round, s)
		}
		w.Sync()
		s = w.State(id)
		switch {
		case s.Phase == pin.PhaseDeadLettered:
			return start, now, s
		case s.Phase == pin.PhaseQueued:
			due, _ := s.Deadline(c.QueueTimeout)
			expiry := tickAfter(start, due, c.WatchdogPeriod)
			// The watchdog's passes before then find nothing.
			if n, err := wd.Tick(ctx, expiry.Add(-c.WatchdogPeriod)); err != nil || n != 0 {
				t.Fatalf("watchdog before the queue deadline: %d, %v", n, err)
			}
			if !claim {
				now = expiry
				if n, err := wd.Tick(ctx, now); err != nil || n != 1 {
					t.Fatalf("watchdog after the queue deadline: %d, %v", n, err)
				}
				continue
			}
			claimed := expiry.Add(-time.Microsecond)
			w.Do(id, claimed, "fetcher", func(s pin.State) (pin.Payload, error) { return s.Claim("fetcher", claimed, c.Lease) })
			// Renew the lease until the fetch timeout, the last time just
			// before it (in one append: the fold is the same).
			st := w.State(id)
			var renewals []eventlog.Proposed
			renew := func(at time.Time) {
				p, err := st.Progress(pin.FetchProgress{Fetcher: "fetcher", Attempt: st.Attempt, Bytes: 1, Blocks: 1, Source: "gateway"}, at, c.Lease)
				if err != nil {
					t.Fatal(err)
				}
				st = st.With(p, at)
				ev, _ := pinlog.Propose(p, uuid.New(), eventlog.Metadata{Time: at, Actor: "fetcher", CorrelationID: id})
				renewals = append(renewals, ev)
			}
			for at := claimed.Add(c.Lease - time.Second); at.Before(claimed.Add(c.FetchTimeout)); at = at.Add(c.Lease - time.Second) {
				renew(at)
			}
			renew(claimed.Add(c.FetchTimeout - time.Microsecond))
			if _, err := w.Log.Append(ctx, pin.Stream(id), pinlog.Expected(w.State(id)), renewals...); err != nil {
				t.Fatal(err)
			}
			w.Sync()
			leaseEnd := w.State(id).LeaseUntil
			if n, err := wd.Tick(ctx, leaseEnd); err != nil || n != 0 {
				t.Fatalf("watchdog at the lease's end: %d, %v", n, err)
			}
			now = tickAfter(start, leaseEnd, c.WatchdogPeriod)
			if n, err := wd.Tick(ctx, now); err != nil || n != 1 {
				t.Fatalf("watchdog after the lease: %d, %v", n, err)
			}
		case s.Phase == pin.PhaseFailed:
			// The decider's pass came just before the failure: the next one
			// is a whole period later.
			now = now.Add(c.DeciderPeriod)
			if n, err := d.Tick(ctx, now); err != nil || n != 1 {
				t.Fatalf("decider: %d, %v", n, err)
			}
		default:
			t.Fatalf("unexpected phase %s", s.Phase)
		}
	}
}

// TestNoPinQueuedForever drives a pin through the worst case of the
// default configuration, with a clock the test holds: it fails for good,
// within the bound that the configuration promises.
func TestNoPinQueuedForever(t *testing.T) {
	c := deciders.DefaultBoundConfig()
	bound := c.Bound()
	if want := 5*(time.Hour+4*time.Hour+30*time.Second+2*5*time.Second+time.Second) + c.Policy.MaxTotalDelay(); bound != want {
		t.Errorf("bound %v, want %v", bound, want)
	}
	for _, claim := range []bool{true, false} {
		t.Run(fmt.Sprintf("claimed=%v", claim), func(t *testing.T) {
			start, end, s := worstCase(t, c, claim)
			took := end.Sub(start)
			t.Logf("worst case: failed for good after %v (%d attempts, last reason %s); the bound is %v", took, s.Failures, s.DeadLetter.Reason, bound)
			if took > bound {
				t.Errorf("the pin took %v, more than the bound %v", took, bound)
			}
			want := pin.ReasonLeaseExpired
			if !claim {
				want = pin.ReasonQueueTimeout
			}
			if s.Failures != c.Policy.MaxAttempts || s.DeadLetter.Reason != want {
				t.Errorf("ended after %d failures for %s, want %d for %s", s.Failures, s.DeadLetter.Reason, c.Policy.MaxAttempts, want)
			}
			// The bound is tight: the claimed worst case comes within the
			// jitter the policy may not have drawn.
			if claim && took < bound-c.Policy.MaxTotalDelay() {
				t.Errorf("the worst case took %v, far under the bound %v: the bound is not the worst case", took, bound)
			}
		})
	}
}

// TestDecisionsTable checks each decision on one pin: what the decider and
// the watchdog append, and when they leave a pin alone.
func TestDecisionsTable(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c := deciders.DefaultBoundConfig()
	claim := func(w *pintest.World, id uuid.UUID, at time.Time) {
		w.Do(id, at, "f", func(s pin.State) (pin.Payload, error) { return s.Claim("f", at, c.Lease) })
	}
	fail := func(w *pintest.World, id uuid.UUID, at time.Time, r pin.Reason) {
		w.Do(id, at, "f", func(s pin.State) (pin.Payload, error) { return s.Fail("f", s.Attempt, r, "msg", r.Permanent()) })
	}
	for _, tc := range []struct {
		name string
		// setup drives the pin; the actors then pass at t0+1h.
		setup func(w *pintest.World, id uuid.UUID)
		want  string // the type of the event appended, or "" for none
		check func(t *testing.T, s pin.State)
	}{
		{"transient failure is retried with backoff", func(w *pintest.World, id uuid.UUID) {
			claim(w, id, t0)
			fail(w, id, t0.Add(time.Minute), pin.ReasonStalled)
		}, pin.TypeRetryScheduled, func(t *testing.T, s pin.State) {
			lo, hi := t0.Add(time.Minute+24*time.Second), t0.Add(time.Minute+36*time.Second) // 30s ± 20%
			if s.NotBefore.Before(lo) || s.NotBefore.After(hi) {
				t.Errorf("retry not before %v, want within [%v, %v]", s.NotBefore, lo, hi)
			}
		}},
		{"permanent failure goes straight to the dead letter", func(w *pintest.World, id uuid.UUID) {
			claim(w, id, t0)
			fail(w, id, t0.Add(time.Minute), pin.ReasonRootNotFound)
		}, pin.TypeDeadLettered, func(t *testing.T, s pin.State) {
			if s.Failures != 1 || s.DeadLetter.Reason != pin.ReasonRootNotFound {
				t.Errorf("dead letter %+v after %d failures", s.DeadLetter, s.Failures)
			}
		}},
		{"the last attempt's failure is dead-lettered", func(w *pintest.World, id uuid.UUID) {
			at := t0
			for i := range c.Policy.MaxAttempts {
				at = at.Add(time.Hour / 10)
				claim(w, id, at)
				fail(w, id, at.Add(time.Second), pin.ReasonSourcesFailed)
				if i < c.Policy.MaxAttempts-1 {
					w.Do(id, at.Add(2*time.Second), "decider", func(s pin.State) (pin.Payload, error) { return s.DecideRetry(c.Policy) })
				}
			}
		}, pin.TypeDeadLettered, func(t *testing.T, s pin.State) {
			if s.Failures != c.Policy.MaxAttempts {
				t.Errorf("dead-lettered after %d failures, want %d", s.Failures, c.Policy.MaxAttempts)
			}
		}},
		{"an expired lease fails the attempt", func(w *pintest.World, id uuid.UUID) {
			claim(w, id, t0.Add(59*time.Minute))
		}, pin.TypeFailed, func(t *testing.T, s pin.State) {
			if s.LastFailure.Reason != pin.ReasonLeaseExpired || s.LastFailure.Permanent || s.LastFailure.Attempt != 1 {
				t.Errorf("failure %+v, want a transient lease_expired of attempt 1", s.LastFailure)
			}
		}},
		{"a renewed lease holds", func(w *pintest.World, id uuid.UUID) {
			claim(w, id, t0.Add(59*time.Minute))
			at := t0.Add(time.Hour - time.Second)
			w.Do(id, at, "f", func(s pin.State) (pin.Payload, error) {
				return s.Progress(pin.FetchProgress{Fetcher: "f", Attempt: 1, Bytes: 1, Blocks: 1}, at, c.Lease)
			})
		}, "", nil},
		{"a queued pin within its timeout waits", func(w *pintest.World, id uuid.UUID) {
			claim(w, id, t0)
			fail(w, id, t0.Add(time.Second), pin.ReasonHandedBack)
			w.Do(id, t0.Add(2*time.Second), "decider", func(s pin.State) (pin.Payload, error) { return s.DecideRetry(c.Policy) })
		}, "", nil},
		{"a removed pin is left alone", func(w *pintest.World, id uuid.UUID) {
			claim(w, id, t0)
			fail(w, id, t0.Add(time.Second), pin.ReasonStalled)
			w.Do(id, t0.Add(2*time.Second), "gateway", func(s pin.State) (pin.Payload, error) { return s.Remove(uuid.Nil) })
		}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			w := pintest.New(t)
			d, wd := newActors(t, w, c)
			id := w.Request(t0)
			tc.setup(w, id)
			before := w.State(id)
			w.Sync()
			now := t0.Add(time.Hour)
			if _, err := wd.Tick(ctx, now); err != nil {
				t.Fatal(err)
			}
			w.Sync()
			if _, err := d.Tick(ctx, now); err != nil {
				t.Fatal(err)
			}
			s, evs, err := pinlog.Read(ctx, w.Log, id)
			if err != nil {
				t.Fatal(err)
			}
			added := evs[before.Revision+1:]
			switch {
			case tc.want == "" && len(added) > 0:
				t.Fatalf("appended %s, want nothing", added[0].Type)
			case tc.want == "":
				return
			case len(added) == 0 || added[0].Type != tc.want:
				t.Fatalf("appended %v, want %s", added, tc.want)
			case added[0].Meta.Time != now || added[0].Meta.CorrelationID != id:
				t.Errorf("decision stamped %v, correlation %v: want the actor's clock %v and the request id", added[0].Meta.Time, added[0].Meta.CorrelationID, now)
			}
			tc.check(t, s)
		})
	}
}

// TestTwoDecidersAndWatchdogsDecideOnce runs two deciders and two
// watchdogs at once on one log, with a runner feeding their views, over
// pins abandoned in the queue and in flight: every lease is expired once,
// every failure decided once, and every pin ends dead-lettered after as
// many attempts as the policy allows.
func TestTwoDecidersAndWatchdogsDecideOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := pintest.New(t)
	c := deciders.DefaultBoundConfig()
	c.Policy = pin.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: 4 * time.Second, Jitter: 0.5}
	c.QueueTimeout = time.Minute
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var pins []uuid.UUID
	for i := range 60 {
		id := w.Request(t0)
		if i%2 == 0 {
			w.Do(id, t0, "f", func(s pin.State) (pin.Payload, error) { return s.Claim("f", t0, c.Lease) })
		}
		pins = append(pins, id)
	}
	go w.Runner.Run(ctx)
	d1, w1 := newActors(t, w, c)
	d2, w2 := newActors(t, w, c)
	now := t0
	for round := 0; round < 200; round++ {
		now = now.Add(20 * time.Second)
		var wg sync.WaitGroup
		for _, tick := range []func(context.Context, time.Time) (int, error){d1.Tick, d2.Tick, w1.Tick, w2.Tick} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := tick(ctx, now); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if f, err := w.Views.Figures(ctx, now); err == nil && f.DeadLettered == int64(len(pins)) {
			break
		}
		time.Sleep(time.Millisecond) // let the runner catch up
	}
	for _, id := range pins {
		s, evs, err := pinlog.Read(ctx, w.Log, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Phase != pin.PhaseDeadLettered || s.Failures != c.Policy.MaxAttempts {
			t.Errorf("%s ended %s after %d failures", id, s.Phase, s.Failures)
		}
		// A failure is followed by exactly one decision, and a decision
		// never by another without a failure between.
		last := ""
		for _, e := range evs {
			switch e.Type {
			case pin.TypeFailed:
				if last == pin.TypeFailed {
					t.Errorf("%s: two failures in a row at revision %d: a lease expired twice", id, e.Revision)
				}
			case pin.TypeRetryScheduled, pin.TypeDeadLettered:
				if last != pin.TypeFailed {
					t.Errorf("%s: %s at revision %d follows %s, not a failure: decided twice", id, e.Type, e.Revision, last)
				}
			}
			last = e.Type
		}
	}
}

// TestDecisionsAreReplayable decides on two logs holding the same history:
// the decisions get the same event ids and bodies, so a decider that runs
// again (a replay, or a retry after a lost answer) proposes what the log
// already holds, and the log keeps it once.
func TestDecisionsAreReplayable(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c := deciders.DefaultBoundConfig()
	id := uuid.New()
	var history []eventlog.Proposed
	var s pin.State
	for i, step := range []func(pin.State) (pin.Payload, error){
		func(s pin.State) (pin.Payload, error) {
			return pin.Request(s, pin.Requested{RequestID: id, Tenant: "alice", CID: "bafkqaaa", Created: t0})
		},
		func(s pin.State) (pin.Payload, error) { return s.Claim("f", t0, c.Lease) },
	} {
		p, err := step(s)
		if err != nil {
			t.Fatal(err)
		}
		ev, _ := pinlog.Propose(p, uuid.NewSHA1(id, []byte{byte(i)}), eventlog.Metadata{Time: t0, Actor: "test"})
		s = s.With(p, t0)
		s.Exists = true
		history = append(history, ev)
	}
	var decided [][]eventlog.Event
	for range 2 {
		w := pintest.New(t)
		if _, err := w.Log.Append(ctx, pin.Stream(id), eventlog.NoStream, history...); err != nil {
			t.Fatal(err)
		}
		w.Sync()
		d, wd := newActors(t, w, c)
		now := t0.Add(time.Hour)
		if _, err := wd.Expire(ctx, id, now); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Decide(ctx, id, now); err != nil {
			t.Fatal(err)
		}
		// Deciding again on the same state appends nothing.
		if ok, err := d.Decide(ctx, id, now); ok || err != nil {
			t.Errorf("a second decision: %v, %v", ok, err)
		}
		_, evs, err := pinlog.Read(ctx, w.Log, id)
		if err != nil {
			t.Fatal(err)
		}
		decided = append(decided, evs[len(history):])
	}
	a, b := decided[0], decided[1]
	if len(a) != 2 || len(b) != 2 {
		t.Fatalf("decisions %d and %d, want 2 each (expiry and retry)", len(a), len(b))
	}
	for i := range a {
		if a[i].ID != b[i].ID || string(a[i].Data) != string(b[i].Data) {
			t.Errorf("decision %d differs between the logs: %s %s / %s %s", i, a[i].ID, a[i].Data, b[i].ID, b[i].Data)
		}
	}
}
