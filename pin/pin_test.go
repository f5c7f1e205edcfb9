package pin_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/pin"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const lease = time.Minute

// history builds a pin's state the way the log does: each payload becomes
// an event with the next revision and a new id (pin/pinlog's tests prove
// the envelope keeps what the domain records).
type history struct {
	t      testing.TB
	id     uuid.UUID
	events []pin.Recorded
}

func newHistory(t testing.TB) *history { return &history{t: t, id: uuid.New()} }

func (h *history) add(p pin.Payload, at time.Time) *history {
	h.t.Helper()
	h.events = append(h.events, pin.Recorded{ID: uuid.New(), Revision: uint64(len(h.events)), At: at, Payload: p})
	return h
}

func (h *history) state() pin.State {
	h.t.Helper()
	s := pin.Fold(h.events)
	if err := s.Check(); err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *history) requested() *history {
	return h.add(pin.Requested{RequestID: h.id, Tenant: "alice", CID: "bafkqaaa", Name: "n", Origins: []string{"/ip4/1.2.3.4/tcp/4001"}, Meta: map[string]string{"k": "v"}, Created: t0}, t0)
}

func (h *history) claimed() *history {
	return h.requested().add(pin.FetchStarted{Attempt: 1, Fetcher: "f1", LeaseUntil: t0.Add(lease)}, t0)
}

func (h *history) uploaded() *history {
	return h.claimed().add(pin.CarUploaded{Attempt: 1, Fetcher: "f1", Key: "staging/x.car", Bytes: 100, Blocks: 2, CarCID: "bagboeaaa"}, t0.Add(time.Second))
}

func (h *history) failed(permanent bool) *history {
	return h.claimed().add(pin.Failed{Attempt: 1, Reason: pin.ReasonStalled, Message: "no bytes for 2m", Permanent: permanent}, t0.Add(2*time.Minute))
}

func TestStatusMapping(t *testing.T) {
	for _, c := range []struct {
		name    string
		h       func(*history) *history
		status  pin.Status
		cluster string
	}{
		{"requested", (*history).requested, pin.StatusQueued, "pin_queued"},
		{"claimed", (*history).claimed, pin.StatusPinning, "pinning"},
		{"progress", func(h *history) *history {
			return h.claimed().add(pin.FetchProgress{Attempt: 1, Fetcher: "f1", Bytes: 5, Blocks: 1, LeaseUntil: t0.Add(2 * lease)}, t0)
		}, pin.StatusPinning, "pinning"},
		{"uploaded", (*history).uploaded, pin.StatusPinning, "pinning"},
		{"validated", func(h *history) *history {
			return h.uploaded().add(pin.CarValidated{Attempt: 1, Key: "c/c.car", Bytes: 100, CarCID: "bagboeaaa"}, t0)
		}, pin.StatusPinned, "pinned"},
		{"transient failure awaiting decision", func(h *history) *history { return h.failed(false) }, pin.StatusQueued, "pin_queued"},
		{"permanent failure awaiting decision", func(h *history) *history { return h.failed(true) }, pin.StatusFailed, "pin_error"},
		{"retry scheduled", func(h *history) *history {
			return h.failed(false).add(pin.RetryScheduled{Failures: 1, NotBefore: t0.Add(time.Hour)}, t0)
		}, pin.StatusQueued, "pin_queued"},
		{"dead lettered", func(h *history) *history {
			return h.failed(true).add(pin.DeadLettered{Failures: 1, Reason: pin.ReasonStalled}, t0)
		}, pin.StatusFailed, "pin_error"},
		{"removed", func(h *history) *history { return h.claimed().add(pin.Removed{}, t0) }, pin.StatusPinning, "unpinned"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.h(newHistory(t)).state()
			if s.Status() != c.status || s.ClusterStatus() != c.cluster {
				t.Errorf("status %q cluster %q, want %q %q", s.Status(), s.ClusterStatus(), c.status, c.cluster)
			}
		})
	}
}

