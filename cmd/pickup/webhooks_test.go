package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/internal/telemetry"
	"github.com/pickup-ipfs/pickup/notify"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/tenant"
)

var webhookLines = regexp.MustCompile(`(?m)^secret:\s+(\S+)\nid:\s+(\S+)\n`)

// webhooks runs `pickup webhooks ARGS` and returns its exit code as run
// would (the lead lists the command in main.go).
func webhooks(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	e, out, errs := testEnv(vars)
	err := runWebhooks(context.Background(), e, args)
	code := 0
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		code = 2
	default:
		code = 1
	}
	if err != nil {
		errs.WriteString(err.Error())
	}
	return code, out.String(), errs.String()
}

func TestWebhooksAddListRemove(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"PICKUP_EVENTLOG": filepath.Join(dir, "events.db"), "PICKUP_ALLOW_PRIVATE_WEBHOOKS": "true"}
	code, out, errs := webhooks(t, vars, "add", "--tenant", "alice", "--url", "http://127.0.0.1:9/hook", "--events", "pinned")
	if code != 0 {
		t.Fatalf("add: exit %d: %s", code, errs)
	}
	m := webhookLines.FindStringSubmatch(out)
	if m == nil || !strings.Contains(errs, "does not show it again") {
		t.Fatalf("add printed %q / %q, want the secret and the id", out, errs)
	}
	secret, id := m[1], uuid.MustParse(m[2])
	// The key was made beside the log, for the owner only, and the secret
	// printed is the one the notifier derives from it.
	keyPath := filepath.Join(dir, webhookKeyFile)
	st, err := os.Stat(keyPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	key, err := webhookKey("", vars["PICKUP_EVENTLOG"], false)
	if err != nil {
		t.Fatal(err)
	}
	k, err := key()
	if err != nil || notify.Secret(k, id) != secret {
		t.Errorf("secret printed %s, derived %s (%v)", secret, notify.Secret(k, id), err)
	}
	// A second webhook reuses the key.
	if code, _, errs := webhooks(t, vars, "add", "--tenant", "bob", "--url", "https://hooks.example.com/pickup"); code != 0 {
		t.Fatalf("second add: exit %d: %s", code, errs)
	}
	if k2, _ := key(); string(k2) != string(k) {
		t.Error("the key changed")
	}
	log, err := embedded.Open(context.Background(), vars["PICKUP_EVENTLOG"], embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := log.ReadStream(context.Background(), tenant.WebhooksStream, 0, eventlog.Forwards, 10)
	log.Close()
	if err != nil || len(evs) != 2 {
		t.Fatalf("webhooks stream: %d events, %v", len(evs), err)
	}
	for _, e := range evs {
		if strings.Contains(string(e.Data), secret) || strings.Contains(string(e.Data), strings.TrimPrefix(secret, notify.SecretPrefix)) {
			t.Errorf("the log holds the secret: %s", e.Data)
		}
	}

	code, out, errs = webhooks(t, vars, "ls", "--tenant", "alice")
	if code != 0 || !strings.Contains(out, id.String()) || !strings.Contains(out, "http://127.0.0.1:9/hook") || !strings.Contains(out, "pinned") ||
		strings.Contains(out, "hooks.example.com") || strings.Contains(out, secret) {
		t.Errorf("ls --tenant alice: exit %d:\n%s%s", code, out, errs)
	}
	if code, out, _ = webhooks(t, vars, "ls"); code != 0 || !strings.Contains(out, "hooks.example.com") {
		t.Errorf("ls: exit %d:\n%s", code, out)
	}
	if code, out, errs = webhooks(t, vars, "rm", id.String()); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("rm: exit %d: %s%s", code, out, errs)
	}
	if code, out, _ = webhooks(t, vars, "ls"); code != 0 || strings.Contains(out, id.String()) {
		t.Errorf("ls after rm: exit %d:\n%s", code, out)
	}
	if code, _, errs = webhooks(t, vars, "rm", id.String()); code != 1 || !strings.Contains(errs, "no such webhook") {
		t.Errorf("rm twice: exit %d: %s", code, errs)
	}
}

// Bad input is a usage error that writes nothing (no key, no event).
func TestWebhooksAddRefusesBadInput(t *testing.T) {
	for _, c := range []struct {
		name string
		vars map[string]string
		args []string
	}{
		{"http to a public host", nil, []string{"--tenant", "a", "--url", "http://hooks.example.com/"}},
		{"loopback without the allow flag", nil, []string{"--tenant", "a", "--url", "https://127.0.0.1/"}},
		{"private address", nil, []string{"--tenant", "a", "--url", "https://192.168.0.10/"}},
		{"no URL", nil, []string{"--tenant", "a"}},
		{"no tenant", nil, []string{"--url", "https://hooks.example.com/"}},
		{"unknown event", nil, []string{"--tenant", "a", "--url", "https://hooks.example.com/", "--events", "pinned,queued"}},
		{"a bad key", map[string]string{"PICKUP_WEBHOOK_KEY": "abc"}, []string{"--tenant", "a", "--url", "https://hooks.example.com/"}},
		{"a remote log and no key", map[string]string{"PICKUP_EVENTLOG": "esdb://127.0.0.1:1?tls=false"}, []string{"--tenant", "a", "--url", "https://hooks.example.com/"}},
	} {
		dir := t.TempDir()
		vars := map[string]string{"PICKUP_EVENTLOG": filepath.Join(dir, "events.db")}
		for k, v := range c.vars {
			vars[k] = v
		}
		if code, _, errs := webhooks(t, vars, append([]string{"add"}, c.args...)...); code != 2 {
			t.Errorf("%s: exit %d (%s), want 2", c.name, code, errs)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: left %d files", c.name, len(entries))
		}
	}
}

