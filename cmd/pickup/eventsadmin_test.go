package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/postgrestest"
)

// The deployment's path for a PostgreSQL event log: `pickup events setup`
// with the master secret from Secrets Manager and the app secret
// injected (twice: every deploy runs it), then a role's log opened as the
// app role through PICKUP_EVENTLOG (no password) and
// PICKUP_EVENTLOG_SECRET_ARN (the RDS-style app secret): it appends, reads
// and follows (LISTEN), and may do nothing else; after a rotation of the
// app secret a new connection (the listener's) reads it again.
func TestEventsSetupAndAppRole(t *testing.T) {
	ctx := context.Background()
	admin := startPostgres(t)
	secrets := startSecrets(t)
	const adminARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-events"
	const appARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:pickup-eventlog-app"
	secrets.set(adminARN, `{"username":"postgres","password":"`+postgrestest.SuperuserPassword+`"}`)
	appSecret := `{"username":"pickup_events_app","password":"first password"}`
	secrets.set(appARN, appSecret)
	u, _ := url.Parse(admin)
	u.User = nil
	logURL := u.String()

	setup := map[string]string{"PICKUP_EVENTLOG": logURL, "PICKUP_EVENTLOG_ADMIN_SECRET_ARN": adminARN, "PICKUP_EVENTLOG_APP_SECRET": appSecret}
	for range 2 {
		e, out, errs := testEnv(setup)
		if code := run(ctx, e, []string{"events", "setup"}); code != 0 || !strings.Contains(out.String(), "for role pickup_events_app") {
			t.Fatalf("events setup: exit %d, stdout %q, stderr %q", code, out, errs)
		}
	}

	flags := &storeFlags{eventlog: &logURL, eventlogSecret: ptr(appARN)}
	log, err := flags.openLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	ev := eventlog.Proposed{ID: uuid.New(), Type: "Tested", Version: 1, Data: json.RawMessage(`{}`), Meta: eventlog.Metadata{Actor: "test", Time: time.Now()}}
	if _, err := log.Append(ctx, "pin-a", eventlog.NoStream, ev); err != nil {
		t.Fatalf("append as the app role: %v", err)
	}

	adminExec(t, admin, `ALTER ROLE pickup_events_app PASSWORD 'second password'`)
	secrets.set(appARN, `{"username":"pickup_events_app","password":"second password"}`)
	before := secrets.readsOf(appARN)
	// The first subscription opens the listener's connection: a new one,
	// with the rotated password; it must LISTEN, or the event appended
	// next would wait for the poll.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	seen := 0
	appended := make(chan error, 1)
	err = log.Subscribe(sctx, 0, eventlog.Filter{}, func(evs []eventlog.Event) error {
		if seen += len(evs); seen == 1 {
			go func() {
				next := ev
				next.ID = uuid.New()
				_, err := log.Append(ctx, "pin-b", eventlog.NoStream, next)
				appended <- err
			}()
		}
		if seen >= 2 {
			cancel()
		}
		return nil
	})
	if seen != 2 || !errors.Is(err, context.Canceled) {
		t.Fatalf("subscription as the app role: %d events, %v; want 2, then cancelled", seen, err)
	}
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if secrets.readsOf(appARN) == before {
		t.Fatal("the app secret was not read again for a new connection")
	}

	// What the app role may not do: rewrite the log, or create anything.
	app := *u
	app.User = url.UserPassword("pickup_events_app", "second password")
	conn, err := pgx.Connect(ctx, app.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		`DELETE FROM pickup_events.events`,
		`UPDATE pickup_events.events SET type = 'x'`,
		`TRUNCATE pickup_events.events`,
		`CREATE TABLE pickup_events.more (n int)`,
		`CREATE SCHEMA elsewhere`,
		`CREATE TABLE public.more (n int)`,
	} {
		if _, err := conn.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as the app role: %v; want permission denied", stmt, err)
		}
	}
	if _, err := conn.Exec(ctx, `LISTEN pickup_events`); err != nil {
		t.Errorf("LISTEN as the app role: %v", err)
	}
}

// PICKUP_EVENTLOG_SECRET_ARN holding a whole postgres:// URL (password
// included) still opens the log, with no PICKUP_EVENTLOG at all; so does
// one holding another connection string (here a file).
func TestEventLogSecretHoldingAURL(t *testing.T) {
	ctx := context.Background()
	admin := startPostgres(t)
	secrets := startSecrets(t)
	const arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:pickup-eventlog"
	secrets.set(arn, admin+"\n")
	flags := &storeFlags{eventlog: ptr(defaultEventLog), eventlogSecret: ptr(arn)}
	log, err := flags.openLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if _, err := log.Head(ctx); err != nil {
		t.Fatal(err)
	}
	// Any other connection string (esdb://, or a file, which the
	// deployment test puts there for EventStoreDB) is the log itself.
	secrets.set(arn, filepath.Join(t.TempDir(), "events.db"))
	embeddedLog, err := flags.openLog(ctx)
	if err != nil {
		t.Fatalf("a secret naming a file: %v", err)
	}
	embeddedLog.Close()
	// An RDS-style secret needs PICKUP_EVENTLOG's URL to complete.
	secrets.set(arn, `{"username":"pickup_events_app","password":"p"}`)
	if _, err := flags.openLog(ctx); err == nil || !strings.Contains(err.Error(), "no postgres:// URL") {
		t.Fatalf("a JSON secret with the embedded default: %v; want a refusal naming the URL it lacks", err)
	}
}

func TestEventsSetupRefusesBadInput(t *testing.T) {
	const at = "postgres://127.0.0.1:1/pickup?sslmode=disable"
	for _, c := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"no database", nil, "PICKUP_EVENTLOG"},
		{"a file, not a database", map[string]string{"PICKUP_EVENTLOG": "data/events.db"}, "postgres://"},
		{"an admin secret pickup cannot read", map[string]string{"PICKUP_EVENTLOG": at, "PICKUP_EVENTLOG_ADMIN_SECRET": "hunter2"}, "admin secret"},
		{"an app secret without a user", map[string]string{"PICKUP_EVENTLOG": at, "PICKUP_EVENTLOG_APP_SECRET": `{"password":"p"}`}, "app secret"},
	} {
		e, _, errs := testEnv(c.vars)
		if code := run(context.Background(), e, []string{"events", "setup"}); code != 2 || !strings.Contains(errs.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2, naming %q", c.name, code, errs, c.want)
		}
	}
	e, _, errs := testEnv(map[string]string{"PICKUP_EVENTLOG": at, "PICKUP_EVENTLOG_APP_SECRET": `{"username":"a"}`})
	if code := run(context.Background(), e, []string{"events", "setup"}); code == 0 || !strings.Contains(errs.String(), "no password") {
		t.Errorf("an app secret without a password: exit %d, stderr %q", code, errs)
	}
}

func ptr(s string) *string { return &s }