func TestFoldKeepsWhatTheAPIShows(t *testing.T) {
	h := newHistory(t).claimed().
		add(pin.FetchProgress{Attempt: 1, Fetcher: "f1", Bytes: 1 << 20, Blocks: 7, Source: "gateway", LeaseUntil: t0.Add(3 * lease)}, t0.Add(time.Second))
	s := h.state()
	if s.Request.CID != "bafkqaaa" || s.Request.Name != "n" || s.Request.Meta["k"] != "v" || len(s.Request.Origins) != 1 {
		t.Errorf("request not kept: %+v", s.Request)
	}
	if s.Attempt != 1 || s.Bytes != 1<<20 || s.Blocks != 7 || s.Source != "gateway" || !s.LeaseUntil.Equal(t0.Add(3*lease)) {
		t.Errorf("progress not kept: attempt %d bytes %d blocks %d source %q lease %v", s.Attempt, s.Bytes, s.Blocks, s.Source, s.LeaseUntil)
	}
	if !s.Exists || s.Revision != 2 || s.LastEventID != h.events[2].ID {
		t.Errorf("exists %v revision %d last %s, want true, 2, %s", s.Exists, s.Revision, s.LastEventID, h.events[2].ID)
	}
}

func TestRequest(t *testing.T) {
	good := pin.Requested{RequestID: uuid.New(), Tenant: "alice", CID: "bafkqaaa", Created: t0}
	for _, c := range []struct {
		name string
		s    pin.State
		edit func(*pin.Requested)
		want error
	}{
		{"new", pin.State{}, func(*pin.Requested) {}, nil},
		{"stream exists", newHistory(t).requested().state(), func(*pin.Requested) {}, pin.ErrExists},
		{"no id", pin.State{}, func(r *pin.Requested) { r.RequestID = uuid.Nil }, pin.ErrInvalid},
		{"no tenant", pin.State{}, func(r *pin.Requested) { r.Tenant = "" }, pin.ErrInvalid},
		{"no cid", pin.State{}, func(r *pin.Requested) { r.CID = "" }, pin.ErrInvalid},
		{"no time", pin.State{}, func(r *pin.Requested) { r.Created = time.Time{} }, pin.ErrInvalid},
		{"long name", pin.State{}, func(r *pin.Requested) { r.Name = string(make([]rune, 256)) }, pin.ErrInvalid},
		{"255 character name", pin.State{}, func(r *pin.Requested) { r.Name = string(make([]rune, 255)) }, nil},
		{"too many origins", pin.State{}, func(r *pin.Requested) { r.Origins = make([]string, 21) }, pin.ErrInvalid},
		{"replaces itself", pin.State{}, func(r *pin.Requested) { r.Replaces = r.RequestID }, pin.ErrInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := good
			c.edit(&r)
			_, err := pin.Request(c.s, r)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("error %v, want %v", err, c.want)
			}
		})
	}
}

