package api

// Failure is the spec's error body, the answer to every request that does
// not succeed: {"error":{"reason":"NOT_FOUND","details":"..."}}.
type Failure struct {
	Error FailureError `json:"error"`
}

// FailureError is what went wrong: Reason for machines (one of the Reason*
// codes, from pickup), Details for people.
type FailureError struct {
	Reason  string `json:"reason"`
	Details string `json:"details,omitempty"`
}

// Reasons: the machine-readable codes of error bodies. The spec's examples
// name the first five; the rest are the 4XX custom codes it allows.
const (
	ReasonBadRequest   = "BAD_REQUEST"
	ReasonUnauthorized = "UNAUTHORIZED"
	ReasonNotFound     = "NOT_FOUND"
	ReasonInternal     = "INTERNAL_SERVER_ERROR"
	ReasonUnavailable  = "SERVICE_UNAVAILABLE"
	// ReasonMethodNotAllowed is a 405: the route has no such method.
	ReasonMethodNotAllowed = "METHOD_NOT_ALLOWED"
	// ReasonIdempotencyKeyUsed is a 422: the Idempotency-Key was sent
	// before with another Pin.
	ReasonIdempotencyKeyUsed = "IDEMPOTENCY_KEY_REUSED"
	// ReasonTooLarge is a 413: a CAR upload over the service's limit.
	ReasonTooLarge = "PAYLOAD_TOO_LARGE"
	// ReasonTimeout is a 408: a CAR upload whose bytes stopped coming.
	ReasonTimeout = "REQUEST_TIMEOUT"
)
