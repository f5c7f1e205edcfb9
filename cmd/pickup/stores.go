package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/eventlog/esdb"
	"github.com/pickup-ipfs/pickup/eventlog/postgres"
)

const defaultEventLog = "data/events.db"

// eventLogFlag defines the flag that says which event log to use.
func eventLogFlag(f *flags) *string {
	return f.string("eventlog", defaultEventLog, "event log: a file (embedded), a postgres:// or postgresql:// URL, or an esdb:// or kurrentdb:// connection string", "PICKUP_EVENTLOG")
}

// openEventLog opens the event log that location names.
func openEventLog(ctx context.Context, location string) (eventlog.Store, error) {
	return openEventLogAs(ctx, location, nil)
}

// openEventLogAs opens the event log that location names; creds give a
// PostgreSQL log's new connections their user and password when they come
// from a secret that may be rotated (nil: the URL's).
func openEventLogAs(ctx context.Context, location string, creds credentials) (eventlog.Store, error) {
	switch {
	case location == "":
		return nil, fmt.Errorf("%w: no event log given", errUsage)
	case strings.HasPrefix(location, "esdb://"), strings.HasPrefix(location, "esdb+discover://"),
		strings.HasPrefix(location, "kurrentdb://"), strings.HasPrefix(location, "kurrentdb+discover://"):
		return esdb.Open(ctx, location)
	case strings.HasPrefix(location, "postgres://"), strings.HasPrefix(location, "postgresql://"):
		return postgres.Open(ctx, location, postgres.Options{Credentials: creds})
	case strings.Contains(location, "://"):
		return nil, fmt.Errorf("%w: event log %q: want a file path, a postgres:// URL, or an esdb:// or kurrentdb:// connection string", errUsage, location)
	}
	return embedded.Open(ctx, strings.TrimPrefix(location, "file:"), embedded.Options{})
}