func TestClaim(t *testing.T) {
	retry := func(at time.Time) func(*history) *history {
		return func(h *history) *history {
			return h.failed(false).add(pin.RetryScheduled{Failures: 1, NotBefore: at}, t0.Add(2*time.Minute))
		}
	}
	for _, c := range []struct {
		name        string
		h           func(*history) *history
		now         time.Time
		want        error
		wantAttempt int
	}{
		{"requested", (*history).requested, t0, nil, 1},
		{"never requested", func(h *history) *history { return h }, t0, pin.ErrNotFound, 0},
		{"claimed", (*history).claimed, t0, pin.ErrClaimed, 0},
		{"uploaded", (*history).uploaded, t0, pin.ErrClaimed, 0},
		{"failure awaiting decision", func(h *history) *history { return h.failed(false) }, t0.Add(time.Hour), pin.ErrNotDue, 0},
		{"retry not due", retry(t0.Add(time.Hour)), t0.Add(time.Minute), pin.ErrNotDue, 0},
		{"retry due", retry(t0.Add(time.Hour)), t0.Add(time.Hour), nil, 2},
		{"removed", func(h *history) *history { return h.requested().add(pin.Removed{}, t0) }, t0, pin.ErrRemoved, 0},
		{"pinned", func(h *history) *history {
			return h.uploaded().add(pin.CarValidated{Attempt: 1, Key: "k", Bytes: 100, CarCID: "bagboeaaa"}, t0)
		}, t0, pin.ErrFinal, 0},
		{"dead lettered", func(h *history) *history {
			return h.failed(true).add(pin.DeadLettered{Failures: 1, Reason: pin.ReasonTooBig}, t0)
		}, t0, pin.ErrFinal, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.h(newHistory(t)).state()
			got, err := s.Claim("f2", c.now, lease)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if err == nil && (got.Attempt != c.wantAttempt || got.Fetcher != "f2" || !got.LeaseUntil.Equal(c.now.Add(lease))) {
				t.Errorf("claim = %+v, want attempt %d by f2 until %v", got, c.wantAttempt, c.now.Add(lease))
			}
		})
	}
}

