package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/internal/postgrestest"
	"github.com/pickup-ipfs/pickup/notify"
	"github.com/pickup-ipfs/pickup/projections"
	"github.com/pickup-ipfs/pickup/projections/postgres"
	"github.com/pickup-ipfs/pickup/projections/views"
	"github.com/pickup-ipfs/pickup/tenant"
)

// secretsStandIn is a Secrets Manager that answers GetSecretValue from a
// map, over its JSON protocol, on loopback: Secrets Manager cannot run
// here, and this is the one call pickup makes of it. It counts the reads
// of each secret.
type secretsStandIn struct {
	mu     sync.Mutex
	values map[string]string
	reads  map[string]int
}

func (s *secretsStandIn) set(id, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[id] = value
}

func (s *secretsStandIn) readsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[id]
}

func (s *secretsStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ SecretId string }
	if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || json.NewDecoder(r.Body).Decode(&in) != nil {
		http.Error(w, `{"__type":"InvalidRequestException","message":"only GetSecretValue"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	v, ok := s.values[in.SecretId]
	s.reads[in.SecretId]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`))
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"ARN": in.SecretId, "Name": in.SecretId, "SecretString": v,
		"VersionId": "00000000-0000-0000-0000-000000000001", "VersionStages": []string{"AWSCURRENT"}, "CreatedDate": 1.7e9})
}

// startSecrets starts the stand-in and points the AWS SDK at it.
func startSecrets(t *testing.T) *secretsStandIn {
	s := &secretsStandIn{values: map[string]string{}, reads: map[string]int{}}
	srv := httptest.NewServer(s) // 127.0.0.1
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	return s
}

