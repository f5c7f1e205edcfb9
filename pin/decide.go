package pin

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
)

// Limits on what a request may carry; the gateway enforces the same ones
// with precise messages, these keep the log sound whoever writes to it.
const (
	MaxNameLength = 255
	MaxOrigins    = 20
)

// Request decides on a new pin request. The stream must not exist yet.
func Request(s State, r Requested) (Requested, error) {
	switch {
	case s.Exists:
		return r, fmt.Errorf("request %s: %w", r.RequestID, ErrExists)
	case r.RequestID == uuid.Nil:
		return r, fmt.Errorf("request: %w: no request id", ErrInvalid)
	case r.Tenant == "":
		return r, fmt.Errorf("request %s: %w: no tenant", r.RequestID, ErrInvalid)
	case r.CID == "":
		return r, fmt.Errorf("request %s: %w: no cid", r.RequestID, ErrInvalid)
	case len([]rune(r.Name)) > MaxNameLength:
		return r, fmt.Errorf("request %s: %w: name longer than %d characters", r.RequestID, ErrInvalid, MaxNameLength)
	case len(r.Origins) > MaxOrigins:
		return r, fmt.Errorf("request %s: %w: %d origins, at most %d", r.RequestID, ErrInvalid, len(r.Origins), MaxOrigins)
	case r.Created.IsZero():
		return r, fmt.Errorf("request %s: %w: no creation time", r.RequestID, ErrInvalid)
	case r.Replaces == r.RequestID:
		return r, fmt.Errorf("request %s: %w: a request cannot replace itself", r.RequestID, ErrInvalid)
	}
	return r, nil
}

// live refuses decisions on pins that are gone or never were.
func (s State) live(op string) error {
	switch {
	case !s.Exists:
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case s.Removed:
		return fmt.Errorf("%s %s: %w", op, s.Request.RequestID, ErrRemoved)
	}
	return nil
}

// Claim decides on a fetcher's claim of the pin's next attempt, holding a
// lease until now+lease.
func (s State) Claim(fetcher string, now time.Time, lease time.Duration) (FetchStarted, error) {
	if err := s.live("claim"); err != nil {
		return FetchStarted{}, err
	}
	op := "claim " + s.Request.RequestID.String()
	switch {
	case fetcher == "" || lease <= 0:
		return FetchStarted{}, fmt.Errorf("%s: %w: claims need a fetcher and a lease", op, ErrInvalid)
	case s.Final():
		return FetchStarted{}, fmt.Errorf("%s: %w", op, ErrFinal)
	case s.Claimed():
		return FetchStarted{}, fmt.Errorf("%s: %w (attempt %d by %s)", op, ErrClaimed, s.Attempt, s.Fetcher)
	case s.Phase == PhaseFailed:
		return FetchStarted{}, fmt.Errorf("%s: %w: the last failure awaits the retry decision", op, ErrNotDue)
	case now.Before(s.NotBefore):
		return FetchStarted{}, fmt.Errorf("%s: %w: not before %s", op, ErrNotDue, s.NotBefore.Format(time.RFC3339))
	}
	return FetchStarted{Attempt: s.Attempt + 1, Fetcher: fetcher, LeaseUntil: now.Add(lease)}, nil
}

// holds refuses a step of an attempt that is no longer the pin's current
// claim. An empty fetcher stands for a step that any process may take for
// the attempt (validation, failure reports).
func (s State) holds(op, fetcher string, attempt int, phases ...Phase) error {
	if err := s.live(op); err != nil {
		return err
	}
	current := false
	for _, p := range phases {
		current = current || s.Phase == p
	}
	if !current || s.Attempt != attempt || (fetcher != "" && s.Fetcher != fetcher) {
		return fmt.Errorf("%s %s: %w: attempt %d by %q, pin is %s in attempt %d by %q",
			op, s.Request.RequestID, ErrLeaseLost, attempt, fetcher, s.Phase, s.Attempt, s.Fetcher)
	}
	return nil
}

// Progress decides on a progress report of the attempt (p's attempt,
// fetcher, counts and source), renewing its lease until now+lease.
func (s State) Progress(p FetchProgress, now time.Time, lease time.Duration) (FetchProgress, error) {
	if err := s.holds("progress", p.Fetcher, p.Attempt, PhaseFetching); err != nil {
		return FetchProgress{}, err
	}
	switch {
	case p.Bytes < 0 || p.Blocks < 0 || p.BlockBytes < 0 || p.ExpectedBytes < 0 || p.Checkpoint < 0 || p.ResumedFrom < 0 || lease <= 0:
		return FetchProgress{}, fmt.Errorf("progress %s: %w: negative counts or no lease", s.Request.RequestID, ErrInvalid)
	case p.Checkpoint > p.Bytes || p.ResumedFrom > p.Bytes:
		return FetchProgress{}, fmt.Errorf("progress %s: %w: %d bytes checkpointed, %d resumed from, of a CAR of %d bytes so far", s.Request.RequestID, ErrInvalid, p.Checkpoint, p.ResumedFrom, p.Bytes)
	case p.BlockBytes > p.Bytes:
		return FetchProgress{}, fmt.Errorf("progress %s: %w: %d bytes of blocks in a CAR of %d bytes", s.Request.RequestID, ErrInvalid, p.BlockBytes, p.Bytes)
	}
	p.LeaseUntil = now.Add(lease)
	return p, nil
}

