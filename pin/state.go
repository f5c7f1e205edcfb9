package pin

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
)

// Phase is where a pin is in its life.
type Phase string

const (
	// PhaseNone: no request yet.
	PhaseNone Phase = ""
	// PhaseQueued: waiting for a fetcher (new, or a retry scheduled).
	PhaseQueued Phase = "queued"
	// PhaseFetching: an attempt holds the claim and is fetching.
	PhaseFetching Phase = "fetching"
	// PhaseUploaded: the attempt's CAR is staged, awaiting validation.
	PhaseUploaded Phase = "uploaded"
	// PhaseFailed: an attempt failed; the retry decider has not spoken yet.
	PhaseFailed Phase = "failed"
	// PhasePinned: the CAR is validated and in the carpark. Final.
	PhasePinned Phase = "pinned"
	// PhaseDeadLettered: no more attempts. Final, unless requeued.
	PhaseDeadLettered Phase = "dead_lettered"
)

// Status is a pin's status as the IPFS Pinning Service API reports it: the
// API's own vocabulary (package api), which the domain maps its phases to.
type Status = api.Status

// The API's statuses, under the domain's names.
const (
	StatusQueued  = api.StatusQueued
	StatusPinning = api.StatusPinning
	StatusPinned  = api.StatusPinned
	StatusFailed  = api.StatusFailed
)

// Statuses returns the API's statuses in their usual order.
func Statuses() []Status { return api.AllStatuses() }

// ParseStatus returns the status named s.
func ParseStatus(s string) (Status, error) {
	if slices.Contains(Statuses(), Status(s)) {
		return Status(s), nil
	}
	return "", fmt.Errorf("%w: unknown status %q (want queued, pinning, pinned or failed)", ErrInvalid, s)
}

// Failure is the last failure of a pin's attempts.
type Failure struct {
	Attempt   int       `json:"attempt"`
	Reason    Reason    `json:"reason"`
	Message   string    `json:"message"`
	Permanent bool      `json:"permanent"`
	At        time.Time `json:"at"`
	// EventID is the id of the PinFailed event, the cause of the decision
	// that follows it.
	EventID uuid.UUID `json:"event_id"`
}

// State is what a pin's events add up to.
type State struct {
	// Exists is false until the request; Revision is then the revision of
	// the last event folded, what the next append expects.
	Exists   bool
	Revision uint64
	// LastEventID is the id of the last event folded.
	LastEventID uuid.UUID

	Request Requested
	Phase   Phase
	Removed bool
	// ReplacedBy is set when the pin was removed by a replacement.
	ReplacedBy uuid.UUID
	// QueuedSince is when the pin last entered PhaseQueued.
	QueuedSince time.Time
	// NotBefore is when a scheduled retry may start.
	NotBefore time.Time

	// Attempt is the number of the current or last attempt, 0 before the
	// first claim. Failures counts failed attempts since the request (or
	// since a requeue).
	Attempt  int
	Failures int

	// The current attempt's claim and progress.
	Fetcher    string
	LeaseUntil time.Time
	Bytes      int64
	Blocks     int64
	Source     string
	// FetchStartedAt is when the current attempt was claimed; BlockBytes
	// and ExpectedBytes are its blocks' bytes so far and the DAG's size as
	// its root declares it (FetchProgress), for Completion.
	FetchStartedAt time.Time
	BlockBytes     int64
	ExpectedBytes  int64
	// Kept is the CAR the latest checkpointing attempt left stored for
	// good, for a later attempt to go on from (FetchProgress.Checkpoint):
	// kept until the pin is pinned or over.
	Kept Kept

	// Staged is the current attempt's uploaded CAR; Car is the validated CAR
	// in the carpark, once pinned.
	Staged CarUploaded
	Car    CarValidated

	// LastFailure is the most recent failure, if any.
	LastFailure *Failure
	// DeadLetter says why the pin failed for good.
	DeadLetter *DeadLettered
	// UpdatedAt is the time of the last event.
	UpdatedAt time.Time
}

// Kept is a CAR an attempt checkpointed: its number and the CAR bytes
// kept. The zero Kept is none.
type Kept struct {
	Attempt int
	Bytes   int64
}