// startPostgres starts a server whose TCP connections need passwords, and
// returns the superuser's URL of a new database.
func startPostgres(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := postgrestest.Start(ctx, postgrestest.Options{Passwords: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	u, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func adminExec(t *testing.T, admin, sql string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// The deployment's path: `pickup views setup` with the master secret from
// Secrets Manager and the app secret injected, then a role's process
// connecting as the app role through PICKUP_VIEWS_SECRET_ARN; the app
// secret rotated (the role's password and the secret's value), and a new
// connection of the running store reads it again and connects.
func TestViewsSetupAndRotatedSecret(t *testing.T) {
	ctx := context.Background()
	admin := startPostgres(t)
	secrets := startSecrets(t)
	const adminARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-abc"
	const appARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:pickup-views-app"
	secrets.set(adminARN, `{"username":"postgres","password":"`+postgrestest.SuperuserPassword+`"}`)
	appSecret := `{"username":"pickup_app","password":"first password"}`
	secrets.set(appARN, appSecret)
	u, _ := url.Parse(admin)
	u.User = nil
	views := u.String() // no password: the secrets give them

	setup := map[string]string{"PICKUP_VIEWS": views, "PICKUP_VIEWS_ADMIN_SECRET_ARN": adminARN, "PICKUP_VIEWS_APP_SECRET": appSecret}
	for range 2 { // every deploy runs it
		e, out, errs := testEnv(setup)
		if code := run(ctx, e, []string{"views", "setup"}); code != 0 || !strings.Contains(out.String(), "for role pickup_app") {
			t.Fatalf("views setup: exit %d, stdout %q, stderr %q", code, out, errs)
		}
	}
	e, out, errs := testEnv(setup)
	if code := run(ctx, e, []string{"views", "ls"}); code != 0 || !strings.Contains(out.String(), postgres.SchemaName(postgres.SchemaVersion)) {
		t.Fatalf("views ls: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	e, _, errs = testEnv(setup)
	if code := run(ctx, e, []string{"views", "drop", "--version", strconv.Itoa(postgres.SchemaVersion)}); code != 2 || !strings.Contains(errs.String(), "this binary's own") {
		t.Fatalf("views drop of this version: exit %d, stderr %q; want a usage error", code, errs)
	}

	at, creds, err := viewsLocation(ctx, appARN, views)
	if err != nil {
		t.Fatal(err)
	}
	store, err := openViewsAs(ctx, at, creds)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}

	adminExec(t, admin, `ALTER ROLE pickup_app PASSWORD 'second password'`)
	secrets.set(appARN, `{"username":"pickup_app","password":"second password"}`)
	before := secrets.readsOf(appARN)
	// The snapshot holds the pool's one connection (made with the first
	// password, still open): the checkpoint read inside needs a new one.
	err = store.Dump(ctx, func(eventlog.Position, projections.Rows) error {
		_, err := store.Checkpoint(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("a new connection after the rotation: %v", err)
	}
	if secrets.readsOf(appARN) == before {
		t.Fatal("the app secret was not read again for the new connection")
	}
}

// The operator's commands, as the admin task runs them in the deployment:
// given the roles' settings (PICKUP_VIEWS without a password and the app
// role's PICKUP_VIEWS_SECRET_ARN), `pickup tokens ls` and `pickup replay
// --verify` connect as the app role; without the secret they are refused,
// as the server refuses a password-less login.
func TestOperatorCommandsReadTheViewsSecret(t *testing.T) {
	ctx := context.Background()
	admin := startPostgres(t)
	secrets := startSecrets(t)
	const appARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:pickup-views-app"
	appSecret := `{"username":"pickup_app","password":"app password"}`
	secrets.set(appARN, appSecret)
	u, _ := url.Parse(admin)
	u.User = nil
	views := u.String()
	adminURL, _ := url.Parse(admin)
	e, _, errs := testEnv(map[string]string{"PICKUP_VIEWS": views, "PICKUP_VIEWS_ADMIN_SECRET": `{"username":"` + adminURL.User.Username() + `","password":"` + postgrestest.SuperuserPassword + `"}`, "PICKUP_VIEWS_APP_SECRET": appSecret})
	if code := run(ctx, e, []string{"views", "setup"}); code != 0 {
		t.Fatalf("views setup: exit %d, stderr %q", code, errs)
	}
	logAt := filepath.Join(t.TempDir(), "events.db")
	roles := map[string]string{"PICKUP_EVENTLOG": logAt, "PICKUP_VIEWS": views, "PICKUP_VIEWS_SECRET_ARN": appARN}
	e, _, errs = testEnv(roles)
	if code := run(ctx, e, []string{"tokens", "create", "--tenant", "acme", "--label", "ops"}); code != 0 {
		t.Fatalf("tokens create: exit %d, stderr %q", code, errs)
	}
	before := secrets.readsOf(appARN)
	e, out, errs := testEnv(roles)
	if code := run(ctx, e, []string{"tokens", "ls"}); code != 0 || !strings.Contains(out.String(), "acme") {
		t.Fatalf("tokens ls with the app secret: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if secrets.readsOf(appARN) == before {
		t.Fatal("tokens ls did not read the app secret")
	}
	e, out, errs = testEnv(roles)
	if code := run(ctx, e, []string{"replay", "--verify"}); code != 0 {
		t.Fatalf("replay --verify with the app secret: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	delete(roles, "PICKUP_VIEWS_SECRET_ARN")
	e, _, errs = testEnv(roles)
	if code := run(ctx, e, []string{"tokens", "ls"}); code == 0 {
		t.Fatalf("tokens ls with no password: exit 0, want a refusal (stderr %q)", errs)
	}
}

// PICKUP_WEBHOOK_KEY as `pickup webhooks add` wrote it (64 hex digits:
// the key itself, so the webhooks registered with it keep verifying) or as
// Terraform generates it (a string of at least 32 bytes, hashed).
func TestWebhookKeyForms(t *testing.T) {
	hexKey := strings.Repeat("0123456789abcdef", 4)
	fromHex, _ := notify.ParseKey(hexKey)
	generated := "Zq8#v!3kLw@9pR2x$Tn6&yB4mC7^dF1e" // 32 bytes, as Terraform's random_password makes
	sum := sha256.Sum256([]byte(generated))
	for _, c := range []struct {
		name, given string
		want        []byte
	}{
		{"64 hex digits are the key, as before", hexKey, fromHex},
		{"hex digits with a newline", hexKey + "\n", fromHex},
		{"a generated string is hashed", generated, sum[:]},
		{"a generated string with a newline", generated + "\n", sum[:]},
		{"too short", generated[:31], nil},
		{"hex digits cut short", hexKey[:63], nil},
		{"hex digits too long", hexKey + "00", nil},
	} {
		key, err := webhookKey(c.given, "data/events.db", false)
		if c.want == nil {
			if !errors.Is(err, errUsage) {
				t.Errorf("%s: %v, want a usage error", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		got, err := key()
		if err != nil || hex.EncodeToString(got) != hex.EncodeToString(c.want) {
			t.Errorf("%s: key %x, %v; want %x", c.name, got, err, c.want)
		}
	}
}

// A new views version building from the log, behind where the log was
// when the gateway started: a token the log issued is not yet in its
// views, and the gateway answers 503 with Retry-After, not 401; once the
// views reach that position, the token works and an unknown one is
// refused.
func TestBuildingViewsAnswerUnavailable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log, err := openEventLog(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	token, _, err := issueToken(ctx, log, "alice", "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	opened, err := openViewsAs(ctx, filepath.Join(dir, "views.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	head, err := log.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := &buildingViews{viewStore: opened, target: head}
	h, err := gateway.New(gateway.Config{Consistency: gateway.ConsistencyLog, Delegates: []string{"/ip4/203.0.113.1/tcp/4001/p2p/12D3KooWArSKMUUeLk3z2m5LKyb9wGyFL1BtWCT7Gq7Apoo77PUR"}},
		gateway.Deps{Log: log, Views: v, Tokens: v, Checkpoints: v})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(bearer string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/pins", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("GET /pins: %d %s", resp.StatusCode, body)
		return resp
	}
	if resp := get(token); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a known token while the views build: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if _, err := v.TokenTenant(ctx, tenant.HashToken(token)); !errors.Is(err, errViewsBuilding) || errors.Is(err, views.ErrNotFound) {
		t.Fatalf("TokenTenant while building: %v, want errViewsBuilding", err)
	}
	if _, err := v.List(ctx, views.ListQuery{Tenant: "alice"}); !errors.Is(err, errViewsBuilding) {
		t.Fatalf("List while building: %v, want errViewsBuilding", err)
	}

	e, _, _ := testEnv(nil)
	if err := catchUp(ctx, log, opened, e, nil); err != nil {
		t.Fatal(err)
	}
	if resp := get(token); resp.StatusCode != http.StatusOK {
		t.Fatalf("the token once the views are built: %d, want 200", resp.StatusCode)
	}
	if resp := get("not a token anyone issued"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an unknown token once the views are built: %d, want 401", resp.StatusCode)
	}
}

// The views commands refuse what they cannot run before connecting to
// anything.
func TestViewsCommandsRefuseBadInput(t *testing.T) {
	const views = "postgres://127.0.0.1:1/pickup?sslmode=disable"
	for _, c := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"no subcommand", nil, []string{"views"}, "views setup"},
		{"an unknown subcommand", nil, []string{"views", "migrate"}, "want setup, ls or drop"},
		{"no database", nil, []string{"views", "setup"}, "PICKUP_VIEWS"},
		{"a file, not a database", map[string]string{"PICKUP_VIEWS": "data/views.db"}, []string{"views", "ls"}, "postgres://"},
		{"an admin secret pickup cannot read", map[string]string{"PICKUP_VIEWS": views, "PICKUP_VIEWS_ADMIN_SECRET": "hunter2"}, []string{"views", "setup"}, "admin secret"},
		{"an app secret without a user", map[string]string{"PICKUP_VIEWS": views, "PICKUP_VIEWS_APP_SECRET": `{"password":"p"}`}, []string{"views", "setup"}, "app secret"},
		{"drop without a version", map[string]string{"PICKUP_VIEWS": views}, []string{"views", "drop"}, "--version N"},
		{"drop of this version", map[string]string{"PICKUP_VIEWS": views}, []string{"views", "drop", "--version", strconv.Itoa(postgres.SchemaVersion)}, "this binary's own"},
	} {
		e, _, errs := testEnv(c.vars)
		if code := run(context.Background(), e, c.args); code != 2 || !strings.Contains(errs.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2, naming %q", c.name, code, errs, c.want)
		}
	}
}