func TestStepsOfAnAttempt(t *testing.T) {
	upload := func(fetcher string, attempt int) pin.CarUploaded {
		return pin.CarUploaded{Attempt: attempt, Fetcher: fetcher, Key: "k", Bytes: 10, Blocks: 1, CarCID: "bagboeaaa"}
	}
	steps := map[string]func(pin.State) error{
		"progress by holder": func(s pin.State) error {
			_, err := s.Progress(pin.FetchProgress{Fetcher: "f1", Attempt: 1, Bytes: 10, Blocks: 1, Source: "bitswap"}, t0, lease)
			return err
		},
		"progress by other": func(s pin.State) error {
			_, err := s.Progress(pin.FetchProgress{Fetcher: "f2", Attempt: 1, Bytes: 10, Blocks: 1, Source: "bitswap"}, t0, lease)
			return err
		},
		"progress of old attempt": func(s pin.State) error {
			_, err := s.Progress(pin.FetchProgress{Fetcher: "f1", Attempt: 0, Bytes: 10, Blocks: 1, Source: "bitswap"}, t0, lease)
			return err
		},
		"upload by holder":   func(s pin.State) error { _, err := s.Upload(upload("f1", 1)); return err },
		"upload by other":    func(s pin.State) error { _, err := s.Upload(upload("f2", 1)); return err },
		"upload without key": func(s pin.State) error { u := upload("f1", 1); u.Key = ""; _, err := s.Upload(u); return err },
		"validate": func(s pin.State) error {
			_, err := s.Validate(pin.CarValidated{Attempt: 1, Key: "c", Bytes: 100, CarCID: "bagboeaaa"})
			return err
		},
		"validate other CAR": func(s pin.State) error {
			_, err := s.Validate(pin.CarValidated{Attempt: 1, Key: "c", Bytes: 100, CarCID: "bagboeaab"})
			return err
		},
		"reuse": func(s pin.State) error {
			_, err := s.Reuse("f1", pin.CarValidated{Attempt: 1, Key: "c", Bytes: 10, CarCID: "bagboeaaa"})
			return err
		},
		"fail by holder":    func(s pin.State) error { _, err := s.Fail("f1", 1, pin.ReasonStalled, "m", false); return err },
		"fail by validator": func(s pin.State) error { _, err := s.Fail("", 1, pin.ReasonValidation, "m", false); return err },
		"fail by other":     func(s pin.State) error { _, err := s.Fail("f2", 1, pin.ReasonStalled, "m", false); return err },
	}
	for _, c := range []struct {
		state func(*history) *history
		want  map[string]error
	}{
		{(*history).claimed, map[string]error{
			"progress by holder": nil, "progress by other": pin.ErrLeaseLost, "progress of old attempt": pin.ErrLeaseLost,
			"upload by holder": nil, "upload by other": pin.ErrLeaseLost, "upload without key": pin.ErrInvalid,
			"validate": pin.ErrNotUploaded, "validate other CAR": pin.ErrNotUploaded, "reuse": nil,
			"fail by holder": nil, "fail by validator": nil, "fail by other": pin.ErrLeaseLost,
		}},
		{(*history).uploaded, map[string]error{
			"progress by holder": pin.ErrLeaseLost, "progress by other": pin.ErrLeaseLost, "progress of old attempt": pin.ErrLeaseLost,
			"upload by holder": pin.ErrLeaseLost, "upload by other": pin.ErrLeaseLost, "upload without key": pin.ErrLeaseLost,
			"validate": nil, "validate other CAR": pin.ErrInvalid, "reuse": pin.ErrLeaseLost,
			"fail by holder": nil, "fail by validator": nil, "fail by other": pin.ErrLeaseLost,
		}},
		// The watchdog failed the attempt: the fetcher's claim is gone.
		{func(h *history) *history { return h.failed(false) }, map[string]error{
			"progress by holder": pin.ErrLeaseLost, "progress by other": pin.ErrLeaseLost, "progress of old attempt": pin.ErrLeaseLost,
			"upload by holder": pin.ErrLeaseLost, "upload by other": pin.ErrLeaseLost, "upload without key": pin.ErrLeaseLost,
			"validate": pin.ErrLeaseLost, "validate other CAR": pin.ErrLeaseLost, "reuse": pin.ErrLeaseLost,
			"fail by holder": pin.ErrLeaseLost, "fail by validator": pin.ErrLeaseLost, "fail by other": pin.ErrLeaseLost,
		}},
		// The tenant removed the pin mid-fetch.
		{func(h *history) *history { return h.claimed().add(pin.Removed{}, t0) }, map[string]error{
			"progress by holder": pin.ErrRemoved, "progress by other": pin.ErrRemoved, "progress of old attempt": pin.ErrRemoved,
			"upload by holder": pin.ErrRemoved, "upload by other": pin.ErrRemoved, "upload without key": pin.ErrRemoved,
			"validate": pin.ErrRemoved, "validate other CAR": pin.ErrRemoved, "reuse": pin.ErrRemoved,
			"fail by holder": pin.ErrRemoved, "fail by validator": pin.ErrRemoved, "fail by other": pin.ErrRemoved,
		}},
	} {
		s := c.state(newHistory(t)).state()
		for name, step := range steps {
			want := c.want[name]
			if err := step(s); !errors.Is(err, want) || (want == nil) != (err == nil) {
				t.Errorf("pin %s, %s: error %v, want %v", s.Phase, name, err, want)
			}
		}
	}
}

