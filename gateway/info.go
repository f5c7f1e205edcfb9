package gateway

import (
	"fmt"
	"strconv"

	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/audit"
)

// Info keys: PinStatus.info is a free map of strings; these names are
// pickup's, and stable. A key is present only when it has a value.
const (
	// InfoStatusDetails is a one-line summary for people (the spec's own
	// convention), in every status.
	InfoStatusDetails = "status_details"
	// InfoAttempt is the number of the current or last fetch attempt.
	InfoAttempt = "attempt"
	// InfoBytes, InfoBlocks and InfoSource: while pinning, how much of the
	// DAG the current attempt has fetched, and from where (gateway, bitswap,
	// kubo).
	InfoBytes  = "bytes"
	InfoBlocks = "blocks"
	InfoSource = "source"
	// InfoCarCID and InfoCarBytes: once pinned, the CID and size of the
	// stored CAR.
	InfoCarCID   = "car_cid"
	InfoCarBytes = "car_bytes"
	// InfoFailures counts failed attempts; InfoFailureReason (a stable code,
	// see pin.Reason) and InfoFailureMessage tell the last failure: why the
	// pin failed, or why it is being retried.
	InfoFailures       = "failures"
	InfoFailureReason  = "failure_reason"
	InfoFailureMessage = "failure_message"
	// InfoRetryAt is when a scheduled retry may start (RFC 3339).
	InfoRetryAt = "retry_at"
)

// info tells what the view knows of a pin's progress.
func info(v projections.PinView) map[string]string {
	m := map[string]string{}
	set := func(k, val string) {
		if val != "" && val != "0" {
			m[k] = val
		}
	}
	set(InfoAttempt, strconv.Itoa(v.Attempt))
	set(InfoFailures, strconv.Itoa(v.Failures))
	switch v.Status {
	case pin.StatusPinning:
		set(InfoBytes, strconv.FormatInt(v.Bytes, 10))
		set(InfoBlocks, strconv.FormatInt(v.Blocks, 10))
		set(InfoSource, v.Source)
		details := fmt.Sprintf("pinning: attempt %d, %s in %d blocks so far", v.Attempt, audit.Bytes(v.Bytes), v.Blocks)
		if v.Source != "" {
			details += " from " + v.Source
		}
		m[InfoStatusDetails] = details
	case pin.StatusPinned:
		set(InfoCarCID, v.CarCID)
		set(InfoCarBytes, strconv.FormatInt(v.CarBytes, 10))
		m[InfoStatusDetails] = fmt.Sprintf("pinned: CAR %s, %s", v.CarCID, audit.Bytes(v.CarBytes))
	case pin.StatusFailed:
		set(InfoFailureReason, string(v.FailureReason))
		set(InfoFailureMessage, v.FailureMessage)
		m[InfoStatusDetails] = fmt.Sprintf("failed after %d attempts: %s: %s", v.Failures, v.FailureReason, v.FailureMessage)
	default:
		m[InfoStatusDetails] = "queued"
		if v.FailureReason != "" {
			set(InfoFailureReason, string(v.FailureReason))
			set(InfoFailureMessage, v.FailureMessage)
			details := fmt.Sprintf("queued for attempt %d after %d failed: %s: %s", v.Attempt+1, v.Failures, v.FailureReason, v.FailureMessage)
			if !v.NotBefore.IsZero() {
				m[InfoRetryAt] = formatTime(v.NotBefore)
				details += "; retry at " + m[InfoRetryAt]
			}
			m[InfoStatusDetails] = details
		}
	}
	return m
}
