package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
// use, taking from it any right to create.
func grantApp(ctx context.Context, tx pgx.Tx, role, password string) error {
	var admin, db string
	if err := tx.QueryRow(ctx, `SELECT current_user, current_database()`).Scan(&admin, &db); err != nil {
		return err
	}
	if role == admin {
		return fmt.Errorf("the app role %q is the role running setup: give the application a role of its own", role)
	}
	var super bool
	err := tx.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = $1`, role).Scan(&super)
	exists := err == nil
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return err
	case super:
		return fmt.Errorf("the app role %q is a superuser: give the application a role of its own", role)
	}
	var literal string
	if err := tx.QueryRow(ctx, `SELECT format('%L', $1::text)`, password).Scan(&literal); err != nil {
		return err
	}
	r := pgx.Identifier{role}.Sanitize()
	if !exists {
		// The views' setup may create the same role at the same time (one
		// app role for both): then it exists, and is altered below.
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			_, err := sp.Exec(ctx, `CREATE ROLE `+r+` LOGIN PASSWORD `+literal)
			return err
		})
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == "23505")) {
			return fmt.Errorf("create role %s: %w", role, err)
		}
	}
	s, d := pgx.Identifier{SchemaName}.Sanitize(), pgx.Identifier{db}.Sanitize()
	stmts := []string{
		`ALTER ROLE ` + r + ` LOGIN PASSWORD ` + literal,
		`GRANT CONNECT ON DATABASE ` + d + ` TO ` + r,
		`REVOKE CREATE ON DATABASE ` + d + ` FROM ` + r,
		`REVOKE CREATE ON SCHEMA ` + s + ` FROM ` + r,
		`GRANT USAGE ON SCHEMA ` + s + ` TO ` + r,
		`REVOKE ALL ON ` + s + `.events FROM ` + r,
		`GRANT ` + appPrivileges + ` ON ` + s + `.events TO ` + r,
	}
	var public bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public')`).Scan(&public); err != nil {
		return err
	}
	if public {
		stmts = append(stmts, `REVOKE CREATE ON SCHEMA public FROM `+r)
	}
	for _, stmt := range stmts {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", strings.ReplaceAll(stmt, literal, "'…'"), err)
		}
	}
	return nil
}