func TestExpire(t *testing.T) {
	const queueTimeout = time.Hour
	for _, c := range []struct {
		name   string
		h      func(*history) *history
		now    time.Time
		reason pin.Reason
		want   error
	}{
		{"lease live", (*history).claimed, t0.Add(lease), "", pin.ErrNoDeadline},
		{"lease expired", (*history).claimed, t0.Add(lease + time.Nanosecond), pin.ReasonLeaseExpired, nil},
		{"lease renewed", func(h *history) *history {
			return h.claimed().add(pin.FetchProgress{Attempt: 1, Fetcher: "f1", LeaseUntil: t0.Add(10 * lease)}, t0)
		}, t0.Add(5 * lease), "", pin.ErrNoDeadline},
		{"uploaded, lease expired", (*history).uploaded, t0.Add(2 * lease), pin.ReasonLeaseExpired, nil},
		{"queued within timeout", (*history).requested, t0.Add(queueTimeout), "", pin.ErrNoDeadline},
		{"queued too long", (*history).requested, t0.Add(queueTimeout + time.Second), pin.ReasonQueueTimeout, nil},
		{"retry queued counts from when due", func(h *history) *history {
			return h.failed(false).add(pin.RetryScheduled{Failures: 1, NotBefore: t0.Add(5 * time.Hour)}, t0)
		}, t0.Add(5*time.Hour + queueTimeout), "", pin.ErrNoDeadline},
		{"pinned", func(h *history) *history {
			return h.uploaded().add(pin.CarValidated{Attempt: 1, Key: "k", Bytes: 100, CarCID: "bagboeaaa"}, t0)
		}, t0.Add(100 * time.Hour), "", pin.ErrNoDeadline},
		{"removed", func(h *history) *history { return h.claimed().add(pin.Removed{}, t0) }, t0.Add(time.Hour), "", pin.ErrRemoved},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.h(newHistory(t)).state()
			f, err := s.Expire(c.now, queueTimeout)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if err == nil && (f.Reason != c.reason || f.Permanent) {
				t.Errorf("failure %+v, want transient %s", f, c.reason)
			}
			if deadline, ok := s.Deadline(queueTimeout); err == nil && (!ok || !c.now.After(deadline)) {
				t.Errorf("expired at %v, but Deadline says %v, %v", c.now, deadline, ok)
			}
		})
	}
}

func TestDecideRetry(t *testing.T) {
	policy := pin.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Minute, MaxDelay: 3 * time.Minute, Jitter: 0.2}
	if err := policy.Validate(); err != nil {
		t.Fatal(err)
	}
	h := newHistory(t).requested()
	// Fail attempts one after another, as fetchers and the decider would.
	for attempt := 1; ; attempt++ {
		s := h.state()
		claim, err := s.Claim("f1", s.NotBefore, lease)
		if err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		h.add(claim, s.NotBefore)
		s = h.state()
		failAt := s.NotBefore.Add(time.Minute)
		f, err := s.Fail("f1", attempt, pin.ReasonSourcesFailed, "peer refused", false)
		if err != nil {
			t.Fatal(err)
		}
		h.add(f, failAt)
		s = h.state()
		decision, err := s.DecideRetry(policy)
		if err != nil {
			t.Fatal(err)
		}
		// Deciding again on the same state decides the same.
		again, _ := s.DecideRetry(policy)
		if again != decision {
			t.Errorf("attempt %d: two decisions on one state differ: %+v, %+v", attempt, decision, again)
		}
		switch d := decision.(type) {
		case pin.RetryScheduled:
			if attempt >= policy.MaxAttempts {
				t.Fatalf("attempt %d of %d: retry scheduled, want the dead letter", attempt, policy.MaxAttempts)
			}
			base := min(time.Minute<<(attempt-1), 3*time.Minute)
			wait := d.NotBefore.Sub(failAt)
			if d.Failures != attempt || wait < time.Duration(0.8*float64(base)) || wait > time.Duration(1.2*float64(base)) {
				t.Errorf("attempt %d: retry after %v with %d failures, want %v ±20%% and %d", attempt, wait, d.Failures, base, attempt)
			}
			h.add(d, failAt)
		case pin.DeadLettered:
			if attempt != policy.MaxAttempts || d.Failures != attempt || d.Reason != pin.ReasonSourcesFailed {
				t.Fatalf("attempt %d: dead letter %+v, want it after attempt %d for sources_failed", attempt, d, policy.MaxAttempts)
			}
			h.add(d, failAt)
			if s := h.state(); s.Status() != pin.StatusFailed || !s.Final() {
				t.Errorf("dead-lettered pin has status %s", s.Status())
			}
			return
		}
	}
}

