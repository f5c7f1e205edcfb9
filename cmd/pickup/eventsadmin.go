package main

import (
	"context"
	"fmt"

	"github.com/pickup-ipfs/pickup/eventlog/postgres"
)

// addEventLogAdminFlags say where the PostgreSQL event log is and who
// administers it, as addViewsAdminFlags do for the views.
func addEventLogAdminFlags(f *flags) *adminFlags {
	return &adminFlags{
		location:       f.string("eventlog", "", "the event log's database, a postgres:// URL (the cluster's writer, not a proxy); without a password when a secret gives it", "PICKUP_EVENTLOG"),
		setting:        "--eventlog (PICKUP_EVENTLOG)",
		adminSecretARN: f.string("eventlog-admin-secret-arn", "", "Secrets Manager secret of a role that may create schemas and roles (RDS's managed master secret, JSON username and password)", "PICKUP_EVENTLOG_ADMIN_SECRET_ARN"),
		adminSecret:    f.string("eventlog-admin-secret", "", "that secret's value itself, as ECS task secrets inject it (wins over --eventlog-admin-secret-arn)", "PICKUP_EVENTLOG_ADMIN_SECRET"),
	}
}

// eventsSetup creates the PostgreSQL event log's schema and its app role:
// the first step of a deployment's projector task, before views setup.
func eventsSetup(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "events setup")
	admin := addEventLogAdminFlags(f)
	admin.addAppSecretFlags(f, "eventlog", "PICKUP_EVENTLOG", "PICKUP_EVENTLOG_SECRET_ARN")
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "pickup events setup: create the PostgreSQL event log (schema %s) if it does not exist, and create or update the app role with the app secret's password, granted only what the roles use (USAGE on the schema; SELECT, INSERT on its events). Run with admin rights; running it again changes nothing but the password.\n", postgres.SchemaName)
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return fmt.Errorf("%w: events setup takes no arguments", errUsage)
	}
	at, err := admin.adminURL(ctx)
	if err != nil {
		return fmt.Errorf("event log %w", err)
	}
	var so postgres.SetupOptions
	if so.AppRole, so.AppPassword, err = admin.appRole(ctx); err != nil {
		return fmt.Errorf("event log %w", err)
	}
	if err := postgres.Setup(ctx, at, so); err != nil {
		return err
	}
	if so.AppRole == "" {
		fmt.Fprintf(e.stdout, "event log %s set up; no app role (no app secret given)\n", postgres.SchemaName)
		return nil
	}
	fmt.Fprintf(e.stdout, "event log %s set up for role %s\n", postgres.SchemaName, so.AppRole)
	return nil
}
