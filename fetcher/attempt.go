package fetcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// attempt is one claimed attempt at a pin: the pin's state as this worker
// last wrote or read it, and the appends that move it on. Appends are
// serialized, because the progress reporter and the attempt's own steps
// both write.
type attempt struct {
	pool   *Pool
	id     uuid.UUID
	logger *slog.Logger

	// number is the attempt's number, as claimed: the state may move on to
	// a later attempt, another fetcher's, once the claim is lost.
	number int

	mu    sync.Mutex
	state pin.State
	// outcome and reason are how the attempt ended, for the metrics; set
	// by the step that ended it.
	outcome, reason string
}

// Outcomes of an attempt, as Metrics.Ended is told them.
const (
	// OutcomePinned: the CAR is in the carpark and CarValidated recorded.
	OutcomePinned = "pinned"
	// OutcomeFailed: PinFailed recorded, with its reason.
	OutcomeFailed = "failed"
	// OutcomeClaimLost: the claim went (lease expired, pin removed) before
	// the attempt could record its end; someone else decides.
	OutcomeClaimLost = "claim_lost"
	// OutcomeError: the attempt ended and could not record why (the log
	// unreachable); its lease runs out and the watchdog decides.
	OutcomeError = "error"
)

// Reasons of a pinned attempt: fetched from IPFS, or completed from a CAR
// already in the carpark.
const (
	ReasonFetched = "fetched"
	ReasonCarpark = "carpark"
)

// errClaimLost marks an attempt stopped because an append showed that its
// claim is gone: nothing more may be written for it.
var errClaimLost = errors.New("claim lost")

// attempt claims the pin and runs the attempt, or does nothing if the pin is
// not claimable (taken, not due, final, removed).
func (p *Pool) attempt(ctx context.Context, id uuid.UUID) {
	defer p.release(id)
	// Every line about this pin names it: the pool's own through the
	// attempt's logger, the stores' and the DAG fetcher's through ctx.
	ctx = telemetry.WithPinRequestID(ctx, id.String())
	a := &attempt{pool: p, id: id, logger: p.logger.With(telemetry.PinRequestIDKey, id.String())}
	if err := a.reload(ctx); err != nil {
		a.logger.WarnContext(ctx, "reading pin", "err", err)
		return
	}
	now := time.Now()
	err := a.commit(ctx, func(s pin.State) (pin.Payload, error) { return s.Claim(p.cfg.Name, now, p.cfg.Lease) })
	if err != nil {
		if !isRefusal(err) {
			a.logger.WarnContext(ctx, "claiming pin", "err", err)
		}
		return
	}
	a.number = a.current().Attempt
	a.logger.InfoContext(ctx, "claimed", "attempt", a.number, "cid", a.current().Request.CID)
	p.claims.Add(1)
	p.metrics.Started()
	p.protect(ctx, +1)
	defer p.protect(ctx, -1)
	defer func() {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}()

	err = p.work.run(ctx, a)
	switch {
	case err == nil, errors.Is(err, errClaimLost):
	case errors.Is(context.Cause(ctx), ErrShuttingDown):
		// Hand the work back; a context that is not done, since ctx is.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		a.fail(hctx, pin.ReasonHandedBack, fmt.Sprintf("%s stopped before finishing", p.cfg.Name), false)
	default:
		a.logger.WarnContext(ctx, "attempt ended with an error nothing recorded", "err", err)
	}
	outcome, reason := a.result(err)
	p.metrics.Ended(outcome, reason, time.Since(now))
	// Every way the attempt ended comes here: what it and earlier attempts
	// left in staging goes now, not when the next attempt begins, which a
	// pin final by now never has.
	p.work.end(ctx, a)
}

// protect counts attempts in flight and keeps the process protected from
// scale-in while there are any.
func (p *Pool) protect(ctx context.Context, delta int) {
	if p.protector == nil {
		return
	}
	p.mu.Lock()
	p.claimed += delta
	on, change := p.claimed > 0, (delta > 0 && p.claimed == 1) || (delta < 0 && p.claimed == 0)
	p.mu.Unlock()
	if !change {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := p.protector.Protect(pctx, on); err != nil {
		p.logger.WarnContext(pctx, "setting scale-in protection", "on", on, "err", err)
	}
}

func isRefusal(err error) bool {
	for _, r := range []error{pin.ErrClaimed, pin.ErrNotDue, pin.ErrFinal, pin.ErrRemoved, pin.ErrNotFound, pin.ErrLeaseLost, pin.ErrNotUploaded} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// ended records how the attempt ended; the first word stands.
func (a *attempt) ended(outcome, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.outcome == "" {
		a.outcome, a.reason = outcome, reason
	}
}

// result is how the attempt ended, given what its run returned: what a
// step recorded, or else what the error says.
func (a *attempt) result(err error) (outcome, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.outcome != "":
		return a.outcome, a.reason
	case errors.Is(err, errClaimLost):
		return OutcomeClaimLost, ""
	}
	return OutcomeError, ""
}

// current returns the pin's state as last seen.
func (a *attempt) current() pin.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// reload reads the pin's stream again.
func (a *attempt) reload(ctx context.Context) error {
	s, _, err := a.pool.pins.Read(ctx, a.id)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state = s
	return nil
}

// commit decides on the pin's state as this attempt last saw it, and
// commits the decision through the write path, which appends it at the
// revision it was decided on. When someone else wrote first, the write
// path reads the pin again and decides again: the decision then usually
// refuses (the claim is gone), and the refusal is returned.
func (a *attempt) commit(ctx context.Context, decide func(pin.State) (pin.Payload, error)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.pool.pins.Commit(ctx, pinlog.Commit{RequestID: a.id, Actor: a.pool.cfg.Name, From: &a.state,
		Decide: func(s pin.State) (pinlog.Decision, error) {
			p, err := decide(s)
			return pinlog.Decision{Payload: p}, err
		}})
	a.state = c.State
	if c.Appended != nil {
		a.pool.wrote(c.Position)
	}
	return err
}

// fail records the attempt's failure, if the attempt still holds its claim.
func (a *attempt) fail(ctx context.Context, reason pin.Reason, message string, permanent bool) {
	attempt := a.current().Attempt
	err := a.commit(ctx, func(s pin.State) (pin.Payload, error) {
		return s.Fail(a.pool.cfg.Name, attempt, reason, message, permanent)
	})
	switch {
	case err == nil:
		a.ended(OutcomeFailed, string(reason))
		a.logger.InfoContext(ctx, "attempt failed", "attempt", attempt, "reason", reason, "message", message)
	case isRefusal(err):
		a.ended(OutcomeClaimLost, "")
		a.logger.InfoContext(ctx, "attempt failed after its claim was gone", "attempt", attempt, "reason", reason)
	default:
		a.ended(OutcomeError, string(reason))
		a.logger.WarnContext(ctx, "recording failure", "attempt", attempt, "reason", reason, "err", err)
	}
}
