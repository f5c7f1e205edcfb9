package api

// Status is a pin's status in the Pinning Service API.
type Status string

// The statuses, in the order a pin moves through them.
const (
	// StatusQueued: waiting for a fetcher, the first time or for a retry.
	StatusQueued Status = "queued"
	// StatusPinning: being fetched, uploaded and validated.
	StatusPinning Status = "pinning"
	// StatusPinned: stored; final.
	StatusPinned Status = "pinned"
	// StatusFailed: no attempt is left; final.
	StatusFailed Status = "failed"
)

// AllStatuses is every status, as GET /pins's status filter takes them:
// without one, the listing has pinned pins only.
func AllStatuses() []Status {
	return []Status{StatusQueued, StatusPinning, StatusPinned, StatusFailed}
}

// Final reports whether a pin in status s stays in it: pinned or failed.
func (s Status) Final() bool { return s == StatusPinned || s == StatusFailed }

// Pin is the spec's Pin object: what to pin. Only CID is required.
type Pin struct {
	CID  string `json:"cid"`
	Name string `json:"name,omitempty"`
	// Origins are multiaddrs of peers known to have the DAG.
	Origins []string          `json:"origins,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
}

// PinStatus is the spec's PinStatus: a pin request and where it stands.
type PinStatus struct {
	RequestID string `json:"requestid"`
	Status    Status `json:"status"`
	// Created is when the request was recorded; unique per tenant, it
	// pages listings (ListQuery's before).
	Created Time `json:"created"`
	Pin     Pin  `json:"pin"`
	// Delegates are the multiaddrs of the peers that receive the DAG.
	Delegates []string `json:"delegates"`
	// Info holds strings under the Info* keys.
	Info map[string]string `json:"info"`
}

// PinResults is the spec's PinResults: a page of a listing, newest first,
// and how many pins match in all.
type PinResults struct {
	Count   int         `json:"count"`
	Results []PinStatus `json:"results"`
}

// Match is how GET /pins's name filter matches (the spec's
// TextMatchingStrategy).
type Match string

const (
	MatchExact    Match = "exact" // the default
	MatchIExact   Match = "iexact"
	MatchPartial  Match = "partial"
	MatchIPartial Match = "ipartial"
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
	// InfoExpectedBytes, InfoPercent and InfoSecondsLeft: while pinning
	// and once pinned, how far the fetch has come towards the DAG's size
	// as its root declares it (a dag-pb root's own bytes and its links'
	// cumulative sizes, Tsize: the blocks' bytes, without the CAR's
	// framing, so a little under car_bytes). InfoExpectedBytes is that
	// size; InfoPercent the share of it fetched, a decimal rounded down to
	// a tenth ("42.5"), "100" once the DAG is fetched; InfoSecondsLeft the
	// whole seconds the rest should take at the attempt's rate so far,
	// while pinning, once 1% is fetched. All three are absent when the root declares no size
	// (raw, dag-cbor and dag-json roots): bytes then tells the progress.
	InfoExpectedBytes = "expected_bytes"
	InfoPercent       = "percent"
	InfoSecondsLeft   = "seconds_left"
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
	// InfoRetryAt is when a scheduled retry may start (a Time's text).
	InfoRetryAt = "retry_at"
)
