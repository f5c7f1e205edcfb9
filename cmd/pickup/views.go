package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/fetcher"
	"github.com/pickup-ipfs/pickup/pin/deciders"
	"github.com/pickup-ipfs/pickup/projections"
	viewembedded "github.com/pickup-ipfs/pickup/projections/embedded"
	"github.com/pickup-ipfs/pickup/projections/postgres"
	"github.com/pickup-ipfs/pickup/projections/views"
)

const defaultViews = "data/views.db"

// viewsFlag defines the flag that says which view store to use.
func viewsFlag(f *flags) *string {
	return f.string("views", defaultViews, "view store: a file (embedded) or a postgres:// URL", "PICKUP_VIEWS")
}

// viewStore is a view store as pickup's commands use it: what the APIs
// read, what the runner applies, the work views, and the operator's tools.
type viewStore interface {
	views.Reader
	projections.Applier
	fetcher.Queue
	fetcher.CARIndex
	deciders.FailedLister
	deciders.OverdueLister
	Figures(ctx context.Context, now time.Time) (projections.Figures, error)
	Tokens(ctx context.Context, tenant string) ([]views.TokenInfo, error)
	Dump(ctx context.Context, fn func(eventlog.Position, projections.Rows) error) error
	Reset(ctx context.Context) error
	Close() error
}

var (
	_ viewStore = (*viewembedded.Store)(nil)
	_ viewStore = (*postgres.Store)(nil)
)

// openViewsAs opens the view store that location names: a postgres:// (or
// postgresql://) URL, or a file path (optionally file:) for the embedded
// store; creds give PostgreSQL's new connections their user and password
// when they come from a secret that may be rotated (nil: the URL's).
func openViewsAs(ctx context.Context, location string, creds postgres.Credentials) (viewStore, error) {
	switch {
	case location == "":
		return nil, fmt.Errorf("%w: no view store given", errUsage)
	case strings.HasPrefix(location, "postgres://"), strings.HasPrefix(location, "postgresql://"):
		return postgres.Open(ctx, location, postgres.Options{Credentials: creds})
	case strings.Contains(location, "://"):
		return nil, fmt.Errorf("%w: view store %q: want a file path or a postgres:// URL", errUsage, location)
	}
	return viewembedded.Open(ctx, strings.TrimPrefix(location, "file:"), viewembedded.Options{})
}

// errViewsBuilding answers a read that views still building from the log
// cannot answer truly. It is not views.ErrNotFound: the gateway answers it
// 503 with Retry-After (or a pin's read from its stream), never 401 or an
// empty list.
var errViewsBuilding = errors.New("the views are still being built from the log (a new views version catching up): try again shortly")

// buildingViews guards the reads of views that may be building from the
// start of the log, as a new views version is beside the old ones
// (projections/postgres): until the views have reached target, the log's
// head when the process started, "not found" (a token, a pin) may only
// mean that they have not reached its event yet, and a list may miss
// pins. Those answers become errViewsBuilding; what is found passes, so
// views behind the head by a moment (a cold start while the projector
// keeps up, or a stalled projector) still authenticate known tokens and
// take writes. Once reached, the views are never guarded again.
type buildingViews struct {
	viewStore
	target  eventlog.Position
	reached atomic.Bool
}

// built reports whether the views have reached the target.
func (b *buildingViews) built(ctx context.Context) (bool, error) {
	if b.reached.Load() {
		return true, nil
	}
	cp, err := b.viewStore.Checkpoint(ctx)
	if err != nil {
		return false, err
	}
	if cp >= b.target {
		b.reached.Store(true)
	}
	return cp >= b.target, nil
}

// notFound turns a "not found" answer into errViewsBuilding while the views
// are building.
func (b *buildingViews) notFound(ctx context.Context, err error) error {
	if !errors.Is(err, views.ErrNotFound) {
		return err
	}
	if ok, cerr := b.built(ctx); cerr != nil || !ok {
		return errors.Join(errViewsBuilding, cerr)
	}
	return err
}

func (b *buildingViews) TokenTenant(ctx context.Context, hash [32]byte) (string, error) {
	tenant, err := b.viewStore.TokenTenant(ctx, hash)
	return tenant, b.notFound(ctx, err)
}

func (b *buildingViews) Pin(ctx context.Context, tenant string, requestID uuid.UUID) (views.Pin, error) {
	p, err := b.viewStore.Pin(ctx, tenant, requestID)
	return p, b.notFound(ctx, err)
}

func (b *buildingViews) NewestByCID(ctx context.Context, tenant, canonicalCID string) (views.Pin, error) {
	p, err := b.viewStore.NewestByCID(ctx, tenant, canonicalCID)
	return p, b.notFound(ctx, err)
}

func (b *buildingViews) List(ctx context.Context, q views.ListQuery) (views.ListResult, error) {
	ok, err := b.built(ctx)
	if err != nil {
		return views.ListResult{}, err
	}
	if !ok {
		return views.ListResult{}, errViewsBuilding
	}
	return b.viewStore.List(ctx, q)
}
