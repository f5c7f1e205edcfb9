package pin_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/pin"
)

// Completion follows the attempt's reports towards the size its root
// declared, at the rate from the claim to the last report.
func TestCompletion(t *testing.T) {
	progress := func(h *history, blockBytes, expected int64, after time.Duration) *history {
		return h.add(pin.FetchProgress{Attempt: 1, Fetcher: "f1", Bytes: blockBytes + 100, Blocks: 3, BlockBytes: blockBytes, ExpectedBytes: expected, LeaseUntil: t0.Add(lease)}, t0.Add(after))
	}
	for name, c := range map[string]struct {
		h    *history
		want pin.Completion
	}{
		"claimed, nothing known":       {newHistory(t).claimed(), pin.Completion{}},
		"a root that declares no size": {progress(newHistory(t).claimed(), 5000, 0, time.Second), pin.Completion{}},
		"a quarter in 10s": {progress(newHistory(t).claimed(), 250, 1000, 10*time.Second),
			pin.Completion{Expected: 1000, Percent: 25, Left: 30 * time.Second, LeftKnown: true}},
		"rounded down to a tenth": {progress(newHistory(t).claimed(), 2999, 3000, 10*time.Second),
			pin.Completion{Expected: 3000, Percent: 99.9, Left: 10 * time.Second / 2999, LeftKnown: true}},
		"a tenth reached exactly": {progress(newHistory(t).claimed(), 3, 10, 10*time.Second),
			pin.Completion{Expected: 10, Percent: 30, Left: 10 * time.Second * 7 / 3, LeftKnown: true}},
		"the size known, no bytes yet": {progress(newHistory(t).claimed(), 0, 1000, time.Second),
			pin.Completion{Expected: 1000}},
		"under 1%: no rate yet": {progress(newHistory(t).claimed(), 9, 1000, time.Second),
			pin.Completion{Expected: 1000, Percent: 0.9}},
		"1%: a rate": {progress(newHistory(t).claimed(), 10, 1000, time.Second),
			pin.Completion{Expected: 1000, Percent: 1, Left: 99 * time.Second, LeftKnown: true}},
		"later reports keep the size": {progress(progress(newHistory(t).claimed(), 100, 1000, time.Second), 500, 0, 4*time.Second),
			pin.Completion{Expected: 1000, Percent: 50, Left: 4 * time.Second, LeftKnown: true}},
		"a DAG bigger than declared stops at 100": {progress(newHistory(t).claimed(), 1500, 1000, time.Second),
			pin.Completion{Expected: 1000, Percent: 100, LeftKnown: true}},
		"staged": {progress(newHistory(t).claimed(), 10, 1000, time.Second).add(
			pin.CarUploaded{Attempt: 1, Fetcher: "f1", Key: "k", Bytes: 1100, Blocks: 3, CarCID: "bagboeaaa"}, t0.Add(2*time.Second)),
			pin.Completion{Expected: 1000, Percent: 100, LeftKnown: true}},
		"staged by a fetch too quick to report": {newHistory(t).claimed().add(
			pin.CarUploaded{Attempt: 1, Fetcher: "f1", Key: "k", Bytes: 1100, Blocks: 3, CarCID: "bagboeaaa", ExpectedBytes: 1000}, t0.Add(time.Second)),
			pin.Completion{Expected: 1000, Percent: 100, LeftKnown: true}},
		"pinned": {progress(newHistory(t).claimed(), 10, 1000, time.Second).add(
			pin.CarUploaded{Attempt: 1, Fetcher: "f1", Key: "k", Bytes: 1100, Blocks: 3, CarCID: "bagboeaaa"}, t0.Add(2*time.Second)).add(
			pin.CarValidated{Attempt: 1, Key: "c", Bytes: 1100, CarCID: "bagboeaaa"}, t0.Add(3*time.Second)),
			pin.Completion{Expected: 1000, Percent: 100, LeftKnown: true}},
		"failed": {progress(newHistory(t).claimed(), 10, 1000, time.Second).add(
			pin.Failed{Attempt: 1, Reason: pin.ReasonStalled, Message: "m"}, t0.Add(2*time.Second)), pin.Completion{}},
		"a new attempt starts over": {progress(newHistory(t).claimed(), 10, 1000, time.Second).add(
			pin.Failed{Attempt: 1, Reason: pin.ReasonStalled, Message: "m"}, t0.Add(2*time.Second)).add(
			pin.RetryScheduled{Failures: 1, NotBefore: t0}, t0.Add(3*time.Second)).add(
			pin.FetchStarted{Attempt: 2, Fetcher: "f2", LeaseUntil: t0.Add(time.Hour)}, t0.Add(4*time.Second)), pin.Completion{}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := c.h.state().Completion(); got != c.want {
				t.Errorf("completion %+v, want %+v", got, c.want)
			}
		})
	}
}

// A report's sizes are checked like its counts.
func TestProgressRefusesImpossibleSizes(t *testing.T) {
	s := newHistory(t).claimed().state()
	for name, p := range map[string]pin.FetchProgress{
		"more block bytes than CAR bytes": {Bytes: 10, BlockBytes: 11},
		"negative block bytes":            {Bytes: 10, BlockBytes: -1},
		"negative declared size":          {Bytes: 10, ExpectedBytes: -1},
	} {
		p.Fetcher, p.Attempt = "f1", 1
		if _, err := s.Progress(p, t0, lease); !errors.Is(err, pin.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	got, err := s.Progress(pin.FetchProgress{Fetcher: "f1", Attempt: 1, Bytes: 10, BlockBytes: 8, ExpectedBytes: 100, LeaseUntil: t0.Add(time.Hour)}, t0, lease)
	if err != nil || got.BlockBytes != 8 || got.ExpectedBytes != 100 || !got.LeaseUntil.Equal(t0.Add(lease)) {
		t.Errorf("progress %+v, %v; want the sizes kept and the lease until %v", got, err, t0.Add(lease))
	}
	if _, err := newHistory(t).claimed().state().Upload(pin.CarUploaded{Attempt: 1, Fetcher: "f1", Key: "k", Bytes: 10, Blocks: 1, CarCID: "b", ExpectedBytes: -1}); !errors.Is(err, pin.ErrInvalid) {
		t.Errorf("upload with a negative declared size: %v, want ErrInvalid", err)
	}
}