// Status returns the pin's status for the Pinning Service API. A failure
// waiting for the retry decider shows as queued when it will be retried, and
// as failed when it is permanent.
func (s State) Status() Status {
	switch s.Phase {
	case PhaseFetching, PhaseUploaded:
		return StatusPinning
	case PhasePinned:
		return StatusPinned
	case PhaseDeadLettered:
		return StatusFailed
	case PhaseFailed:
		if s.LastFailure != nil && s.LastFailure.Permanent {
			return StatusFailed
		}
	}
	return StatusQueued
}

// ClusterStatus returns the pin's status as ipfs-cluster names it.
func (s State) ClusterStatus() string {
	if s.Removed {
		return "unpinned"
	}
	switch s.Status() {
	case StatusPinning:
		return "pinning"
	case StatusPinned:
		return "pinned"
	case StatusFailed:
		return "pin_error"
	}
	return "pin_queued"
}

// Fold returns the state of a pin from its events, in order.
func Fold(events []Recorded) State {
	var s State
	for _, e := range events {
		s = s.Apply(e)
	}
	return s
}

// Apply returns the state after one more event. Events are facts: Apply
// records them whatever the state.
func (s State) Apply(e Recorded) State {
	s = s.With(e.Payload, e.At)
	s.Exists, s.Revision, s.LastEventID = true, e.Revision, e.ID
	if _, ok := e.Payload.(Failed); ok {
		s.LastFailure.EventID = e.ID
	}
	return s
}

// With returns the state after a payload recorded at time at. It is Apply
// without the envelope, for deciders that want the state a decision leads to.
func (s State) With(p Payload, at time.Time) State {
	s.UpdatedAt = at
	switch p := p.(type) {
	case Requested:
		p.Origins = slices.Clone(p.Origins)
		p.Meta = maps.Clone(p.Meta)
		s.Request = p
		s.Phase = PhaseQueued
		s.QueuedSince = at
	case FetchStarted:
		s.Phase = PhaseFetching
		s.Attempt = p.Attempt
		s.Fetcher = p.Fetcher
		s.LeaseUntil = p.LeaseUntil
		s.Bytes, s.Blocks, s.Source = 0, 0, ""
		s.FetchStartedAt, s.BlockBytes, s.ExpectedBytes = at, 0, 0
		s.Staged = CarUploaded{}
	case FetchProgress:
		s.LeaseUntil = p.LeaseUntil
		s.Bytes, s.Blocks, s.Source = p.Bytes, p.Blocks, p.Source
		s.BlockBytes = p.BlockBytes
		// Every try of the attempt fetches the same root: a report made
		// before a try knew it (or before reports carried it) does not
		// unsay it.
		if p.ExpectedBytes > 0 {
			s.ExpectedBytes = p.ExpectedBytes
		}
		if p.Checkpoint > 0 {
			s.Kept = Kept{Attempt: p.Attempt, Bytes: p.Checkpoint}
		}
	case CarUploaded:
		s.Phase = PhaseUploaded
		s.Staged = p
		s.Bytes, s.Blocks, s.Source = p.Bytes, p.Blocks, p.Source
		if p.ExpectedBytes > 0 {
			s.ExpectedBytes = p.ExpectedBytes
		}
	case CarValidated:
		s.Phase = PhasePinned
		s.Car = p
		s.Kept = Kept{}
		s.Fetcher, s.LeaseUntil = "", time.Time{}
	case Failed:
		s.Phase = PhaseFailed
		s.Attempt = max(s.Attempt, p.Attempt)
		if p.Reason.Counts() {
			s.Failures++
		}
		s.LastFailure = &Failure{Attempt: p.Attempt, Reason: p.Reason, Message: p.Message, Permanent: p.Permanent, At: at}
		s.Fetcher, s.LeaseUntil = "", time.Time{}
	case RetryScheduled:
		s.Phase = PhaseQueued
		s.Failures = p.Failures
		s.NotBefore = p.NotBefore
		s.QueuedSince = at
		s.DeadLetter = nil
	case DeadLettered:
		s.Phase = PhaseDeadLettered
		s.DeadLetter = &p
	case Removed:
		s.Removed = true
		s.ReplacedBy = p.ReplacedBy
	}
	return s
}

// Claimed reports whether an attempt holds the pin. A removed pin is held by
// no one: its fetcher's next step is refused.
func (s State) Claimed() bool {
	return !s.Removed && (s.Phase == PhaseFetching || s.Phase == PhaseUploaded)
}

