// Package pgrole creates the least-privileged PostgreSQL role pickup's
// stores run as: the one step the views' setup (projections/postgres) and
// the event log's (eventlog/postgres) share.
package pgrole

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Grant creates role with password, or updates its password, in tx's
// database, and leaves it only CONNECT on the database, USAGE on schema and
// what tableGrants (statements the caller builds with pgx.Identifier) give
// it, taking from it any right to create (on the database, on schema, and
// on public where it exists: up to PostgreSQL 14 every role may create
// there; PUBLIC's grant is the operator's to take back). It refuses the
// role running tx and superusers: the application gets a role of its own.
func Grant(ctx context.Context, tx pgx.Tx, schema, role, password string, tableGrants ...string) error {
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
		// Another setup (the other store's, or another database's on the
		// server) may create the same role at the same time: then it
		// exists, and is altered below.
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			_, err := sp.Exec(ctx, `CREATE ROLE `+r+` LOGIN PASSWORD `+literal)
			return err
		})
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == "23505")) {
			return fmt.Errorf("create role %s: %w", role, err)
		}
	}
	s, d := pgx.Identifier{schema}.Sanitize(), pgx.Identifier{db}.Sanitize()
	stmts := append([]string{
		`ALTER ROLE ` + r + ` LOGIN PASSWORD ` + literal,
		`GRANT CONNECT ON DATABASE ` + d + ` TO ` + r,
		`REVOKE CREATE ON DATABASE ` + d + ` FROM ` + r,
		`REVOKE CREATE ON SCHEMA ` + s + ` FROM ` + r,
		`GRANT USAGE ON SCHEMA ` + s + ` TO ` + r,
	}, tableGrants...)
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
