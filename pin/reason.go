package pin

import "errors"

// Reason is why an attempt failed, as a stable code that users, metrics and
// the retry decider can branch on. The message beside it says the details.
type Reason string

// The reasons pickup records. Permanent ones end the pin at once; the others
// are retried until the attempt limit.
const (
	// The DAG is bigger than the configured limit (MAX_CAR_BYTES), or its
	// root declares it is (a dag-pb root's Tsize), which is known after
	// the first block.
	ReasonTooBig Reason = "too_big"
	// A block's codec or hash cannot be verified or walked.
	ReasonUnsupportedCodec Reason = "unsupported_codec"
	// No source had the root block before the attempt's deadline.
	ReasonRootNotFound Reason = "root_not_found"
	// A source sent a block whose bytes do not hash to its CID.
	ReasonBlockMismatch Reason = "block_mismatch"
	// A source's DAG lacks a block that a link points to.
	ReasonMissingBlock Reason = "missing_block"
	// A source sent a DAG rooted elsewhere than the requested CID.
	ReasonWrongRoot Reason = "wrong_root"
	// A source sent a block over the 2 MiB limit.
	ReasonBlockTooBig Reason = "block_too_big"
	// A source sent a block that no link asked for.
	ReasonUnrequestedBlock Reason = "unrequested_block"
	// The attempt ran longer than FETCH_TIMEOUT.
	ReasonTimeout Reason = "timeout"
	// No bytes arrived for FETCH_CHUNK_TIMEOUT.
	ReasonStalled Reason = "stalled"
	// Every source failed to serve the DAG (unreachable, refused, errors).
	ReasonSourcesFailed Reason = "sources_failed"
	// Writing or reading the CAR in storage failed.
	ReasonStorage Reason = "storage_error"
	// The stored CAR did not match what was uploaded.
	ReasonValidation Reason = "validation_failed"
	// The fetcher's lease ran out with no word from it.
	ReasonLeaseExpired Reason = "lease_expired"
	// No fetcher claimed the pin within the queue timeout.
	ReasonQueueTimeout Reason = "queue_timeout"
	// The fetcher stopped (shut down) before finishing and handed the work back.
	ReasonHandedBack Reason = "handed_back"
)

// Permanent reports whether failing for this reason ends the pin at once:
// trying again would fetch the same bytes and fail the same way.
func (r Reason) Permanent() bool {
	switch r {
	case ReasonTooBig, ReasonUnsupportedCodec, ReasonRootNotFound:
		return true
	}
	return false
}

// Counts reports whether failing for this reason spends one of the pin's
// attempts. Work handed back by a fetcher that is shutting down (a deploy, a
// scale-in) says nothing about the pin, so it does not count.
func (r Reason) Counts() bool { return r != ReasonHandedBack }

// Refusals: a decision that does not apply to the pin's state. Callers branch
// on them with errors.Is; each is wrapped with what was being decided.
var (
	// ErrExists: a request for a stream that already has one.
	ErrExists = errors.New("pin request already exists")
	// ErrNotFound: a decision on a pin that was never requested.
	ErrNotFound = errors.New("no such pin request")
	// ErrRemoved: the pin was removed (deleted or replaced).
	ErrRemoved = errors.New("pin was removed")
	// ErrFinal: the pin is pinned or has failed for good.
	ErrFinal = errors.New("pin is already final")
	// ErrClaimed: another attempt is running.
	ErrClaimed = errors.New("pin is claimed by a running attempt")
	// ErrNotDue: the retry's time has not come.
	ErrNotDue = errors.New("retry is not due yet")
	// ErrLeaseLost: the caller's attempt is no longer the pin's current one.
	ErrLeaseLost = errors.New("attempt's claim is gone")
	// ErrNotUploaded: validation of a pin with no staged CAR.
	ErrNotUploaded = errors.New("no CAR is staged")
	// ErrNotFailed: a retry decision for a pin whose attempt has not failed.
	ErrNotFailed = errors.New("pin has no failure to decide on")
	// ErrNoDeadline: the watchdog found no deadline passed.
	ErrNoDeadline = errors.New("no deadline has passed")
	// ErrInvalid: a command with bad arguments.
	ErrInvalid = errors.New("invalid pin command")
)
