package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The cache's rules on a clock of the test's: the credentials are reused
// for the TTL, asked for again after it, and at once after the server
// refused them, unless newer ones replaced them meanwhile. (The refusal by
// a real server, and the retry, are TestRotatedPasswordWithoutReopening's.)
func TestCredentialCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	passwords := []string{"one", "two", "three"}
	asked := 0
	c := &credentialCache{ttl: time.Minute, now: func() time.Time { return now },
		get: func(context.Context) (string, string, error) {
			asked++
			return "app", passwords[min(asked, len(passwords))-1], nil
		}}
	connect := func() (string, func(*pgconn.PgError) bool) {
		cfg, err := pgx.ParseConfig("postgres://127.0.0.1:1/db")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.beforeConnect(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		return cfg.Password, func(e *pgconn.PgError) bool { return cfg.OnPgError(nil, e) }
	}

	first, refuse := connect()
	if again, _ := connect(); first != "one" || again != "one" || asked != 1 {
		t.Fatalf("within the TTL: %q then %q, asked %d times; want one ask", first, again, asked)
	}
	now = now.Add(time.Minute)
	if p, _ := connect(); p != "two" || asked != 2 {
		t.Fatalf("after the TTL: %q, asked %d times; want a second ask", p, asked)
	}
	// A late refusal of the first password leaves the second cached.
	refuse(&pgconn.PgError{Severity: "FATAL", Code: "28P01"})
	if p, refuseSecond := connect(); p != "two" || asked != 2 {
		t.Fatalf("after an old password's refusal: %q, asked %d times; want the second kept", p, asked)
	} else if refuseSecond(&pgconn.PgError{Severity: "FATAL", Code: "28P01"}) {
		t.Fatal("a refusal at connect no longer closes the connection (pgx's default handler)")
	}
	if p, _ := connect(); p != "three" || asked != 3 {
		t.Fatalf("after the current password's refusal: %q, asked %d times; want a new ask at once", p, asked)
	}
	// Another error of the server forgets nothing.
	_, refuse = connect()
	refuse(&pgconn.PgError{Severity: "ERROR", Code: "42P01"})
	if p, _ := connect(); p != "three" || asked != 3 {
		t.Fatalf("after an error that is no refusal: %q, asked %d times", p, asked)
	}
}