// Final reports whether nothing more will happen to the pin on its own.
func (s State) Final() bool {
	return s.Removed || s.Phase == PhasePinned || s.Phase == PhaseDeadLettered
}

// Check reports a state that no sequence of decisions should reach.
func (s State) Check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("pin %s in phase %q: "+format, append([]any{s.Request.RequestID, s.Phase}, args...)...)
	}
	if !s.Exists {
		if s.Phase != PhaseNone {
			return bad("not requested but in a phase")
		}
		return nil
	}
	switch {
	case !slices.Contains([]Phase{PhaseQueued, PhaseFetching, PhaseUploaded, PhaseFailed, PhasePinned, PhaseDeadLettered}, s.Phase):
		return bad("unknown phase")
	case s.Claimed() && (s.Fetcher == "" || s.Attempt < 1 || s.LeaseUntil.IsZero()):
		return bad("claimed without a fetcher, attempt or lease")
	case s.Phase == PhaseUploaded && (s.Staged.Key == "" || s.Staged.CarCID == ""):
		return bad("uploaded without a staged CAR")
	case s.Phase == PhasePinned && (s.Car.Key == "" || s.Car.CarCID == ""):
		return bad("pinned without a CAR")
	case s.Phase == PhaseFailed && s.LastFailure == nil:
		return bad("failed without a failure")
	case s.Phase == PhaseDeadLettered && s.DeadLetter == nil:
		return bad("dead-lettered without a reason")
	case s.Failures < 0 || s.Attempt < 0:
		return bad("negative count")
	case s.Request.RequestID == uuid.Nil || s.Request.CID == "" || s.Request.Tenant == "":
		return bad("request without id, cid or tenant")
	case !slices.Contains(Statuses(), s.Status()):
		return bad("status %q", s.Status())
	}
	return nil
}

// Completion is how far a pin's fetch has come towards the DAG's size as
// its root declares it (State.ExpectedBytes).
type Completion struct {
	// Expected is the declared size, the blocks' bytes without the CAR's
	// framing; 0 when the root declared none (a raw, dag-cbor or dag-json
	// root, or a pin completed from the carpark), and then nothing else
	// is said.
	Expected int64
	// Percent is the share of Expected fetched, rounded down to a tenth
	// and at most 100 (a DAG may be bigger than its root declares); 100
	// once the fetch is over (the CAR staged, or pinned).
	Percent float64
	// Left is how long the rest should take at the attempt's rate so far:
	// its blocks' bytes over the time from its claim to its last report.
	// LeftKnown is false until 1% of Expected is fetched (before, the
	// rate is mostly the wait for the root: 700 bytes in a second made
	// a 3 MiB DAG "36 minutes" from done); Left is 0 once over.
	Left      time.Duration
	LeftKnown bool
}

// Completion returns how far the current attempt's fetch has come, while
// it fetches and once it has fetched; the zero Completion otherwise, and
// when the root declared no size. It reads only the state, never the
// clock: the rate is the one of the attempt's last report.
func (s State) Completion() Completion {
	if s.ExpectedBytes <= 0 {
		return Completion{}
	}
	c := Completion{Expected: s.ExpectedBytes}
	switch s.Phase {
	case PhaseUploaded, PhasePinned:
		c.Percent, c.LeftKnown = 100, true
		return c
	case PhaseFetching:
	default:
		return Completion{}
	}
	done := min(s.BlockBytes, c.Expected)
	// In whole tenths, exactly: a float division may land a hair under
	// a tenth it reaches (29.9999 for 30).
	if done <= math.MaxInt64/1000 {
		c.Percent = float64(done*1000/c.Expected) / 10
	} else {
		c.Percent = math.Floor(float64(done)*1000/float64(c.Expected)) / 10
	}
	if elapsed := s.UpdatedAt.Sub(s.FetchStartedAt); s.BlockBytes > 0 && s.BlockBytes >= c.Expected/100 && elapsed > 0 && !s.FetchStartedAt.IsZero() {
		c.Left = time.Duration(float64(elapsed) * float64(c.Expected-done) / float64(s.BlockBytes))
		c.LeftKnown = true
	}
	return c
}
