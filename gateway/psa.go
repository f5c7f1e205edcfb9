package gateway

import (
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// accepted is the PinStatus of a request just recorded: queued, with nothing
// else to tell yet. A keyed retry gets the same from the first record.
func (h *Handler) accepted(r pin.Requested, delegates []string) api.PinStatus {
	return api.PinStatus{
		RequestID: r.RequestID.String(),
		Status:    api.StatusQueued,
		Created:   api.Time{Time: r.Created},
		Pin:       api.Pin{CID: r.CID, Name: r.Name, Origins: r.Origins, Meta: r.Meta},
		Delegates: delegates,
		Info:      map[string]string{api.InfoStatusDetails: "queued"},
	}
}

// status is the PinStatus of a pin as the views show it.
func (h *Handler) status(v views.Pin, delegates []string) api.PinStatus {
	return api.PinStatus{
		RequestID: v.RequestID.String(),
		Status:    api.Status(v.Status),
		Created:   api.Time{Time: v.Created},
		Pin:       api.Pin{CID: v.CID, Name: v.Name, Origins: v.Origins, Meta: v.Meta},
		Delegates: delegates,
		Info:      info(v),
	}
}

// answer writes what fn returns: a status and a JSON body (none when
// nil), or an error in the API's shape.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, fn func() (int, any, error)) {
	status, body, err := fn()
	switch {
	case err != nil:
		h.writeError(w, r, err)
	case body == nil:
		w.WriteHeader(status)
	default:
		writeJSON(w, status, body)
	}
}

// add is POST /pins.
func (h *Handler) add(w http.ResponseWriter, r *http.Request) {
	h.answer(w, r, func() (int, any, error) {
		tenant, in, key, err := h.pinCommand(r)
		if err != nil {
			return 0, nil, err
		}
		// No fetcher to name, no request: the spec wants a delegate.
		delegates, err := h.delegates(r.Context())
		if err != nil {
			return 0, nil, err
		}
		rec, err := h.request(r.Context(), tenant, in, key, uuid.Nil)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, h.accepted(rec, delegates), nil
	})
}

// replace is POST /pins/{requestid}.
func (h *Handler) replace(w http.ResponseWriter, r *http.Request, old uuid.UUID) {
	h.answer(w, r, func() (int, any, error) {
		tenant, in, key, err := h.pinCommand(r)
		if err != nil {
			return 0, nil, err
		}
		// No fetcher to name, no request: the spec wants a delegate.
		delegates, err := h.delegates(r.Context())
		if err != nil {
			return 0, nil, err
		}
		rec, err := h.replacePin(r.Context(), tenant, old, in, key)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, h.accepted(rec, delegates), nil
	})
}

// pinCommand authenticates and reads a request that carries a Pin object.
func (h *Handler) pinCommand(r *http.Request) (tenant string, in pinInput, key string, err error) {
	if tenant, err = h.authenticate(r, schemeBearer); err != nil {
		return
	}
	if len(r.URL.RawQuery) > 0 {
		err = badRequest("this route takes no query parameters; the Pin object goes in the body")
		return
	}
	if key, _, err = parseIdempotencyKey(r.Header); err != nil {
		return
	}
	var body []byte
	if body, err = readBody(r, h.cfg.MaxBodyBytes); err != nil {
		return
	}
	in, err = parsePin(body, h.cfg.AllowPrivateOrigins)
	return
}

// remove is DELETE /pins/{requestid}.
func (h *Handler) remove(w http.ResponseWriter, r *http.Request, id uuid.UUID) {
	h.answer(w, r, func() (int, any, error) {
		tenant, err := h.authenticate(r, schemeBearer)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, nil, h.removeRequest(r.Context(), tenant, id, uuid.Nil)
	})
}

// get is GET /pins/{requestid}. While the views lag behind the tenant's
// writes, the pin's stream answers: a pin the log holds is never 404.
func (h *Handler) get(w http.ResponseWriter, r *http.Request, id uuid.UUID) {
	h.answer(w, r, func() (int, any, error) {
		tenant, err := h.reader(r, schemeBearer)
		var v views.Pin
		if err == nil {
			v, err = h.views.Pin(r.Context(), tenant, id)
		}
		if tenant != "" && (errors.Is(err, errViewsBehind) || errors.Is(err, errViewsUnavailable)) {
			s, err := h.readOwn(r.Context(), tenant, id)
			if err != nil {
				return 0, nil, err
			}
			v = views.Of(s)
		} else if err != nil {
			return 0, nil, err
		}
		delegates, err := h.delegates(r.Context())
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, h.status(v, delegates), nil
	})
}

// list is GET /pins.
func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	h.answer(w, r, func() (int, any, error) {
		tenant, err := h.authenticate(r, schemeBearer)
		if err != nil {
			return 0, nil, err
		}
		q, err := parseListQuery(tenant, r.URL.Query())
		if err != nil {
			return 0, nil, err
		}
		if err := h.fresh.await(r.Context(), tenant); err != nil {
			return 0, nil, err
		}
		res, err := h.views.List(r.Context(), q)
		if err != nil {
			return 0, nil, err
		}
		delegates, err := h.delegates(r.Context())
		if err != nil {
			return 0, nil, err
		}
		out := api.PinResults{Count: res.Count, Results: make([]api.PinStatus, len(res.Pins))}
		for i, v := range res.Pins {
			out.Results[i] = h.status(v, delegates)
		}
		return http.StatusOK, out, nil
	})
}

// reader authenticates a read and waits until the views show the tenant's
// earlier writes.
func (h *Handler) reader(r *http.Request, s scheme) (string, error) {
	tenant, err := h.authenticate(r, s)
	if err != nil {
		return "", err
	}
	return tenant, h.fresh.await(r.Context(), tenant)
}
