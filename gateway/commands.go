package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// Commands decide on the pin's stream as the log holds it (the source of
// truth), never on a view, through pin/pinlog's one write path: it appends
// at the revision it read, so that a decision made on a stale state loses
// instead of overwriting, and decides again on the new state.

// readPin folds a pin's stream from the log.
func (h *Handler) readPin(ctx context.Context, id uuid.UUID) (pin.State, error) {
	s, _, err := h.pins.Read(ctx, id)
	return s, err
}

// own refuses, as not found, a pin the tenant does not own or has removed,
// whoever owns it.
func own(s pin.State, tenant string) error {
	if !s.Exists || s.Request.Tenant != tenant || s.Removed {
		return errNotFound
	}
	return nil
}

// readOwn folds a pin the tenant owns and has not removed; any other pin is
// not found.
func (h *Handler) readOwn(ctx context.Context, tenant string, id uuid.UUID) (pin.State, error) {
	s, err := h.readPin(ctx, id)
	if err != nil {
		return s, err
	}
	return s, own(s, tenant)
}

// commit commits a tenant's decision on pin id, starting from from when
// known, and tells the read-your-writes tracker of what it appended.
func (h *Handler) commit(ctx context.Context, tenant string, id uuid.UUID, from *pin.State, decide func(pin.State) (pinlog.Decision, error)) (pinlog.Committed, error) {
	c, err := h.pins.Commit(ctx, pinlog.Commit{RequestID: id, Actor: "tenant:" + tenant, From: from, Decide: decide})
	if errors.Is(err, pinlog.ErrTooManyRaces) {
		return c, fmt.Errorf("%w: %w", errTooManyRaces, err)
	}
	if err == nil && c.Appended != nil {
		h.fresh.wrote(tenant, c.Position)
	}
	return c, err
}

// errTooManyRaces: the stream changed under every attempt to decide on it.
// The client may try again.
var errTooManyRaces = &apiError{status: http.StatusServiceUnavailable, reason: api.ReasonUnavailable,
	details: "The pin kept changing while the request was decided; try again"}

// idempotencyNamespace is the UUIDv5 namespace of request ids derived from
// Idempotency-Keys.
func idempotencyNamespace() uuid.UUID {
	return uuid.UUID{0x6b, 0x3e, 0x51, 0x0c, 0x27, 0x8f, 0x4d, 0x1a, 0x9c, 0x42, 0x5e, 0x0d, 0x7a, 0x61, 0x93, 0xb4}
}

// KeyedRequestID is the request id of a tenant's request made with an
// Idempotency-Key: the same tenant and key always name the same stream, so
// a retry finds the first request's stream instead of making another.
func KeyedRequestID(tenant, key string) uuid.UUID {
	return uuid.NewSHA1(idempotencyNamespace(), []byte(tenant+"\x00"+key))
}

// errKeyReused is the answer to a retry whose key was first used for a
// different request.
var errKeyReused = &apiError{status: http.StatusUnprocessableEntity, reason: api.ReasonIdempotencyKeyUsed,
	details: "This Idempotency-Key was used for a different request; use a new key for a new request"}

// request appends a new pin request and returns it as recorded. With a key,
// a request that was made before (same tenant and key) is answered from the
// log as it was first recorded, and nothing is appended.
func (h *Handler) request(ctx context.Context, tenant string, in pinInput, key string, replaces uuid.UUID) (pin.Requested, error) {
	id := uuid.New()
	if key != "" {
		id = KeyedRequestID(tenant, key)
	}
	return h.requestAs(ctx, tenant, in, id, key, replaces, "")
}

// requestAs is request with the request id chosen, and the upload the
// request came with ("" for none).
func (h *Handler) requestAs(ctx context.Context, tenant string, in pinInput, id uuid.UUID, key string, replaces uuid.UUID, upload string) (pin.Requested, error) {
	r := pin.Requested{
		RequestID: id, Tenant: tenant, CID: in.CID.Text, Name: in.Name,
		Origins: in.Origins, Meta: in.Meta, Created: h.clock.Now(), Replaces: replaces, Upload: upload,
	}
	// A new stream is known to be empty: the first try saves a read.
	c, err := h.commit(ctx, tenant, id, &pin.State{}, func(s pin.State) (pinlog.Decision, error) {
		r, err := pin.Request(s, r)
		return pinlog.Decision{Payload: r}, err
	})
	switch {
	case err == nil:
		h.logPin(ctx, "pin requested", id, slog.String("tenant", tenant), slog.String("cid", r.CID))
		return c.State.Request, nil
	case key != "" && errors.Is(err, pin.ErrExists):
		return replay(tenant, c.State, r)
	}
	return r, fmt.Errorf("request %s: %w", id, err)
}

// replay answers a retried keyed request with the first request's record,
// s.
func replay(tenant string, s pin.State, retry pin.Requested) (pin.Requested, error) {
	first := s.Request
	if !s.Exists || first.Tenant != tenant || !samePin(first, retry) {
		return retry, errKeyReused
	}
	return first, nil
}

// samePin reports whether two requests ask for the same thing.
func samePin(a, b pin.Requested) bool {
	return a.CID == b.CID && a.Name == b.Name && a.Replaces == b.Replaces &&
		slices.Equal(a.Origins, b.Origins) && maps.Equal(a.Meta, b.Meta)
}

