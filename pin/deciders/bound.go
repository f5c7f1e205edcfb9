package deciders

import (
	"time"

	"github.com/pickup-ipfs/pickup/pin"
)

// BoundConfig is the configuration that bounds how long a pin can take.
type BoundConfig struct {
	Policy pin.RetryPolicy
	// QueueTimeout (PICKUP_QUEUE_TIMEOUT), FetchTimeout
	// (PICKUP_FETCH_TIMEOUT), Lease (PICKUP_LEASE).
	QueueTimeout time.Duration
	FetchTimeout time.Duration
	Lease        time.Duration
	// WatchdogPeriod and DeciderPeriod are the actors' periods.
	WatchdogPeriod time.Duration
	DeciderPeriod  time.Duration
}

// DefaultBoundConfig returns the configuration with every default.
func DefaultBoundConfig() BoundConfig {
	return BoundConfig{
		Policy:         pin.DefaultRetryPolicy(),
		QueueTimeout:   DefaultQueueTimeout,
		FetchTimeout:   4 * time.Hour,
		Lease:          30 * time.Second,
		WatchdogPeriod: DefaultWatchdogPeriod,
		DeciderPeriod:  DefaultDeciderPeriod,
	}
}

// AttemptBound is the longest one attempt can take, from the moment the pin
// is due until its failure is decided on. In the worst case a fetcher claims
// the pin just before the watchdog's first pass after the queue timeout
// (QueueTimeout + WatchdogPeriod), renews its lease until the fetch timeout,
// and vanishes (FetchTimeout + Lease); the watchdog's next pass fails it
// (WatchdogPeriod) and the decider's next pass decides (DeciderPeriod).
func (c BoundConfig) AttemptBound() time.Duration {
	return c.QueueTimeout + c.WatchdogPeriod + c.FetchTimeout + c.Lease + c.WatchdogPeriod + c.DeciderPeriod
}

// Bound is the longest a pin can take from its request to pinned or failed
// (dead-lettered) while the watchdog and the decider run: every attempt
// takes at most AttemptBound, and between attempts the retry policy waits
// at most MaxTotalDelay in all.
//
// It assumes fetchers stop at their fetch timeout, and it does not count
// attempts handed back by stopping fetchers (reason handed_back spends no
// attempt), a tenant's requeue of a failed pin (which starts a new count),
// or the views' lag behind the log (milliseconds while the projector runs).
func (c BoundConfig) Bound() time.Duration {
	return time.Duration(c.Policy.MaxAttempts)*c.AttemptBound() + c.Policy.MaxTotalDelay()
}
