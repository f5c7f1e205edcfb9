package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// errViewsUnavailable answers a request the view store failed (its
// database down or cut off): 503 with Retry-After, never 500. A read of
// one pin answers from its stream instead.
var errViewsUnavailable = &apiError{status: http.StatusServiceUnavailable, reason: api.ReasonUnavailable, retryAfter: 1,
	details: "The pin views are unavailable; try again shortly"}

// viewsFailed wraps an error of the view store that is not one of its
// answers (not found, an invalid query, the caller gone) in
// errViewsUnavailable.
func viewsFailed(err error) error {
	if err == nil || errors.Is(err, views.ErrNotFound) || errors.Is(err, views.ErrInvalid) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", errViewsUnavailable, err)
}

// guardedViews marks the view store's failures as such.
type guardedViews struct{ v Views }

func (g guardedViews) Pin(ctx context.Context, tenant string, id uuid.UUID) (views.Pin, error) {
	p, err := g.v.Pin(ctx, tenant, id)
	return p, viewsFailed(err)
}

func (g guardedViews) List(ctx context.Context, q views.ListQuery) (views.ListResult, error) {
	r, err := g.v.List(ctx, q)
	return r, viewsFailed(err)
}

func (g guardedViews) NewestByCID(ctx context.Context, tenant, canonicalCID string) (views.Pin, error) {
	p, err := g.v.NewestByCID(ctx, tenant, canonicalCID)
	return p, viewsFailed(err)
}

// guardedTokens marks the token view's failures as such.
type guardedTokens struct{ t Tokens }

func (g guardedTokens) TokenTenant(ctx context.Context, hash [32]byte) (string, error) {
	tenant, err := g.t.TokenTenant(ctx, hash)
	return tenant, viewsFailed(err)
}

// guardedCheckpoints marks the checkpoint's failures as such.
type guardedCheckpoints struct{ c Checkpoints }

func (g guardedCheckpoints) Checkpoint(ctx context.Context) (p eventlog.Position, err error) {
	p, err = g.c.Checkpoint(ctx)
	return p, viewsFailed(err)
}