// Upload decides on the attempt's CAR being staged.
func (s State) Upload(u CarUploaded) (CarUploaded, error) {
	if err := s.holds("upload", u.Fetcher, u.Attempt, PhaseFetching); err != nil {
		return u, err
	}
	if u.Fetcher == "" || u.Key == "" || u.CarCID == "" || u.Bytes <= 0 || u.Blocks <= 0 || u.ExpectedBytes < 0 {
		return u, fmt.Errorf("upload %s: %w: an upload needs its fetcher, key, CAR CID, bytes and blocks", s.Request.RequestID, ErrInvalid)
	}
	return u, nil
}

// Validate decides on the staged CAR being checked and in the carpark.
func (s State) Validate(v CarValidated) (CarValidated, error) {
	if err := s.holds("validate", "", v.Attempt, PhaseUploaded); err != nil {
		if s.Claimed() && s.Phase == PhaseFetching && s.Attempt == v.Attempt {
			err = fmt.Errorf("validate %s: %w", s.Request.RequestID, ErrNotUploaded)
		}
		return v, err
	}
	switch {
	case v.Key == "" || v.Reused:
		return v, fmt.Errorf("validate %s: %w: a validation needs the carpark key and is never a reuse", s.Request.RequestID, ErrInvalid)
	case v.CarCID != s.Staged.CarCID || v.Bytes != s.Staged.Bytes:
		return v, fmt.Errorf("validate %s: %w: CAR %s of %d bytes, but %s of %d bytes was staged",
			s.Request.RequestID, ErrInvalid, v.CarCID, v.Bytes, s.Staged.CarCID, s.Staged.Bytes)
	}
	return v, nil
}

// Reuse decides that the attempt is complete without fetching, because the
// root's CAR is already validated in the carpark.
func (s State) Reuse(fetcher string, v CarValidated) (CarValidated, error) {
	if err := s.holds("reuse", fetcher, v.Attempt, PhaseFetching); err != nil {
		return v, err
	}
	if fetcher == "" || v.Key == "" || v.CarCID == "" || v.Bytes <= 0 {
		return v, fmt.Errorf("reuse %s: %w: a reuse needs the fetcher, carpark key, CAR CID and size", s.Request.RequestID, ErrInvalid)
	}
	v.Reused = true
	return v, nil
}

// Fail decides on an attempt's failure, reported by its fetcher or by the
// validator (fetcher ""). A fetcher that stops before finishing hands its
// work back with ReasonHandedBack, which does not spend an attempt.
func (s State) Fail(fetcher string, attempt int, reason Reason, message string, permanent bool) (Failed, error) {
	if err := s.holds("fail", fetcher, attempt, PhaseFetching, PhaseUploaded); err != nil {
		return Failed{}, err
	}
	if reason == "" {
		return Failed{}, fmt.Errorf("fail %s: %w: no reason", s.Request.RequestID, ErrInvalid)
	}
	return Failed{Attempt: attempt, Reason: reason, Message: message, Permanent: permanent}, nil
}

// Expire is the watchdog's decision: an attempt whose lease ran out with no
// word fails with lease_expired, and a pin that no fetcher claimed within
// queueTimeout of becoming due fails with queue_timeout (both transient, so
// the retry decider takes over). queueTimeout 0 means pins may wait forever.
func (s State) Expire(now time.Time, queueTimeout time.Duration) (Failed, error) {
	if err := s.live("expire"); err != nil {
		return Failed{}, err
	}
	switch {
	case s.Claimed() && now.After(s.LeaseUntil):
		return Failed{
			Attempt: s.Attempt, Reason: ReasonLeaseExpired,
			Message: fmt.Sprintf("no word from %s since its lease ran out at %s", s.Fetcher, s.LeaseUntil.UTC().Format(time.RFC3339)),
		}, nil
	case s.Phase == PhaseQueued && queueTimeout > 0 && now.After(s.DueAt().Add(queueTimeout)):
		return Failed{
			Attempt: s.Attempt + 1, Reason: ReasonQueueTimeout,
			Message: fmt.Sprintf("no fetcher claimed it within %s of %s", queueTimeout, s.DueAt().UTC().Format(time.RFC3339)),
		}, nil
	}
	return Failed{}, fmt.Errorf("expire %s: %w", s.Request.RequestID, ErrNoDeadline)
}

// DueAt is when a queued pin became, or becomes, claimable: when it was
// queued, or its retry's time if that is later.
func (s State) DueAt() time.Time {
	if s.NotBefore.After(s.QueuedSince) {
		return s.NotBefore
	}
	return s.QueuedSince
}

