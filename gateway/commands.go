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

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections"
)

// Commands decide on the pin's stream as the log holds it (the source of
// truth), never on a view, and append at the revision they read, so that a
// decision made on a stale state loses instead of overwriting.

// maxRaces is how often a command re-reads and decides again after losing
// a race to another writer of the stream (a fetcher's progress, most often)
// before it gives up.
const maxRaces = 32

// readPin folds a pin's stream from the log.
func (h *Handler) readPin(ctx context.Context, id uuid.UUID) (pin.State, error) {
	s, _, err := projections.ReadPin(ctx, h.events, id)
	return s, err
}

// readOwn folds a pin the tenant owns and has not removed; any other pin is
// not found, whoever owns it.
func (h *Handler) readOwn(ctx context.Context, tenant string, id uuid.UUID) (pin.State, error) {
	s, err := h.readPin(ctx, id)
	switch {
	case err != nil:
		return s, err
	case !s.Exists || s.Request.Tenant != tenant || s.Removed:
		return s, errNotFound
	}
	return s, nil
}

// meta is the metadata of a command's events.
func meta(tenant string, id uuid.UUID) eventlog.Metadata {
	return eventlog.Metadata{Actor: "tenant:" + tenant, CorrelationID: id}
}

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
var errKeyReused = &apiError{status: http.StatusUnprocessableEntity, reason: ReasonIdempotencyKeyUsed,
	details: "This Idempotency-Key was used for a different request; use a new key for a new request"}

// request appends a new pin request and returns it as recorded. With a key,
// a request that was made before (same tenant and key) is answered from the
// log as it was first recorded, and nothing is appended.
func (h *Handler) request(ctx context.Context, tenant string, in pinInput, key string, replaces uuid.UUID) (pin.Requested, error) {
	id := uuid.New()
	if key != "" {
		id = KeyedRequestID(tenant, key)
	}
	r, err := pin.Request(pin.State{}, pin.Requested{
		RequestID: id, Tenant: tenant, CID: in.CID.Text, Name: in.Name,
		Origins: in.Origins, Meta: in.Meta, Created: h.clock.Now(), Replaces: replaces,
	})
	if err != nil {
		return r, err
	}
	// A fresh event id: a concurrent retry with the same key must meet
	// the stream, not the store's replay of this very append.
	e, err := pin.Proposal(r, uuid.New(), meta(tenant, id))
	if err != nil {
		return r, err
	}
	res, err := h.events.Append(ctx, pin.Stream(id), eventlog.NoStream, e)
	switch {
	case err == nil:
		h.fresh.wrote(tenant, res.Position)
		h.logPin(ctx, "pin requested", id, slog.String("tenant", tenant), slog.String("cid", r.CID))
		return r, nil
	case key != "" && eventlog.IsWrongRevision(err):
		return h.replay(ctx, tenant, id, r)
	}
	return r, fmt.Errorf("request %s: %w", id, err)
}

// replay answers a retried keyed request with the first request's record.
func (h *Handler) replay(ctx context.Context, tenant string, id uuid.UUID, retry pin.Requested) (pin.Requested, error) {
	s, err := h.readPin(ctx, id)
	if err != nil {
		return retry, err
	}
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

// removeReplaced removes old as replaced by id. Losing the race to another
// remover means this replace lost: its new request id is removed again and
// the answer is 404.
func (h *Handler) removeReplaced(ctx context.Context, tenant string, old, id uuid.UUID) error {
	for range maxRaces {
		s, err := h.readPin(ctx, old)
		if err != nil {
			return err
		}
		if s.Removed {
			if s.ReplacedBy == id {
				return nil // a retry of this very replace
			}
			if err := h.removeRequest(ctx, tenant, id, uuid.Nil); err != nil && !errors.Is(err, errNotFound) {
				return fmt.Errorf("withdraw %s after losing the replace of %s: %w", id, old, err)
			}
			return errNotFound
		}
		done, err := h.appendRemoval(ctx, tenant, s, id)
		if done || err != nil {
			return err
		}
	}
	return fmt.Errorf("replace %s: %w", old, errTooManyRaces)
}

// errTooManyRaces: the stream changed under every attempt to decide on it.
// The client may try again.
var errTooManyRaces = &apiError{status: http.StatusServiceUnavailable, reason: ReasonUnavailable,
	details: "The pin kept changing while the request was decided; try again"}

// removeRequest removes the tenant's live request id, recording replacedBy
// (uuid.Nil for a plain delete).
func (h *Handler) removeRequest(ctx context.Context, tenant string, id, replacedBy uuid.UUID) error {
	for range maxRaces {
		s, err := h.readOwn(ctx, tenant, id)
		if err != nil {
			return err
		}
		done, err := h.appendRemoval(ctx, tenant, s, replacedBy)
		if done || err != nil {
			return err
		}
	}
	return fmt.Errorf("remove %s: %w", id, errTooManyRaces)
}

// appendRemoval decides the removal of s and appends it at s's revision.
// done is false when another writer got there first and the caller must
// read again.
func (h *Handler) appendRemoval(ctx context.Context, tenant string, s pin.State, replacedBy uuid.UUID) (done bool, err error) {
	rm, err := s.Remove(replacedBy)
	if err != nil {
		return false, err
	}
	id := s.Request.RequestID
	// The id names the replacement too: two replaces racing on one state
	// must not look, to the store, like one append retried.
	e, err := pin.Proposal(rm, s.DecisionID("remove:"+replacedBy.String()), meta(tenant, id))
	if err != nil {
		return false, err
	}
	res, err := h.events.Append(ctx, pin.Stream(id), s.Expected(), e)
	switch {
	case err == nil:
		h.fresh.wrote(tenant, res.Position)
		h.logPin(ctx, "pin removed", id, slog.String("tenant", tenant), slog.String("replaced_by", uuidOrEmpty(replacedBy)))
		return true, nil
	case eventlog.IsWrongRevision(err):
		return false, nil
	}
	return false, fmt.Errorf("remove %s: %w", id, err)
}

// requeue queues a tenant's pin that failed for good again, and returns its
// state after.
func (h *Handler) requeue(ctx context.Context, tenant string, s pin.State) (pin.State, error) {
	for range maxRaces {
		rq, err := s.Requeue(h.now())
		if err != nil {
			// Not dead-lettered (any more): nothing to do.
			return s, nil
		}
		id := s.Request.RequestID
		e, err := pin.Proposal(rq, s.DecisionID("requeue"), meta(tenant, id))
		if err != nil {
			return s, err
		}
		res, err := h.events.Append(ctx, pin.Stream(id), s.Expected(), e)
		switch {
		case err == nil:
			h.fresh.wrote(tenant, res.Position)
			h.logPin(ctx, "pin requeued", id, slog.String("tenant", tenant))
			return s.With(rq, h.now()), nil
		case !eventlog.IsWrongRevision(err):
			return s, fmt.Errorf("requeue %s: %w", id, err)
		}
		if s, err = h.readOwn(ctx, tenant, id); err != nil {
			return s, err
		}
	}
	return s, fmt.Errorf("requeue %s: %w", s.Request.RequestID, errTooManyRaces)
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
