package main

import (
	"context"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPostgresSecret(t *testing.T) {
	for _, c := range []struct {
		name, secret, views, want string
		bad                       bool
	}{
		{"a URL", "postgres://u:p@db:5432/pickup", "", "postgres://u:p@db:5432/pickup", false},
		{"a full RDS secret", `{"username":"u","password":"p w","host":"db.example","port":5433,"dbname":"pickup"}`, "", "postgres://u:p%20w@db.example:5433/pickup?sslmode=require", false},
		{"RDS's managed master secret, completed by the views URL", `{"username":"pickup","password":"s3cret"}`,
			"postgres://proxy.example:5432/pickup?sslmode=require", "postgres://pickup:s3cret@proxy.example:5432/pickup?sslmode=require", false},
		{"no host anywhere", `{"username":"u","password":"p"}`, "data/views.db", "", true},
		{"not a secret pickup reads", `{"user":"u"}`, "", "", true},
		{"garbage", "hello", "", "", true},
	} {
		got, err := postgresSecret(c.secret, c.views)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("%s: got %q, %v; want %q (error %v)", c.name, got, err, c.want, c.bad)
		}
	}
}

func TestFlagsReadTheirVariables(t *testing.T) {
	vars := map[string]string{
		"FETCH_TIMEOUT_MS":       "90000",
		"PICKUP_MAX_CAR_BYTES":   "2GiB",
		"BATCH_SIZE":             "3",
		"PICKUP_SOURCES":         "kubo, gateway",
		"FETCH_CHUNK_TIMEOUT":    "45s",
		"FETCH_CHUNK_TIMEOUT_MS": "1",
	}
	e, _, _ := testEnv(vars)
	f := newFlags(e, "test")
	ff := addFetcherFlags(f)
	if err := f.parse(nil); err != nil {
		t.Fatal(err)
	}
	if *ff.fetchTimeout != 90*time.Second || *ff.maxCAR != 2<<30 || *ff.batch != 3 || strings.Join(*ff.sources, "|") != "kubo|gateway" || *ff.chunkTimeout != 45*time.Second {
		t.Errorf("read fetch timeout %v, max CAR %d, batch %d, sources %v, chunk timeout %v", *ff.fetchTimeout, *ff.maxCAR, *ff.batch, *ff.sources, *ff.chunkTimeout)
	}
	// A flag wins over its variable.
	f = newFlags(e, "test")
	ff = addFetcherFlags(f)
	if err := f.parse([]string{"--batch-size", "7", "--fetch-timeout", "1h"}); err != nil || *ff.batch != 7 || *ff.fetchTimeout != time.Hour {
		t.Errorf("flags over variables: batch %d, timeout %v, %v", *ff.batch, *ff.fetchTimeout, err)
	}
	// A variable that does not parse is a usage error naming it.
	for name, bad := range map[string]string{"PICKUP_BATCH_SIZE": "ten", "FETCH_TIMEOUT_MS": "4h", "PICKUP_MAX_CAR_BYTES": "big", "PICKUP_EMF": "maybe"} {
		e, _, _ := testEnv(map[string]string{name: bad})
		f := newFlags(e, "test")
		addFetcherFlags(f)
		addBaseFlags(f, "")
		if err := f.parse(nil); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: error %v, want a usage error naming the variable", name, bad, err)
		}
	}
}

// The projector's batch comes from PICKUP_VIEWS_BATCH or --views-batch; a
// batch under one is a usage error, not a projector started with the
// default.
func TestViewsBatch(t *testing.T) {
	e, _, _ := testEnv(map[string]string{"PICKUP_VIEWS_BATCH": "4096"})
	f := newFlags(e, "test")
	pf := addProjectorFlags(f)
	if err := f.parse(nil); err != nil || *pf.viewsBatch != 4096 {
		t.Fatalf("PICKUP_VIEWS_BATCH=4096: batch %d, %v", *pf.viewsBatch, err)
	}
	dir := t.TempDir()
	for _, args := range [][]string{
		{"projector", "--views-batch", "0"},
		{"projector", "--views-batch", "-5"},
		{"run", "--views-batch", "0"},
	} {
		args = append(args, "--eventlog", dir+"/events.db", "--views", dir+"/views.db", "--admin-addr", "")
		e, _, errs := testEnv(nil)
		// Were the batch taken, the role would run until stopped.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := run(ctx, e, args)
		cancel()
		if code != 2 || !strings.Contains(errs.String(), "views-batch") {
			t.Errorf("%v: exit %d, stderr %q; want 2, naming --views-batch", args, code, errs)
		}
	}
}

// TestDocumentedSettingsAreRead checks that every PICKUP_* variable
// README.md names is read by some command.
func TestDocumentedSettingsAreRead(t *testing.T) {
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var usage strings.Builder
	for _, c := range commands() {
		e := &env{stdout: &usage, stderr: &usage, getenv: func(string) string { return "" }}
		c.run(context.Background(), e, []string{"-h"})
	}
	for _, sub := range [][]string{{"events", "cat", "-h"}, {"tokens", "create", "-h"}} {
		e := &env{stdout: &usage, stderr: &usage, getenv: func(string) string { return "" }}
		run(context.Background(), e, sub)
	}
	read := usage.String()
	for _, name := range regexp.MustCompile(`PICKUP_[A-Z0-9_]+`).FindAllString(string(doc), -1) {
		if !strings.Contains(read, name) {
			t.Errorf("README.md names %s, but no command reads it", name)
		}
	}
}

func TestLambdaRunsTheGateway(t *testing.T) {
	e, _, errs := testEnv(map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "PICKUP_HTTP_MAX_CONNS": "many"})
	// A setting only the gateway reads, refused: proof that it was the
	// gateway that started.
	if code := run(context.Background(), e, nil); code != 2 || !strings.Contains(errs.String(), "pickup gateway") || !strings.Contains(errs.String(), "PICKUP_HTTP_MAX_CONNS") {
		t.Errorf("no arguments on Lambda: exit %d, stderr %q; want the gateway's usage error", code, errs)
	}
}

func TestHealth(t *testing.T) {
	h := newHealth()
	ready := false
	h.add("test", func(context.Context) error {
		if !ready {
			return context.DeadlineExceeded
		}
		return nil
	})
	srv := httptest.NewServer(adminHandler(newRegistry(), h))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	e, out, errs := testEnv(nil)
	if code := run(context.Background(), e, []string{"health", addr}); code != 1 || !strings.Contains(errs.String(), "not ready") {
		t.Errorf("not ready: exit %d, stderr %q", code, errs)
	}
	// Not ready, yet serving: --live (what ECS asks) passes.
	if code := run(context.Background(), e, []string{"health", "--live", addr}); code != 0 || !strings.Contains(out.String(), `"ok"`) {
		t.Errorf("--live while not ready: exit %d, stdout %q, stderr %q; want 0", code, out, errs)
	}
	ready = true
	if code := run(context.Background(), e, []string{"health", addr}); code != 0 || !strings.Contains(out.String(), "ready") {
		t.Errorf("ready: exit %d, stdout %q", code, out)
	}
	// A process that does not answer is not live.
	srv.Close()
	errs.Reset()
	if code := run(context.Background(), e, []string{"health", "--live", addr}); code != 1 || errs.Len() == 0 {
		t.Errorf("--live with nothing listening: exit %d, stderr %q; want 1 and the reason", code, errs)
	}
}