// Deadline returns when the watchdog will next have something to decide on
// the pin, and false when there is nothing to wait for.
func (s State) Deadline(queueTimeout time.Duration) (time.Time, bool) {
	switch {
	case s.Removed:
		return time.Time{}, false
	case s.Claimed():
		return s.LeaseUntil, true
	case s.Phase == PhaseQueued && queueTimeout > 0:
		return s.DueAt().Add(queueTimeout), true
	}
	return time.Time{}, false
}

// RetryPolicy is how the retry decider treats failures.
type RetryPolicy struct {
	// MaxAttempts is how many attempts may fail before the pin fails for
	// good. Default 5.
	MaxAttempts int
	// BaseDelay is the wait after the first failure; each further failure
	// doubles it, up to MaxDelay. Defaults 30s and 1h.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Jitter spreads each wait by up to this fraction either way, so that
	// pins failing together do not retry together. Default 0.2.
	Jitter float64
}

// DefaultRetryPolicy returns the policy with every default.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, BaseDelay: 30 * time.Second, MaxDelay: time.Hour, Jitter: 0.2}
}

// Validate reports a policy that cannot work.
func (p RetryPolicy) Validate() error {
	switch {
	case p.MaxAttempts < 1:
		return fmt.Errorf("retry policy: max attempts %d, want at least 1", p.MaxAttempts)
	case p.BaseDelay <= 0 || p.MaxDelay < p.BaseDelay:
		return fmt.Errorf("retry policy: delays %v..%v, want 0 < base <= max", p.BaseDelay, p.MaxDelay)
	case p.Jitter < 0 || p.Jitter >= 1:
		return fmt.Errorf("retry policy: jitter %v, want 0 <= jitter < 1", p.Jitter)
	}
	return nil
}

// Delay returns the wait before the attempt after the given number of
// failures. The jitter comes from seed (the failure's event id), so that
// every decider, and every replay, computes the same wait.
func (p RetryPolicy) Delay(failures int, seed uuid.UUID) time.Duration {
	d := float64(p.BaseDelay) * math.Pow(2, float64(max(failures-1, 0)))
	d = min(d, float64(p.MaxDelay))
	u := float64(binary.BigEndian.Uint64(seed[8:])>>11) / (1 << 53) // uniform in [0, 1)
	return time.Duration(d * (1 + p.Jitter*(2*u-1)))
}

// MaxTotalDelay is the longest a pin can wait between its attempts in all.
func (p RetryPolicy) MaxTotalDelay() time.Duration {
	var total time.Duration
	for f := 1; f < p.MaxAttempts; f++ {
		total += time.Duration(float64(min(float64(p.BaseDelay)*math.Pow(2, float64(f-1)), float64(p.MaxDelay))) * (1 + p.Jitter))
	}
	return total
}

// DecideRetry is the retry decider's decision on a failed attempt: a retry
// after the policy's delay, or, for a permanent failure or when the attempts
// are spent, the dead letter. The result is a RetryScheduled or a
// DeadLettered.
func (s State) DecideRetry(p RetryPolicy) (Payload, error) {
	if err := s.live("decide retry"); err != nil {
		return nil, err
	}
	if s.Phase != PhaseFailed || s.LastFailure == nil {
		return nil, fmt.Errorf("decide retry %s: %w (pin is %s)", s.Request.RequestID, ErrNotFailed, s.Phase)
	}
	f := s.LastFailure
	switch {
	case !f.Reason.Counts():
		// Handed back: due again at once.
		return RetryScheduled{Failures: s.Failures, NotBefore: f.At}, nil
	case f.Permanent:
		return DeadLettered{Failures: s.Failures, Reason: f.Reason, Message: f.Message}, nil
	case s.Failures >= p.MaxAttempts:
		return DeadLettered{Failures: s.Failures, Reason: f.Reason,
			Message: fmt.Sprintf("%d attempts failed; the last: %s", s.Failures, f.Message)}, nil
	}
	return RetryScheduled{Failures: s.Failures, NotBefore: f.At.Add(p.Delay(s.Failures, f.EventID))}, nil
}

// Requeue decides on a tenant asking again for a pin that failed for good:
// it is queued at once with a fresh count of failures.
func (s State) Requeue(now time.Time) (RetryScheduled, error) {
	if err := s.live("requeue"); err != nil {
		return RetryScheduled{}, err
	}
	if s.Phase != PhaseDeadLettered {
		return RetryScheduled{}, fmt.Errorf("requeue %s: %w (pin is %s)", s.Request.RequestID, ErrNotFailed, s.Phase)
	}
	return RetryScheduled{Failures: 0, NotBefore: now, Requeued: true}, nil
}

// Remove decides on the tenant deleting the pin, or replacing it by the
// request replacedBy.
func (s State) Remove(replacedBy uuid.UUID) (Removed, error) {
	if err := s.live("remove"); err != nil {
		return Removed{}, err
	}
	if replacedBy == s.Request.RequestID {
		return Removed{}, fmt.Errorf("remove %s: %w: a pin cannot be replaced by itself", s.Request.RequestID, ErrInvalid)
	}
	return Removed{ReplacedBy: replacedBy}, nil
}
