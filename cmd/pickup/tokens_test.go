package main

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	viewembedded "github.com/pickup-ipfs/pickup/projections/embedded"
	"github.com/pickup-ipfs/pickup/projections/views"
	"github.com/pickup-ipfs/pickup/tenant"
)

// tokenFromOutput reads the token and its id from tokens create's output.
var tokenLine = regexp.MustCompile(`(?m)^token:\s+(\S+)\nid:\s+(\S+)\n`)

func TestTokensCreateRevokeAndList(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	vars := map[string]string{"PICKUP_EVENTLOG": filepath.Join(dir, "events.db"), "PICKUP_VIEWS": filepath.Join(dir, "views.db")}
	e, out, errs := testEnv(vars)
	if code := run(ctx, e, []string{"tokens", "create", "--tenant", "alice", "--label", "ci"}); code != 0 {
		t.Fatalf("create: exit %d: %s", code, errs)
	}
	m := tokenLine.FindStringSubmatch(out.String())
	if m == nil || !strings.HasPrefix(m[1], tenant.TokenPrefix) {
		t.Fatalf("create printed %q, want the token and its id", out)
	}
	token, id := m[1], m[2]
	if !strings.Contains(errs.String(), "cannot show it again") {
		t.Errorf("create did not warn that the token is shown once: %q", errs)
	}

	// ls catches the views up and lists the token, never the secret or its hash.
	e, out, errs = testEnv(vars)
	if code := run(ctx, e, []string{"tokens", "ls"}); code != 0 {
		t.Fatalf("ls: exit %d: %s", code, errs)
	}
	h := tenant.HexHash(token)
	if !strings.Contains(out.String(), id) || !strings.Contains(out.String(), "alice") || !strings.Contains(out.String(), "active") ||
		strings.Contains(out.String(), token) || strings.Contains(out.String(), h) {
		t.Errorf("ls printed:\n%s", out)
	}
	vs, err := viewembedded.Open(ctx, vars["PICKUP_VIEWS"], viewembedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := vs.TokenTenant(ctx, tenant.HashToken(token)); err != nil || got != "alice" {
		t.Errorf("the views know the token as %q, %v", got, err)
	}
	vs.Close()

	for i := range 2 { // the second revocation is a no-op
		e, out, errs = testEnv(vars)
		if code := run(ctx, e, []string{"tokens", "revoke", id}); code != 0 {
			t.Fatalf("revoke %d: exit %d: %s", i, code, errs)
		}
	}
	if !strings.Contains(out.String(), "already revoked") {
		t.Errorf("second revoke printed %q", out)
	}
	e, out, _ = testEnv(vars)
	run(ctx, e, []string{"tokens", "ls", "--tenant", "alice"})
	if !strings.Contains(out.String(), "revoked") {
		t.Errorf("ls after revoke:\n%s", out)
	}
	store, err := viewembedded.Open(ctx, vars["PICKUP_VIEWS"], viewembedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.TokenTenant(ctx, tenant.HashToken(token)); !errors.Is(err, views.ErrNotFound) {
		t.Errorf("a revoked token still resolves: %v", err)
	}
}

func TestTokensRefuseBadInput(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"PICKUP_EVENTLOG": filepath.Join(dir, "events.db"), "PICKUP_VIEWS": filepath.Join(dir, "views.db")}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"tokens"}, 2},
		{[]string{"tokens", "create"}, 2},
		{[]string{"tokens", "create", "--tenant", "not valid"}, 2},
		{[]string{"tokens", "revoke", "nope"}, 2},
		{[]string{"tokens", "revoke", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"}, 1},
		{[]string{"tokens", "frobnicate"}, 2},
	} {
		e, _, errs := testEnv(vars)
		if code := run(context.Background(), e, c.args); code != c.code {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, code, c.code, errs)
		}
	}
}
