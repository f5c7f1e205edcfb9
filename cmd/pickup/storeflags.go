package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/pickup-ipfs/pickup/eventlog"
)

// storeFlags say where the stores are, the same way for the roles and for
// the operator's commands (tokens, webhooks, replay, audit, events): a
// location, or a Secrets Manager secret that holds it. An operator's
// command run in the deployment (the admin task) is given what the roles
// are given, and opens what they open.
type storeFlags struct {
	eventlog, eventlogSecret *string
	// views and viewsSecret are nil for a command that reads only the log.
	views, viewsSecret *string
}

// addLogFlags defines the event log's settings.
func addLogFlags(f *flags) *storeFlags {
	return &storeFlags{
		eventlog:       eventLogFlag(f),
		eventlogSecret: f.string("eventlog-secret-arn", "", "Secrets Manager secret of the event log: a connection string (esdb://, kurrentdb://, postgres://; wins over --eventlog), or an RDS-style secret of the log's app role (JSON username and password; host, port, dbname from --eventlog unless it has them), read again by each new connection", "PICKUP_EVENTLOG_SECRET_ARN"),
	}
}

// addStoreFlags defines the event log's and the views' settings.
func addStoreFlags(f *flags) *storeFlags {
	s := addLogFlags(f)
	s.views = viewsFlag(f)
	s.viewsSecret = f.string("views-secret-arn", "", "Secrets Manager secret of the views' app role: an RDS-style secret (JSON username and password; host, port, dbname from --views unless it has them) or a postgres:// URL; read again by each new connection (cached 1m, at once after a refused password), so a rotation needs no restart", "PICKUP_VIEWS_SECRET_ARN")
	return s
}

// openLog opens the event log the settings name.
func (s *storeFlags) openLog(ctx context.Context) (eventlog.Store, error) {
	// Anything but a postgres:// URL or JSON (an esdb:// or kurrentdb://
	// connection string, a file) is the log itself, as before secrets
	// could hold an app role's login; a postgres:// URL or JSON is the app
	// role's, completing --eventlog.
	other := func(secret string) bool { return !isPostgresURL(secret) && !strings.HasPrefix(secret, "{") }
	at, creds, err := secretLocation(ctx, *s.eventlogSecret, *s.eventlog, other)
	if err != nil {
		return nil, fmt.Errorf("event log secret: %w", err)
	}
	return openEventLogAs(ctx, at, creds)
}

// openViews opens the view store the settings name, as the app role of
// the views' secret when one is set.
func (s *storeFlags) openViews(ctx context.Context) (viewStore, error) {
	at, creds, err := viewsLocation(ctx, *s.viewsSecret, *s.views)
	if err != nil {
		return nil, fmt.Errorf("views secret: %w", err)
	}
	return openViewsAs(ctx, at, creds)
}
