package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/views"
	"github.com/pickup-ipfs/pickup/tenant"
)

// defaultTenant is the tenant whose token `pickup run` prepares.
const defaultTenant = "default"

// runAll runs every role in one process on embedded defaults: what
// `make run` starts.
func runAll(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "run")
	b := addBaseFlags(f, "127.0.0.1:9464")
	g := addGatewayFlags(f)
	ff := addFetcherFlags(f)
	pf := addProjectorFlags(f)
	nf := addNotifyFlags(f)
	sf := addServeFlags(f)
	tokenFile := f.string("token-file", "", "where the default tenant's token is kept (default: token beside the event log)", "PICKUP_TOKEN_FILE")
	if err := f.parse(args); err != nil {
		return err
	}
	p, err := b.open(ctx, e, "run")
	if err != nil {
		return err
	}
	fail := func(err error) error { p.close(); return err }
	if err := p.addProjector(ctx, pf, b); err != nil {
		return fail(err)
	}
	if err := p.addNotifier(ctx, nf, *b.eventlog); err != nil {
		return fail(err)
	}
	// The fetcher announces itself in the log before the gateway serves, so
	// the first answer names it.
	announced, err := p.addFetcher(ctx, ff)
	if err != nil {
		return fail(err)
	}
	delegates := *g.delegates
	if len(delegates) == 0 {
		delegates = announced
	}
	served, err := p.addServe(ctx, sf, b)
	if err != nil {
		return fail(err)
	}
	// One gateway takes every write here, so a read waits only for this
	// process's own writes.
	api, err := p.addGateway(ctx, g, gateway.ConsistencyProcess, b)
	if err != nil {
		return fail(err)
	}
	if *tokenFile == "" {
		*tokenFile = filepath.Join(filepath.Dir(*b.eventlog), "token")
	}
	token, err := defaultToken(ctx, p, *tokenFile)
	if err != nil {
		return fail(err)
	}
	admin, err := p.addAdmin(b)
	if err != nil {
		return fail(err)
	}
	if api != nil {
		fmt.Fprintf(e.stdout, "pickup is running.\n  API:    http://%s\n  page:   http://%s/ (sign in with the token)\n  token:  %s (tenant %q, kept in %s)\n  try:    curl -H \"Authorization: Bearer %s\" http://%s/pins\n",
			api.Addr(), api.Addr(), token, defaultTenant, *tokenFile, token, api.Addr())
		fmt.Fprintf(e.stdout, "  serve:  http://%s/ipfs/<cid>?format=car (what is pinned, verified, from the carpark)\n", served.http.Addr())
		fmt.Fprintf(e.stdout, "  routing: http://%s/routing/v1/providers/<cid> (delegated routing: pickup's peer for what is pinned)\n", served.http.Addr())
		fmt.Fprintf(e.stdout, "  bitswap: peer %s at %s\n", served.peer.ID(), strings.Join(multiaddrStrings(served.peer.P2pAddrs()), ", "))
		if admin != nil {
			fmt.Fprintf(e.stdout, "  admin:  http://%s/metrics, /healthz, /readyz\n", admin.Addr())
		}
		if len(delegates) == 0 {
			fmt.Fprintf(e.stdout, "  delegates: none (no source takes bitswap connections, or every fetcher slot is live; --delegates names some): pins through the Pinning Service API answer 503\n")
		} else {
			fmt.Fprintf(e.stdout, "  delegates: %s\n", strings.Join(delegates, ", "))
		}
	}
	return p.serve(ctx, b)
}

// defaultToken returns the default tenant's token kept in path, issuing one
// (and keeping it there) when there is none, or when the log does not know
// the one kept (a log started afresh).
func defaultToken(ctx context.Context, p *proc, path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		token := strings.TrimSpace(string(b))
		known, err := tokenKnown(ctx, p, token)
		if err != nil {
			return "", err
		}
		if known {
			return token, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	token, _, err := issueToken(ctx, p.log, defaultTenant, "pickup run", "pickup run")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep token: %w", err)
	}
	// Bring the views up to the token, so that the token printed works at
	// once.
	if _, err := tokenKnown(ctx, p, token); err != nil {
		return "", err
	}
	return token, nil
}

// tokenKnown reports whether the log issued the token and did not revoke
// it: it brings the views up to the log's head first.
func tokenKnown(ctx context.Context, p *proc, token string) (bool, error) {
	runner, err := projections.NewRunner(projections.RunnerConfig{}, projections.RunnerDeps{Log: p.log, Views: p.views, Logger: p.logger})
	if err != nil {
		return false, err
	}
	head, err := p.log.Head(ctx)
	if err != nil {
		return false, err
	}
	if _, err := runner.CatchUp(ctx, head, nil); err != nil {
		return false, err
	}
	_, err = p.views.TokenTenant(ctx, tenant.HashToken(token))
	switch {
	case errors.Is(err, views.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// issueToken appends a new token of the tenant to the log and returns it;
// the log keeps only its hash.
func issueToken(ctx context.Context, log eventlog.Store, name, label, actor string) (string, tenant.TokenIssued, error) {
	secret, issued, err := tenant.Issue(name, label, time.Now())
	if err != nil {
		return "", issued, fmt.Errorf("%w: %v", errUsage, err)
	}
	ev, err := tenant.Proposal(issued, uuid.New(), eventlog.Metadata{Actor: actor, Time: issued.Created})
	if err != nil {
		return "", issued, err
	}
	if _, err := log.Append(ctx, tenant.Stream(issued.TokenID), eventlog.NoStream, ev); err != nil {
		return "", issued, fmt.Errorf("issue token: %w", err)
	}
	return secret, issued, nil
}