func TestPermanentFailureGoesStraightToDeadLetter(t *testing.T) {
	s := newHistory(t).claimed().add(pin.Failed{Attempt: 1, Reason: pin.ReasonTooBig, Message: "over 31 GiB", Permanent: true}, t0).state()
	d, err := s.DecideRetry(pin.DefaultRetryPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if dl, ok := d.(pin.DeadLettered); !ok || dl.Reason != pin.ReasonTooBig || dl.Failures != 1 {
		t.Errorf("decision %#v, want DeadLettered for too_big after 1 failure", d)
	}
	if _, err := newHistory(t).claimed().state().DecideRetry(pin.DefaultRetryPolicy()); !errors.Is(err, pin.ErrNotFailed) {
		t.Errorf("decision on a running attempt: %v, want ErrNotFailed", err)
	}
}

func TestRequeueAndRemove(t *testing.T) {
	dead := newHistory(t).failed(true).add(pin.DeadLettered{Failures: 1, Reason: pin.ReasonTooBig}, t0)
	r, err := dead.state().Requeue(t0.Add(time.Hour))
	if err != nil || r.Failures != 0 || !r.Requeued || !r.NotBefore.Equal(t0.Add(time.Hour)) {
		t.Fatalf("requeue = %+v, %v", r, err)
	}
	s := dead.add(r, t0.Add(time.Hour)).state()
	if s.Status() != pin.StatusQueued || s.Failures != 0 || s.DeadLetter != nil {
		t.Errorf("requeued pin: status %s failures %d dead letter %v", s.Status(), s.Failures, s.DeadLetter)
	}
	if _, err := newHistory(t).claimed().state().Requeue(t0); !errors.Is(err, pin.ErrNotFailed) {
		t.Errorf("requeue of a running pin: %v, want ErrNotFailed", err)
	}

	h := newHistory(t).requested()
	next := uuid.New()
	rm, err := h.state().Remove(next)
	if err != nil || rm.ReplacedBy != next {
		t.Fatalf("remove = %+v, %v", rm, err)
	}
	s = h.add(rm, t0).state()
	if !s.Removed || s.ReplacedBy != next || !s.Final() {
		t.Errorf("removed pin: removed %v replaced by %s final %v", s.Removed, s.ReplacedBy, s.Final())
	}
	for name, err := range map[string]error{
		"remove again": func() error { _, err := s.Remove(uuid.Nil); return err }(),
		"requeue":      func() error { _, err := s.Requeue(t0); return err }(),
		"claim":        func() error { _, err := s.Claim("f", t0, lease); return err }(),
	} {
		if !errors.Is(err, pin.ErrRemoved) {
			t.Errorf("%s on a removed pin: %v, want ErrRemoved", name, err)
		}
	}
	if _, err := (pin.State{}).Remove(uuid.Nil); !errors.Is(err, pin.ErrNotFound) {
		t.Errorf("remove of an unknown pin: %v, want ErrNotFound", err)
	}
}

func TestStreamNames(t *testing.T) {
	id := uuid.New()
	if got, ok := pin.RequestIDOf(pin.Stream(id)); !ok || got != id {
		t.Errorf("RequestIDOf(Stream(%s)) = %s, %v", id, got, ok)
	}
	for _, s := range []string{"pin-", "token-" + id.String(), "pin-nope"} {
		if _, ok := pin.RequestIDOf(s); ok {
			t.Errorf("RequestIDOf(%q) found an id", s)
		}
	}
}

func TestRetryPolicyBound(t *testing.T) {
	p := pin.DefaultRetryPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	// 30s, 1m, 2m, 4m between five attempts, each up to 20% longer.
	if got, want := p.MaxTotalDelay(), time.Duration(1.2*float64(7*time.Minute+30*time.Second)); got != want {
		t.Errorf("max total delay %v, want %v", got, want)
	}
	for _, bad := range []pin.RetryPolicy{
		{MaxAttempts: 0, BaseDelay: time.Second, MaxDelay: time.Second},
		{MaxAttempts: 1, BaseDelay: 0, MaxDelay: time.Second},
		{MaxAttempts: 1, BaseDelay: time.Minute, MaxDelay: time.Second},
		{MaxAttempts: 1, BaseDelay: time.Second, MaxDelay: time.Second, Jitter: 1},
	} {
		if bad.Validate() == nil {
			t.Errorf("policy %+v validated", bad)
		}
	}
}

func TestHandedBackWorkIsRetriedAtOnceAndCostsNoAttempt(t *testing.T) {
	h := newHistory(t).claimed()
	f, err := h.state().Fail("f1", 1, pin.ReasonHandedBack, "fetcher f1 is shutting down", false)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	s := h.add(f, at).state()
	if s.Failures != 0 || s.Status() != pin.StatusQueued {
		t.Fatalf("handed back: %d failures, status %s; want 0 and queued", s.Failures, s.Status())
	}
	d, err := s.DecideRetry(pin.RetryPolicy{MaxAttempts: 1, BaseDelay: time.Hour, MaxDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := d.(pin.RetryScheduled); !ok || !r.NotBefore.Equal(at) || r.Failures != 0 {
		t.Errorf("decision %#v, want a retry due at once (%v) with no failures, even with one attempt allowed", d, at)
	}
}

// What an attempt checkpointed is kept in the pin's state across its
// failure and the next claim, for that attempt to go on from; a later
// attempt's checkpoint takes its place, and the pin once pinned keeps
// nothing. A checkpoint past the bytes written is refused.
func TestKeptAcrossAttempts(t *testing.T) {
	h := newHistory(t).claimed()
	s := h.state()
	p, err := s.Progress(pin.FetchProgress{Fetcher: "f1", Attempt: 1, Bytes: 100 << 20, Blocks: 400, Checkpoint: 96 << 20}, t0, lease)
	if err != nil {
		t.Fatal(err)
	}
	h.add(p, t0.Add(time.Second))
	h.add(pin.Failed{Attempt: 1, Reason: pin.ReasonLeaseExpired, Message: "lease ran out"}, t0.Add(time.Minute))
	h.add(pin.FetchStarted{Attempt: 2, Fetcher: "f2", LeaseUntil: t0.Add(2 * time.Minute)}, t0.Add(time.Minute))
	if got := h.state().Kept; got != (pin.Kept{Attempt: 1, Bytes: 96 << 20}) {
		t.Fatalf("attempt 2 sees %+v kept, want attempt 1's 96 MiB", got)
	}
	if _, err := h.state().Progress(pin.FetchProgress{Fetcher: "f2", Attempt: 2, Bytes: 10, Blocks: 1, Checkpoint: 11}, t0, lease); !errors.Is(err, pin.ErrInvalid) {
		t.Errorf("a checkpoint past the bytes written: %v, want ErrInvalid", err)
	}
	h.add(pin.FetchProgress{Fetcher: "f2", Attempt: 2, Bytes: 120 << 20, Blocks: 480, Checkpoint: 112 << 20, ResumedFrom: 96 << 20, LeaseUntil: t0.Add(3 * time.Minute)}, t0.Add(90*time.Second))
	if got := h.state().Kept; got != (pin.Kept{Attempt: 2, Bytes: 112 << 20}) {
		t.Fatalf("after attempt 2's checkpoint %+v is kept, want attempt 2's 112 MiB", got)
	}
	h.add(pin.CarUploaded{Attempt: 2, Fetcher: "f2", Key: "k", Bytes: 200 << 20, Blocks: 800, CarCID: "bagboeaaa", ResumedFrom: 96 << 20}, t0.Add(2*time.Minute))
	h.add(pin.CarValidated{Attempt: 2, Key: "c", Bytes: 200 << 20, CarCID: "bagboeaaa"}, t0.Add(2*time.Minute))
	if got := h.state().Kept; got != (pin.Kept{}) {
		t.Errorf("a pinned pin keeps %+v", got)
	}
}
