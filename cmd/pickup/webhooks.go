package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/internal/termsafe"
	"github.com/pickup-ipfs/pickup/notify"
	"github.com/pickup-ipfs/pickup/tenant"
)

// runWebhooks registers, lists and removes tenants' webhooks. Each change
// is an event in the log's webhooks stream; listing folds that stream.
func runWebhooks(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: webhooks add --tenant NAME --url URL [--events pinned,failed] | webhooks ls [--tenant NAME] | webhooks rm ID", errUsage)
	}
	switch args[0] {
	case "add":
		return webhooksAdd(ctx, e, args[1:])
	case "ls", "list":
		return webhooksList(ctx, e, args[1:])
	case "rm", "remove":
		return webhooksRemove(ctx, e, args[1:])
	case "-h", "--help", "help":
		for _, sub := range []func(context.Context, *env, []string) error{webhooksAdd, webhooksList, webhooksRemove} {
			sub(ctx, e, []string{"-h"})
		}
		return nil
	}
	return fmt.Errorf("%w: unknown webhooks command %q (want add, ls or rm)", errUsage, args[0])
}

// readWebhooks reads the webhooks stream and folds it into the registry.
func readWebhooks(ctx context.Context, log eventlog.Store) (tenant.Webhooks, error) {
	var all []eventlog.Event
	for from := uint64(0); ; {
		evs, err := log.ReadStream(ctx, tenant.WebhooksStream, from, eventlog.Forwards, 1000)
		if err != nil {
			return tenant.Webhooks{}, fmt.Errorf("read webhooks: %w", err)
		}
		all = append(all, evs...)
		if len(evs) < 1000 {
			break
		}
		from = evs[len(evs)-1].Revision + 1
	}
	return tenant.FoldWebhooks(all)
}

// changeWebhooks decides on the registry as it is and appends the decision
// at the revision read; when another change got there first, it decides
// again on the new registry.
func changeWebhooks(ctx context.Context, log eventlog.Store, decide func(*tenant.Webhooks) (eventlog.Proposed, error)) error {
	for range 5 {
		reg, err := readWebhooks(ctx, log)
		if err != nil {
			return err
		}
		ev, err := decide(&reg)
		if err != nil {
			return err
		}
		_, err = log.Append(ctx, tenant.WebhooksStream, reg.Expected(), ev)
		if !eventlog.IsWrongRevision(err) {
			return err
		}
	}
	return errors.New("the webhooks kept changing; try again")
}

func webhooksAdd(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "webhooks add")
	stores := addLogFlags(f)
	keyFlag := webhookKeyFlag(f)
	allowPrivate := allowPrivateWebhooksFlag(f)
	name := f.String("tenant", "", "the tenant whose pins the webhook hears of")
	rawURL := f.String("url", "", "where deliveries are POSTed: https://, public")
	events := f.String("events", "pinned,failed", "what the webhook hears of: pinned, failed, or both")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup webhooks add --tenant NAME --url URL [--events pinned,failed]: register a webhook; its signing secret is printed once")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return fmt.Errorf("%w: webhooks add takes no arguments", errUsage)
	}
	evs, err := tenant.ParseWebhookEvents(*events)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// Refuse bad input before anything is made or opened.
	var scratch tenant.Webhooks
	if _, err := scratch.Register(*name, *rawURL, evs, "check", *allowPrivate, time.Now()); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	keySource, err := webhookKey(*keyFlag, *stores.eventlog, true)
	if err != nil {
		return err
	}
	key, err := keySource()
	if err != nil {
		return err
	}
	log, err := stores.openLog(ctx)
	if err != nil {
		return err
	}
	defer log.Close()
	var added tenant.WebhookRegistered
	err = changeWebhooks(ctx, log, func(reg *tenant.Webhooks) (eventlog.Proposed, error) {
		w, err := reg.Register(*name, *rawURL, evs, notify.KeyID(key), *allowPrivate, time.Now())
		if err != nil {
			return eventlog.Proposed{}, fmt.Errorf("%w: %v", errUsage, err)
		}
		added = w
		return tenant.Proposal(w, uuid.New(), eventlog.Metadata{Actor: adminActor, Time: w.Created})
	})
	if err != nil {
		return fmt.Errorf("add webhook: %w", err)
	}
	fmt.Fprintf(e.stdout, "secret: %s\nid:     %s\ntenant: %s\nurl:    %s\nevents: %s\n",
		notify.Secret(key, added.WebhookID), added.WebhookID, added.Tenant, added.URL, joinEvents(added.Events))
	fmt.Fprintln(e.stderr, "Give the secret to the receiver now, to verify the Pickup-Signature header: pickup does not show it again.")
	return nil
}

func joinEvents(evs []tenant.WebhookEvent) string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = string(e)
	}
	return strings.Join(s, ",")
}

func webhooksList(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "webhooks ls")
	stores := addLogFlags(f)
	name := f.String("tenant", "", "list only this tenant's webhooks")
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup webhooks ls [--tenant NAME]: list webhooks (never their secrets)")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return fmt.Errorf("%w: webhooks ls takes no arguments", errUsage)
	}
	log, err := stores.openLog(ctx)
	if err != nil {
		return err
	}
	defer log.Close()
	reg, err := readWebhooks(ctx, log)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tEVENTS\tCREATED\tURL")
	for _, w := range reg.List(*name) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", w.WebhookID, termsafe.String(w.Tenant), joinEvents(w.Events), w.Created.Format(time.RFC3339), termsafe.String(w.URL))
	}
	return tw.Flush()
}

func webhooksRemove(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "webhooks rm")
	stores := addLogFlags(f)
	f.Usage = func() {
		fmt.Fprintln(f.Output(), "pickup webhooks rm ID: stop a webhook; deliveries still pending for it are abandoned")
		f.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() != 1 {
		return fmt.Errorf("%w: webhooks rm takes one webhook id", errUsage)
	}
	id, err := uuid.Parse(f.Arg(0))
	if err != nil {
		return fmt.Errorf("%w: webhook id %q: %v", errUsage, f.Arg(0), err)
	}
	log, err := stores.openLog(ctx)
	if err != nil {
		return err
	}
	defer log.Close()
	err = changeWebhooks(ctx, log, func(reg *tenant.Webhooks) (eventlog.Proposed, error) {
		rm, err := reg.Remove(id)
		if err != nil {
			return eventlog.Proposed{}, err
		}
		return tenant.Proposal(rm, tenant.WebhookRemovalID(id), eventlog.Metadata{Actor: adminActor, Time: time.Now()})
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "webhook %s removed\n", id)
	return nil
}
