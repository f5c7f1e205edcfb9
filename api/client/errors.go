package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/pickup-ipfs/pickup/api"
)

// Kinds of Error, for errors.Is.
var (
	// ErrBadRequest: the service refused the request's input (400).
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized: the token is missing, unknown or revoked (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound: no such pin for this user, or it was removed (404).
	ErrNotFound = errors.New("not found")
	// ErrKeyReused: the Idempotency-Key was sent before with another Pin
	// (reason IDEMPOTENCY_KEY_REUSED).
	ErrKeyReused = errors.New("idempotency key reused")
	// ErrUnavailable: the service failed or is overloaded (5xx, 429); the
	// same request may succeed later.
	ErrUnavailable = errors.New("service unavailable")
)

// ErrBadAnswer is a success whose body is not the API's JSON.
var ErrBadAnswer = errors.New("the answer is not the API's JSON")

// Error is an answer other than a success.
type Error struct {
	// Op is the request: its method and path.
	Op string
	// Status is the HTTP status.
	Status int
	// Reason and Details are the API's error body (api.Failure); when the
	// answer had none (a proxy's error page), Reason is the status's text.
	Reason, Details string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %d %s", e.Op, e.Status, e.Reason)
	if e.Details != "" {
		msg += ": " + e.Details
	}
	return msg
}

// Is reports whether e is of kind target (ErrNotFound and the others).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrKeyReused:
		return e.Reason == api.ReasonIdempotencyKeyUsed
	case ErrUnavailable:
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	return false
}

// answerError is the Error of an answer with status and body raw.
func answerError(op string, status int, raw []byte) *Error {
	e := &Error{Op: op, Status: status, Reason: http.StatusText(status)}
	var f api.Failure
	if json.Unmarshal(raw, &f) == nil && f.Error.Reason != "" {
		e.Reason, e.Details = f.Error.Reason, f.Error.Details
	}
	return e
}
