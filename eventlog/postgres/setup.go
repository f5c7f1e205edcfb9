package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pickup-ipfs/pickup/internal/pgrole"
)

// SetupOptions say which application role Setup creates or updates.
type SetupOptions struct {
	// AppRole is the role the roles (gateway, fetchers, projector) log in
	// as; empty sets up the schema only.
	AppRole string
	// AppPassword is its password: required with AppRole.
	AppPassword string
}

// appPrivileges are all the app role needs of the events table: reading
// and appending. Positions come from the advisory lock, not a sequence;
// LISTEN, pg_notify and advisory locks need no grant. No UPDATE, DELETE
// or TRUNCATE: the log is append-only, and its app role cannot rewrite it.
const appPrivileges = "SELECT, INSERT"

// Setup creates the log's schema and table in the database at url (a role
// that may create schemas and roles: RDS's master user) if they do not
// exist, and creates or updates the app role of so: its password set,
// granted CONNECT on the database, USAGE on the schema and SELECT, INSERT
// on the events table, and nothing else (no CREATE on the database, the
// schema or public). Running it again changes nothing but the password.
func Setup(ctx context.Context, url string, so SetupOptions) error {
	if so.AppRole != "" && so.AppPassword == "" {
		return fmt.Errorf("event log setup: app role %q has no password", so.AppRole)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("event log setup: %w", err)
	}
	defer conn.Close(ctx)
	if err := createSchema(ctx, conn); err != nil {
		return fmt.Errorf("event log setup: %w", err)
	}
	if so.AppRole == "" {
		return nil
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return grantApp(ctx, tx, so.AppRole, so.AppPassword) }); err != nil {
		return fmt.Errorf("event log setup %s: %w", SchemaName, err)
	}
	return nil
}

// grantApp creates or updates role with password and grants it the log's
// use, taking from it any right to create (pgrole.Grant): of the events
// table, only what appending and reading need.
func grantApp(ctx context.Context, tx pgx.Tx, role, password string) error {
	r, events := pgx.Identifier{role}.Sanitize(), pgx.Identifier{SchemaName, "events"}.Sanitize()
	return pgrole.Grant(ctx, tx, SchemaName, role, password,
		`REVOKE ALL ON `+events+` FROM `+r,
		`GRANT `+appPrivileges+` ON `+events+` TO `+r)
}
