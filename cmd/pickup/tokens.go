package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/termsafe"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/tenant"
)

// runTokens issues, revokes and lists tenants' bearer tokens. Issuing and
// revoking append to the log; listing reads the views, caught up first.
func runTokens(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: tokens create --tenant NAME [--label L] | tokens revoke ID | tokens ls [--tenant NAME]", errUsage)
	}
	switch args[0] {
	case "create":
		return tokensCreate(ctx, e, args[1:])
	case "revoke":
		return tokensRevoke(ctx, e, args[1:])
	case "ls", "list":
		return tokensList(ctx, e, args[1:])
	case "-h", "--help", "help":
		for _, sub := range []func(context.Context, *env, []string) error{tokensCreate, tokensRevoke, tokensList} {
			sub(ctx, e, []string{"-h"})
		}
		return nil
	}
	return fmt.Errorf("%w: unknown tokens command %q (want create, revoke or ls)", errUsage, args[0])
}

// adminActor is the actor recorded for token events appended by the CLI.
const adminActor = "admin"

func tokensCreate(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "tokens create")
	stores := addLogFlags(f)
	name := f.String("tenant", "", "the tenant the token acts as (letters, digits, '.', '_', '-')")
	label := f.String("label", "", "a note to tell tokens apart, such as where the token is used")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup tokens create --tenant NAME [--label L]: issue a bearer token; it is printed once, only its hash is kept")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return fmt.Errorf("%w: tokens create takes no arguments", errUsage)
	}
	secret, issued, err := tenant.Issue(*name, *label, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log, err := stores.openLog(ctx)
	if err != nil {
		return err
	}
	defer log.Close()
	ev, err := tenant.Proposal(issued, uuid.New(), eventlog.Metadata{Actor: adminActor, Time: issued.Created})
	if err != nil {
		return err
	}
	if _, err := log.Append(ctx, tenant.Stream(issued.TokenID), eventlog.NoStream, ev); err != nil {
		return fmt.Errorf("issue token: %w", err)
	}
	fmt.Fprintf(e.stdout, "token:  %s\nid:     %s\ntenant: %s\n", secret, issued.TokenID, issued.Tenant)
	fmt.Fprintln(e.stderr, "Keep the token now: pickup stores only its hash and cannot show it again.")
	return nil
}

func tokensRevoke(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "tokens revoke")
	stores := addLogFlags(f)
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup tokens revoke ID: stop a token from acting as its tenant")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 1 {
		return fmt.Errorf("%w: tokens revoke takes one token id", errUsage)
	}
	id, err := uuid.Parse(f.Arg(0))
	if err != nil {
		return fmt.Errorf("%w: token id %q: %v", errUsage, f.Arg(0), err)
	}
	log, err := stores.openLog(ctx)
	if err != nil {
		return err
	}
	defer log.Close()
	stream := tenant.Stream(id)
	evs, err := log.ReadStream(ctx, stream, 0, eventlog.Forwards, 100)
	if err != nil {
		return fmt.Errorf("read token %s: %w", id, err)
	}
	if len(evs) == 0 {
		return fmt.Errorf("no token %s", id)
	}
	for _, ev := range evs {
		if ev.Type == tenant.TypeTokenRevoked {
			fmt.Fprintf(e.stdout, "token %s was already revoked\n", id)
			return nil
		}
	}
	ev, err := tenant.Proposal(tenant.TokenRevoked{TokenID: id}, tenant.RevocationID(id), eventlog.Metadata{Actor: adminActor, Time: time.Now()})
	if err != nil {
		return err
	}
	if _, err := log.Append(ctx, stream, eventlog.At(evs[len(evs)-1].Revision), ev); err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	fmt.Fprintf(e.stdout, "token %s revoked\n", id)
	return nil
}

func tokensList(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "tokens ls")
	stores := addStoreFlags(f)
	name := f.String("tenant", "", "list only this tenant's tokens")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup tokens ls [--tenant NAME]: list tokens (ids, tenants, labels; never the tokens or their hashes)")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return fmt.Errorf("%w: tokens ls takes no arguments", errUsage)
	}
	log, err := stores.openLog(ctx)
	if err != nil {
		return err
	}
	defer log.Close()
	views, err := stores.openViews(ctx)
	if err != nil {
		return err
	}
	defer views.Close()
	// The views may be behind (no projector running): catch them up, so
	// that a token just issued is listed. Runners may share views.
	if err := catchUp(ctx, log, views, e, nil); err != nil {
		return err
	}
	tokens, err := views.Tokens(ctx, *name)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tLABEL\tCREATED\tSTATE")
	for _, t := range tokens {
		state := "active"
		if t.Revoked {
			state = "revoked"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, termsafe.String(t.Tenant), termsafe.String(t.Label), t.Created.Format(time.RFC3339), state)
	}
	return tw.Flush()
}

// catchUp applies the log to the views up to its head, calling progress
// after each batch.
func catchUp(ctx context.Context, log eventlog.Store, views projections.Applier, e *env, progress func(eventlog.Position)) error {
	r, err := projections.NewRunner(projections.RunnerConfig{}, projections.RunnerDeps{Log: log, Views: views, Logger: toolLogger(e)})
	if err != nil {
		return err
	}
	head, err := log.Head(ctx)
	if err != nil {
		return fmt.Errorf("read log head: %w", err)
	}
	cp, err := r.CatchUp(ctx, head, progress)
	if err != nil {
		return fmt.Errorf("catch the views up: %w", err)
	}
	if cp < head {
		return errors.New("catch the views up: the log ended before its head")
	}
	return nil
}

// toolLogger is the logger of the operator's tools: errors only, as text
// on stderr, beside what the tool prints.
func toolLogger(e *env) *slog.Logger {
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}