func TestNotifyFlagsReadTheirVariables(t *testing.T) {
	e, _, _ := testEnv(map[string]string{
		"PICKUP_NOTIFY_MAX_ATTEMPTS": "3", "PICKUP_NOTIFY_BASE_DELAY": "2s", "PICKUP_NOTIFY_MAX_DELAY": "1m",
		"PICKUP_NOTIFY_TIMEOUT": "4s", "PICKUP_NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
		"PICKUP_CARPARK_BUCKET": "carpark", "PICKUP_ALLOW_PRIVATE_WEBHOOKS": "1",
	})
	f := newFlags(e, "test")
	nf := addNotifyFlags(f)
	if err := f.parse(nil); err != nil {
		t.Fatal(err)
	}
	if *nf.maxAttempts != 3 || *nf.baseDelay != 2*time.Second || *nf.maxDelay != time.Minute || *nf.timeout != 4*time.Second ||
		*nf.topicARN != "arn:aws:sns:us-east-1:123456789012:t" || *nf.bucket != "carpark" || !*nf.allowPrivate {
		t.Errorf("read %d %v %v %v %q %q %v", *nf.maxAttempts, *nf.baseDelay, *nf.maxDelay, *nf.timeout, *nf.topicARN, *nf.bucket, *nf.allowPrivate)
	}
	e, _, _ = testEnv(map[string]string{"PICKUP_NOTIFY_BUCKET": "other", "PICKUP_CARPARK_BUCKET": "carpark"})
	f = newFlags(e, "test")
	nf = addNotifyFlags(f)
	if err := f.parse(nil); err != nil || *nf.bucket != "other" {
		t.Errorf("PICKUP_NOTIFY_BUCKET over PICKUP_CARPARK_BUCKET: %q, %v", *nf.bucket, err)
	}
}

// From `pickup webhooks add` to a signed delivery: the notifier the
// projector runs (addNotifier) finds the key the command made, and the
// receiver verifies the delivery with the secret the command printed.
func TestWebhookAddedByTheCommandIsDeliveredSigned(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "events.db")
	var mu sync.Mutex
	var secret string
	got := make(chan notify.Notification, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		s := secret
		mu.Unlock()
		if err := notify.Verify(s, r.Header.Get(notify.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var n notify.Notification
		if err := json.Unmarshal(body, &n); err != nil || n.ID.String() != r.Header.Get(notify.HeaderID) {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		got <- n
	}))
	defer srv.Close()

	// The projector starts first: the key file does not exist yet.
	store, err := embedded.Open(ctx, logPath, embedded.Options{PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	metrics, err := telemetry.NewLogMetrics(newRegistry())
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{role: "projector", logger: slog.New(slog.DiscardHandler), reg: newRegistry(), health: newHealth()}
	p.events = telemetry.NewLog(store, metrics, "projector")
	p.log = p.events
	e, _, _ := testEnv(map[string]string{"PICKUP_ALLOW_PRIVATE_WEBHOOKS": "true", "PICKUP_NOTIFY_BASE_DELAY": "10ms"})
	f := newFlags(e, "projector")
	nf := addNotifyFlags(f)
	if err := f.parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := p.addNotifier(ctx, nf, logPath); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	p.group.Add(func() error { <-stop; return nil }, func(error) {})
	done := make(chan error, 1)
	go func() { done <- p.group.Run() }()
	defer func() { close(stop); <-done }()

	code, out, errs := webhooks(t, map[string]string{"PICKUP_EVENTLOG": logPath, "PICKUP_ALLOW_PRIVATE_WEBHOOKS": "true"},
		"add", "--tenant", "alice", "--url", srv.URL+"/pickup")
	if code != 0 {
		t.Fatalf("add: exit %d: %s", code, errs)
	}
	mu.Lock()
	secret = webhookLines.FindStringSubmatch(out)[1]
	mu.Unlock()

	id := uuid.New()
	var evs []eventlog.Proposed
	for _, pl := range []pin.Payload{
		pin.Requested{RequestID: id, Tenant: "alice", CID: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", Created: time.Now()},
		pin.FetchStarted{Attempt: 1, Fetcher: "f"},
		pin.CarValidated{Attempt: 1, Key: "bag/bag.car", Bytes: 7, CarCID: "bag"},
	} {
		ev, err := pinlog.Propose(pl, uuid.New(), eventlog.Metadata{CorrelationID: id})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if _, err := store.Append(ctx, pin.Stream(id), eventlog.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n.Event != tenant.WebhookPinned || n.Pin.RequestID != id || n.Pin.CarCID != "bag" {
			t.Errorf("delivered %+v", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no signed delivery arrived")
	}
	if failed := p.health.ready(ctx); len(failed) != 0 {
		t.Errorf("not ready: %v", failed)
	}
}