// replace makes a new request that replaces old, then removes old. The new
// request is appended first, so that no crash leaves the tenant with
// neither. If another writer removed or replaced old in between, the new
// request is removed again and the answer is 404, as if this replace had
// come second.
func (h *Handler) replacePin(ctx context.Context, tenant string, old uuid.UUID, in pinInput, key string) (pin.Requested, error) {
	if _, err := h.readOwn(ctx, tenant, old); err != nil {
		// A keyed retry of a replace that went through finds old gone:
		// answer it from the new stream.
		if key != "" && errors.Is(err, errNotFound) {
			return h.replayReplace(ctx, tenant, old, in, key)
		}
		return pin.Requested{}, err
	}
	r, err := h.request(ctx, tenant, in, key, old)
	if err != nil {
		return r, err
	}
	if err := h.removeReplaced(ctx, tenant, old, r.RequestID); err != nil {
		return r, err
	}
	return r, nil
}

// replayReplace answers a keyed replace whose old request is gone: if this
// key's request replaced it, that request is the answer.
func (h *Handler) replayReplace(ctx context.Context, tenant string, old uuid.UUID, in pinInput, key string) (pin.Requested, error) {
	id := KeyedRequestID(tenant, key)
	s, err := h.readPin(ctx, id)
	if err != nil {
		return pin.Requested{}, err
	}
	if !s.Exists || s.Request.Tenant != tenant || s.Request.Replaces != old {
		return pin.Requested{}, errNotFound
	}
	retry := pin.Requested{CID: in.CID.Text, Name: in.Name, Origins: in.Origins, Meta: in.Meta, Replaces: old}
	if !samePin(s.Request, retry) {
		return pin.Requested{}, errKeyReused
	}
	if err := h.removeReplaced(ctx, tenant, old, id); err != nil {
		return pin.Requested{}, err
	}
	return s.Request, nil
}

// errReplacedFirst: another replace or delete removed the pin first.
var errReplacedFirst = errors.New("removed by another writer first")

// removeReplaced removes old as replaced by id. Losing the race to another
// remover means this replace lost: its new request id is removed again and
// the answer is 404.
func (h *Handler) removeReplaced(ctx context.Context, tenant string, old, id uuid.UUID) error {
	_, err := h.commit(ctx, tenant, old, nil, func(s pin.State) (pinlog.Decision, error) {
		switch {
		case s.Removed && s.ReplacedBy == id:
			return pinlog.Decision{}, nil // a retry of this very replace
		case s.Removed:
			return pinlog.Decision{}, errReplacedFirst
		}
		rm, err := s.Remove(id)
		return pinlog.Decision{Payload: rm, Key: id.String()}, err
	})
	switch {
	case err == nil:
		h.logPin(ctx, "pin removed", old, slog.String("tenant", tenant), slog.String("replaced_by", id.String()))
		return nil
	case errors.Is(err, errReplacedFirst):
		if err := h.removeRequest(ctx, tenant, id, uuid.Nil); err != nil && !errors.Is(err, errNotFound) {
			return fmt.Errorf("withdraw %s after losing the replace of %s: %w", id, old, err)
		}
		return errNotFound
	}
	return fmt.Errorf("replace %s: %w", old, err)
}

// removeRequest removes the tenant's live request id, recording replacedBy
// (uuid.Nil for a plain delete).
func (h *Handler) removeRequest(ctx context.Context, tenant string, id, replacedBy uuid.UUID) error {
	_, err := h.commit(ctx, tenant, id, nil, func(s pin.State) (pinlog.Decision, error) {
		if err := own(s, tenant); err != nil {
			return pinlog.Decision{}, err
		}
		// The key names the replacement: two replaces racing on one
		// state must not look, to the store, like one append retried.
		rm, err := s.Remove(replacedBy)
		return pinlog.Decision{Payload: rm, Key: replacedBy.String()}, err
	})
	if err != nil {
		if errors.Is(err, errNotFound) {
			return err
		}
		return fmt.Errorf("remove %s: %w", id, err)
	}
	h.logPin(ctx, "pin removed", id, slog.String("tenant", tenant), slog.String("replaced_by", uuidOrEmpty(replacedBy)))
	return nil
}

// requeue queues a tenant's pin that failed for good again, and returns its
// state after; a pin that is not dead-lettered (any more) is left as it is.
func (h *Handler) requeue(ctx context.Context, tenant string, s pin.State) (pin.State, error) {
	id := s.Request.RequestID
	c, err := h.commit(ctx, tenant, id, &s, func(s pin.State) (pinlog.Decision, error) {
		if err := own(s, tenant); err != nil {
			return pinlog.Decision{}, err
		}
		rq, err := s.Requeue(h.now())
		if err != nil {
			return pinlog.Decision{}, nil // not dead-lettered: nothing to do
		}
		return pinlog.Decision{Payload: rq}, nil
	})
	if err != nil {
		return c.State, fmt.Errorf("requeue %s: %w", id, err)
	}
	if c.Appended != nil {
		h.logPin(ctx, "pin requeued", id, slog.String("tenant", tenant))
	}
	return c.State, nil
}

// logPin logs a command's append: the line that ties the HTTP request (its
// request_id comes with ctx) to the pin it concerns, whose id the fetchers'
// lines carry too.
func (h *Handler) logPin(ctx context.Context, msg string, id uuid.UUID, attrs ...slog.Attr) {
	h.log.LogAttrs(ctx, slog.LevelInfo, msg, append([]slog.Attr{slog.String(telemetry.PinRequestIDKey, id.String())}, attrs...)...)
}

func uuidOrEmpty(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}
