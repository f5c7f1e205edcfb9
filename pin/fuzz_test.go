package pin_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/pin"
)

// FuzzDecisions drives a pin with an arbitrary sequence of commands, from
// any party, at arbitrary times. Whatever the sequence, every decision either
// is refused or leads to a state that passes Check, and the pin's life moves
// only forwards: attempts never go back, a final pin stays final, and the
// retry policy's limit holds.
func FuzzDecisions(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	// Claims (37 is command 1, forty seconds later), failures and retry
	// decisions, past the policy's limit.
	f.Add([]byte{0, 37, 5, 7, 37, 5, 7, 37, 5, 7, 37, 5, 7, 37, 5, 7})
	f.Add([]byte{0, 1, 2, 3, 4, 10, 11})
	f.Add([]byte{0, 6, 6, 6, 7, 1, 9, 1})
	f.Fuzz(runScript)
}

// TestRandomScripts runs the fuzz test's property over many random scripts
// in every test run, not only when fuzzing.
func TestRandomScripts(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		script := make([]byte, 1+rnd.IntN(60))
		for i := range script {
			script[i] = byte(rnd.UintN(256))
		}
		script[0] = 0 // start with the request, or little happens
		runScript(t, script)
		if t.Failed() {
			t.Fatalf("script %v", script)
		}
	}
}

var fetchers = []string{"f1", "f2"}

func runScript(t *testing.T, script []byte) {
	policy := pin.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: 4 * time.Second, Jitter: 0.5}
	h := newHistory(t)
	now := t0
	prev := h.state()
	for i, b := range script {
		now = now.Add(time.Duration(b>>4) * 20 * time.Second)
		s := h.state()
		fetcher := fetchers[int(b>>3)&1]
		var p pin.Payload
		var err error
		switch b % 12 {
		case 0:
			p, err = pin.Request(s, pin.Requested{RequestID: h.id, Tenant: "t", CID: "bafkqaaa", Created: now})
		case 1:
			p, err = s.Claim(fetcher, now, lease)
		case 2:
			// Every other report knows the root's declared size; the blocks'
			// bytes may pass it (a root that lies).
			var expected int64
			if b&4 != 0 {
				expected = int64(len(script))
			}
			p, err = s.Progress(pin.FetchProgress{Fetcher: fetcher, Attempt: s.Attempt, Bytes: int64(i), Blocks: int64(i), BlockBytes: int64(i) / 2, ExpectedBytes: expected, Source: "gateway"}, now, lease)
		case 3:
			p, err = s.Upload(pin.CarUploaded{Attempt: s.Attempt, Fetcher: fetcher, Key: "k", Bytes: 9, Blocks: 1, CarCID: "bagboeaaa"})
		case 4:
			p, err = s.Validate(pin.CarValidated{Attempt: s.Attempt, Key: "c", Bytes: s.Staged.Bytes, CarCID: s.Staged.CarCID})
		case 5:
			p, err = s.Fail(fetcher, s.Attempt, pin.ReasonStalled, "stalled", false)
		case 6:
			p, err = s.Fail("", s.Attempt, pin.ReasonTooBig, "too big", true)
		case 7:
			p, err = s.DecideRetry(policy)
		case 8:
			p, err = s.Expire(now, time.Minute)
		case 9:
			p, err = s.Requeue(now)
		case 10:
			p, err = s.Remove(uuid.Nil)
		case 11:
			p, err = s.Reuse(fetcher, pin.CarValidated{Attempt: s.Attempt, Key: "c", Bytes: 9, CarCID: "bagboeaaa"})
		}
		if err != nil {
			if errors.Is(err, pin.ErrInvalid) && b%12 != 6 {
				t.Fatalf("step %d: command %d refused as invalid: %v", i, b%12, err)
			}
			continue
		}
		next := h.add(p, now).state() // state() runs Check
		c := next.Completion()
		switch {
		case c.Percent < 0 || c.Percent > 100 || c.Left < 0 || (c.Expected == 0 && c != pin.Completion{}):
			t.Fatalf("step %d: completion %+v", i, c)
		case (next.Phase == pin.PhasePinned || next.Phase == pin.PhaseUploaded) && c.Expected > 0 && c.Percent != 100:
			t.Fatalf("step %d: %s at %v%%", i, next.Phase, c.Percent)
		case next.Attempt < prev.Attempt:
			t.Fatalf("step %d: attempt went back from %d to %d", i, prev.Attempt, next.Attempt)
		case prev.Removed:
			t.Fatalf("step %d: %s decided on a removed pin", i, p.EventType())
		case prev.Phase == pin.PhasePinned && !next.Removed:
			t.Fatalf("step %d: %s decided on a pinned pin", i, p.EventType())
		case next.Failures > policy.MaxAttempts:
			t.Fatalf("step %d: %d failures, the policy allows %d", i, next.Failures, policy.MaxAttempts)
		case next.Phase == pin.PhaseQueued && prev.Phase == pin.PhaseFailed && prev.LastFailure.Permanent:
			t.Fatalf("step %d: a permanent failure was retried", i)
		}
		prev = next
	}
}
