package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/carupload"
	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// apiError is an answer the client is owed precisely: what went wrong with
// its request, in the API's own words.
type apiError struct {
	status  int
	reason  string
	details string
	// challenge, for a 401, is the WWW-Authenticate header.
	challenge string
	// retryAfter, for a 503, is the Retry-After header in seconds.
	retryAfter int
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.reason, e.details) }

// badRequest is the 400 for input that does not parse or breaks a limit.
func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, reason: api.ReasonBadRequest, details: fmt.Sprintf(format, args...)}
}

// errNotFound is every 404: unknown ids, removed pins, and other tenants'
// pins alike, so that a request id never tells whether it exists elsewhere.
var errNotFound = &apiError{status: http.StatusNotFound, reason: api.ReasonNotFound, details: "The specified resource was not found"}

// errorStatus maps an error to the status, reason and details of its
// answer. It is the one place where errors become HTTP.
func errorStatus(err error) (status int, reason, details string) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.reason, ae.details
	case errors.Is(err, carupload.ErrTooBig):
		return http.StatusRequestEntityTooLarge, api.ReasonTooLarge, err.Error()
	case errors.Is(err, carupload.ErrBadCAR):
		return http.StatusBadRequest, api.ReasonBadRequest, err.Error()
	case errors.As(err, new(*errSlowSender)):
		return http.StatusRequestTimeout, api.ReasonTimeout, err.Error()
	case errors.Is(err, views.ErrNotFound), errors.Is(err, pin.ErrNotFound), errors.Is(err, pin.ErrRemoved):
		return errNotFound.status, errNotFound.reason, errNotFound.details
	case errors.Is(err, pin.ErrInvalid), errors.Is(err, views.ErrInvalid):
		// The gateway checks every input before it decides or reads; a
		// refusal here is a limit the domain or the views keep that the
		// gateway missed.
		return http.StatusBadRequest, api.ReasonBadRequest, err.Error()
	case errors.Is(err, eventlog.ErrClosed), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, api.ReasonUnavailable, "The service is shutting down or overloaded; try again"
	case errors.Is(err, context.Canceled):
		// The client has gone; the status is for logs and metrics only.
		return 499, "CLIENT_CLOSED_REQUEST", "The request was cancelled"
	}
	return http.StatusInternalServerError, api.ReasonInternal, "Unexpected internal error"
}

// writeError answers r with err in the error shape of the API its route
// belongs to (ipfs-cluster's {"code","message"} on the cluster routes, the
// Pinning Service API's Failure elsewhere), and logs what the client is not
// told.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, reason, details := errorStatus(err)
	var ae *apiError
	if errors.As(err, &ae) && ae.challenge != "" {
		w.Header().Set("WWW-Authenticate", ae.challenge)
	}
	if errors.As(err, &ae) && ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	if status >= 500 {
		// A 503 with Retry-After is the service telling a client to come
		// back (views behind or down): a warning, not an error of ours.
		level := slog.LevelError
		if ae != nil && ae.retryAfter > 0 {
			level = slog.LevelWarn
		}
		h.log.LogAttrs(r.Context(), level, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status), slog.Any("err", err))
	}
	if ClusterRoute(Route(r)) {
		writeJSON(w, status, api.ClusterError{Code: status, Message: details})
		return
	}
	writeJSON(w, status, api.Failure{Error: api.FailureError{Reason: reason, Details: details}})
}
