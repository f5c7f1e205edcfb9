package gateway

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/audit"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// info tells what the view knows of a pin's progress, under the api.Info*
// keys.
func info(v views.Pin) map[string]string {
	m := map[string]string{}
	set := func(k, val string) {
		if val != "" && val != "0" {
			m[k] = val
		}
	}
	set(api.InfoAttempt, strconv.Itoa(v.Attempt))
	set(api.InfoFailures, strconv.Itoa(v.Failures))
	switch v.Status {
	case pin.StatusPinning:
		set(api.InfoBytes, strconv.FormatInt(v.Bytes, 10))
		set(api.InfoBlocks, strconv.FormatInt(v.Blocks, 10))
		set(api.InfoSource, v.Source)
		details := fmt.Sprintf("pinning: attempt %d, %s in %d blocks so far", v.Attempt, audit.Bytes(v.Bytes), v.Blocks)
		if v.Source != "" {
			details += " from " + v.Source
		}
		if c := v.Completion; c.Expected > 0 {
			completion(m, c)
			details += fmt.Sprintf(", %s%% of %s", m[api.InfoPercent], audit.Bytes(c.Expected))
			if c.LeftKnown && c.Left > 0 {
				details += ", about " + audit.Remaining(c.Left) + " left"
			}
		}
		m[api.InfoStatusDetails] = details
	case pin.StatusPinned:
		set(api.InfoCarCID, v.CarCID)
		set(api.InfoCarBytes, strconv.FormatInt(v.CarBytes, 10))
		completion(m, v.Completion)
		m[api.InfoStatusDetails] = fmt.Sprintf("pinned: CAR %s, %s", v.CarCID, audit.Bytes(v.CarBytes))
	case pin.StatusFailed:
		set(api.InfoFailureReason, string(v.FailureReason))
		set(api.InfoFailureMessage, v.FailureMessage)
		m[api.InfoStatusDetails] = fmt.Sprintf("failed after %d attempts: %s: %s", v.Failures, v.FailureReason, v.FailureMessage)
	default:
		m[api.InfoStatusDetails] = "queued"
		if v.FailureReason != "" {
			set(api.InfoFailureReason, string(v.FailureReason))
			set(api.InfoFailureMessage, v.FailureMessage)
			details := fmt.Sprintf("queued for attempt %d after %d failed: %s: %s", v.Attempt+1, v.Failures, v.FailureReason, v.FailureMessage)
			if !v.NotBefore.IsZero() {
				m[api.InfoRetryAt] = api.FormatTime(v.NotBefore)
				details += "; retry at " + m[api.InfoRetryAt]
			}
			m[api.InfoStatusDetails] = details
		}
	}
	return m
}

// completion sets the keys of a fetch's progress towards the DAG's
// declared size, if its root declared one.
func completion(m map[string]string, c pin.Completion) {
	if c.Expected <= 0 {
		return
	}
	m[api.InfoExpectedBytes] = strconv.FormatInt(c.Expected, 10)
	// Percent is a whole number of tenths: one digit after the point, none
	// when it is whole ("0", "42.5", "100").
	m[api.InfoPercent] = strings.TrimSuffix(strconv.FormatFloat(c.Percent, 'f', 1, 64), ".0")
	if c.LeftKnown && c.Left > 0 {
		m[api.InfoSecondsLeft] = strconv.FormatInt(int64(math.Ceil(c.Left.Seconds())), 10)
	}
}
