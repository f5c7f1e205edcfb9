package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/notify"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/tenant"
)

// testKey is the signing key of the tests' notifiers.
var testKey = mustKey("8f2c1c5e9a7b4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e")

func mustKey(s string) []byte {
	k, err := notify.ParseKey(s)
	if err != nil {
		panic(err)
	}
	return k
}

// openLog opens a real embedded event log in dir; a second call on the
// same dir is a second process sharing the file.
func openLog(t *testing.T, dir string) *embedded.Store {
	t.Helper()
	log, err := embedded.Open(context.Background(), filepath.Join(dir, "events.db"), embedded.Options{PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return log
}

func appendTo(t *testing.T, log eventlog.Store, stream string, expected eventlog.Expected, evs ...eventlog.Proposed) eventlog.AppendResult {
	t.Helper()
	res, err := log.Append(context.Background(), stream, expected, evs...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

func pinEvent(t *testing.T, p pin.Payload, requestID uuid.UUID) eventlog.Proposed {
	t.Helper()
	ev, err := pinlog.Propose(p, uuid.New(), eventlog.Metadata{Time: time.Now(), Actor: "test", CorrelationID: requestID})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func newCID(t *testing.T, seed string) string {
	t.Helper()
	h, err := multihash.Sum([]byte(seed), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h).String()
}

// testPin is a pin driven through the log by hand, as fetchers and the
// decider would.
type testPin struct {
	id     uuid.UUID
	tenant string
	cid    string
	carCID string
}

func request(t *testing.T, log eventlog.Store, tenantName string) testPin {
	t.Helper()
	p := testPin{id: uuid.New(), tenant: tenantName}
	p.cid = newCID(t, p.id.String())
	p.carCID = newCID(t, "car "+p.id.String())
	appendTo(t, log, pin.Stream(p.id), eventlog.NoStream, pinEvent(t, pin.Requested{
		RequestID: p.id, Tenant: tenantName, CID: p.cid, Name: "name-" + p.id.String()[:8], Created: time.Now().UTC(),
	}, p.id))
	return p
}

// pinned takes a requested pin to pinned: claimed, uploaded, validated.
func (p testPin) pinned(t *testing.T, log eventlog.Store) {
	t.Helper()
	key := p.carCID + "/" + p.carCID + ".car"
	appendTo(t, log, pin.Stream(p.id), eventlog.At(0),
		pinEvent(t, pin.FetchStarted{Attempt: 1, Fetcher: "f1", LeaseUntil: time.Now().Add(time.Minute)}, p.id),
		pinEvent(t, pin.CarUploaded{Attempt: 1, Fetcher: "f1", Key: "staging/" + key, Bytes: 1234, Blocks: 3, CarCID: p.carCID}, p.id),
		pinEvent(t, pin.CarValidated{Attempt: 1, Key: key, Bytes: 1234, CarCID: p.carCID}, p.id))
}

// failed takes a requested pin to failed: a permanent failure, then the
// dead letter.
func (p testPin) failed(t *testing.T, log eventlog.Store) {
	t.Helper()
	appendTo(t, log, pin.Stream(p.id), eventlog.At(0),
		pinEvent(t, pin.FetchStarted{Attempt: 1, Fetcher: "f1", LeaseUntil: time.Now().Add(time.Minute)}, p.id),
		pinEvent(t, pin.Failed{Attempt: 1, Reason: pin.ReasonTooBig, Message: "DAG over the limit", Permanent: true}, p.id),
		pinEvent(t, pin.DeadLettered{Failures: 1, Reason: pin.ReasonTooBig, Message: "DAG over the limit"}, p.id))
}

// register registers a webhook for tenant at url, as `pickup webhooks add`
// does, and returns it with its secret.
func register(t *testing.T, log eventlog.Store, tenantName, url string, events ...tenant.WebhookEvent) (tenant.WebhookRegistered, string) {
	t.Helper()
	ctx := context.Background()
	evs, err := log.ReadStream(ctx, tenant.WebhooksStream, 0, eventlog.Forwards, 1000)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := tenant.FoldWebhooks(evs)
	if err != nil {
		t.Fatal(err)
	}
	w, err := reg.Register(tenantName, url, events, notify.KeyID(testKey), true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := tenant.Proposal(w, uuid.New(), eventlog.Metadata{Actor: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, log, tenant.WebhooksStream, reg.Expected(), ev)
	return w, notify.Secret(testKey, w.WebhookID)
}

func unregister(t *testing.T, log eventlog.Store, id uuid.UUID) {
	t.Helper()
	evs, err := log.ReadStream(context.Background(), tenant.WebhooksStream, 0, eventlog.Forwards, 1000)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := tenant.FoldWebhooks(evs)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := reg.Remove(id)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := tenant.Proposal(rm, tenant.WebhookRemovalID(id), eventlog.Metadata{Actor: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, log, tenant.WebhooksStream, reg.Expected(), ev)
}

// post is one request a receiver got.
type post struct {
	id       string
	event    string
	body     notify.Notification
	verified bool
}

// receiver is a real webhook receiver on loopback: it verifies each
// request's signature with the webhook's secret, as README.md tells
// receivers to, and records what it got.
type receiver struct {
	srv *httptest.Server
	// status answers the nth request (from 1) of a delivery id; default
	// 200.
	status func(id string, n int) int
	// before, if set, runs before the answer is written.
	before func(id string, n int)

	mu     sync.Mutex
	secret string
	posts  []post
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setSecret(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret = s
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get(notify.HeaderID)
	p := post{id: id, event: req.Header.Get(notify.HeaderEvent)}
	r.mu.Lock()
	sig := req.Header.Get(notify.HeaderSignature)
	p.verified = req.Method == http.MethodPost && req.Header.Get("Content-Type") == "application/json" &&
		notify.Verify(r.secret, sig, body, time.Now(), 5*time.Minute) == nil &&
		req.Header.Get(notify.HeaderTimestamp) != "" && strings.HasPrefix(sig, "t="+req.Header.Get(notify.HeaderTimestamp)+",")
	if err := json.Unmarshal(body, &p.body); err != nil {
		p.verified = false
	}
	r.posts = append(r.posts, p)
	n := 0
	for _, q := range r.posts {
		if q.id == id {
			n++
		}
	}
	status, before := r.status, r.before
	r.mu.Unlock()
	if before != nil {
		before(id, n)
	}
	code := http.StatusOK
	if status != nil {
		code = status(id, n)
	}
	if !p.verified {
		code = http.StatusBadRequest
	}
	w.WriteHeader(code)
}

func (r *receiver) got() []post {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]post(nil), r.posts...)
}

// byID counts the requests of each delivery id.
func (r *receiver) byID() map[string]int {
	m := map[string]int{}
	for _, p := range r.got() {
		m[p.id]++
	}
	return m
}

// notifierConfig is a configuration for tests: quick retries, a short
// checkpoint period, and private webhooks allowed (the receivers are on
// loopback).
func notifierConfig(actor string) notify.Config {
	return notify.Config{
		Policy:          notify.Policy{MaxAttempts: 4, BaseDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond},
		Timeout:         5 * time.Second,
		Period:          20 * time.Millisecond,
		CheckpointEvery: 50 * time.Millisecond,
		Actor:           actor,
		RetryDelay:      10 * time.Millisecond,
		Logger:          slog.New(slog.DiscardHandler),
	}
}

func testDeps(log eventlog.Store) notify.Deps {
	return notify.Deps{
		Log:      log,
		Webhooks: notify.NewWebhookClient(notify.WebhookClientConfig{AllowPrivate: true}),
		Key:      func() ([]byte, error) { return testKey, nil },
	}
}

// start runs a notifier until the returned stop is called (or the test
// ends).
func start(t *testing.T, cfg notify.Config, deps notify.Deps) (n *notify.Notifier, stop func()) {
	t.Helper()
	n, err := notify.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != context.Canceled {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		})
	}
	t.Cleanup(stop)
	return n, stop
}

// waitFor polls cond until it holds; it fails the test if it does not
// within a generous bound (a hang, not a measure of speed).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deliveryEvents reads a delivery's stream.
func deliveryEvents(t *testing.T, log eventlog.Store, id string) []eventlog.Event {
	t.Helper()
	did, err := uuid.Parse(id)
	if err != nil {
		t.Fatalf("delivery id %q: %v", id, err)
	}
	evs, err := log.ReadStream(context.Background(), notify.Stream(did), 0, eventlog.Forwards, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func types(evs []eventlog.Event) string {
	s := ""
	for i, e := range evs {
		if i > 0 {
			s += ","
		}
		s += e.Type
	}
	return s
}

// final reports whether a delivery's stream ends with Delivered or
// DeliveryAbandoned.
func final(t *testing.T, log eventlog.Store, id uuid.UUID) bool {
	evs := deliveryEvents(t, log, id.String())
	return len(evs) > 0 && (evs[len(evs)-1].Type == notify.TypeDelivered || evs[len(evs)-1].Type == notify.TypeAbandoned)
}

func webhookDelivery(cause uuid.UUID, w tenant.WebhookRegistered) uuid.UUID {
	return notify.DeliveryID(cause, notify.Target{Kind: notify.KindWebhook, WebhookID: w.WebhookID, URL: w.URL})
}

// lastEventID returns the id of the last event of a pin's stream: the
// cause of its notifications.
func lastEventID(t *testing.T, log eventlog.Store, p testPin) uuid.UUID {
	t.Helper()
	evs, err := log.ReadStream(context.Background(), pin.Stream(p.id), eventlog.StreamEnd, eventlog.Backwards, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("read %s: %v", pin.Stream(p.id), err)
	}
	return evs[0].ID
}

func describe(p post) string { return fmt.Sprintf("%s %s %s", p.id, p.event, p.body.Pin.RequestID) }
