package main

import (
	"context"
	"fmt"
	"strings"
	"time"

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

// openViews opens the view store that location names: a postgres:// (or
// postgresql://) URL, or a file path (optionally file:) for the embedded
// store.
func openViews(ctx context.Context, location string) (viewStore, error) {
	return openViewsAs(ctx, location, nil)
}

// openViewsAs is openViews with the credentials of PostgreSQL's new
// connections, when they come from a secret that may be rotated (nil: the
// URL's).
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
