package gateway

import (
	"context"
	"net/http"

	"github.com/pickup-ipfs/pickup/api"
)

// noDelegateRetryAfter is the Retry-After, in seconds, of an answer that
// has no delegate to name: a fetcher announces itself as it starts.
const noDelegateRetryAfter = 30

// errNoDelegates answers a Pinning Service API route when no fetcher is
// live and none is configured: the spec's PinStatus names 1 to 20
// delegates, and an address nobody listens at would be a lie.
var errNoDelegates = &apiError{status: http.StatusServiceUnavailable, reason: "NO_DELEGATES", retryAfter: noDelegateRetryAfter,
	details: "No fetcher is live to receive the DAG (none has announced itself in the log, and no delegates are configured); nothing was changed; try again"}

// errDelegatesUnavailable answers when the live fetchers could not be read.
var errDelegatesUnavailable = &apiError{status: http.StatusServiceUnavailable, reason: api.ReasonUnavailable, retryAfter: noDelegateRetryAfter,
	details: "The live fetchers could not be read from the log; nothing was changed; try again"}

// delegates returns the delegates to answer: the configured ones, or else
// the live fetchers' (each a multiaddr ending in /p2p/<peer id>, once, at
// most MaxDelegates), or errNoDelegates when there are none.
func (h *Handler) delegates(ctx context.Context) ([]string, error) {
	if len(h.cfg.Delegates) > 0 {
		return h.cfg.Delegates, nil
	}
	if h.live == nil {
		return nil, errNoDelegates
	}
	live, err := h.live.Delegates(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		h.log.WarnContext(ctx, "reading the live fetchers", "err", err)
		return nil, errDelegatesUnavailable
	}
	var out []string
	seen := map[string]bool{}
	for _, d := range live {
		m, err := parseMultiaddr(d)
		if err == nil {
			_, err = peerOf(m)
		}
		if err != nil {
			h.log.WarnContext(ctx, "a fetcher announced an address that is no delegate; skipped", "addr", d, "err", err)
			continue
		}
		if s := m.String(); !seen[s] && len(out) < MaxDelegates {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, errNoDelegates
	}
	return out, nil
}
