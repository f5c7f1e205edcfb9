package sns_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/notify"
	"github.com/pickup-ipfs/pickup/notify/sns"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// fakeSNS is a hand-written fake of Amazon SNS's Publish action, speaking
// its query protocol (a form POST answered with XML): AWS cannot run here.
// It checks what a real topic would (a signed request, the action, the
// topic) and records each message.
type fakeSNS struct {
	srv *httptest.Server
	// fail, if set, makes the nth request (from 1) fail with a 500.
	fail func(n int) bool

	mu       sync.Mutex
	requests int
	messages []published
}

type published struct {
	topic, id, dedup, group string
	msg                     notify.CarMessage
}

func newFakeSNS(t *testing.T) *fakeSNS {
	f := &fakeSNS{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSNS) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	n := f.requests
	f.mu.Unlock()
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		snsError(w, http.StatusBadRequest, "MalformedQueryString", "not a form POST")
		return
	}
	switch {
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDTEST/") ||
		!strings.Contains(r.Header.Get("Authorization"), "/eu-west-1/sns/aws4_request"):
		// Signed, for SNS, in the topic's region.
		snsError(w, http.StatusForbidden, "InvalidClientTokenId", "unsigned request")
		return
	case r.Form.Get("Action") != "Publish" || r.Form.Get("Version") != "2010-03-31":
		snsError(w, http.StatusBadRequest, "InvalidAction", "want Publish")
		return
	case f.fail != nil && f.fail(n):
		snsError(w, http.StatusInternalServerError, "InternalError", "try again")
		return
	}
	p := published{topic: r.Form.Get("TopicArn"), dedup: r.Form.Get("MessageDeduplicationId"), group: r.Form.Get("MessageGroupId")}
	for i := 1; r.Form.Get(fmt.Sprintf("MessageAttributes.entry.%d.Name", i)) != ""; i++ {
		if r.Form.Get(fmt.Sprintf("MessageAttributes.entry.%d.Name", i)) == sns.AttributeID &&
			r.Form.Get(fmt.Sprintf("MessageAttributes.entry.%d.Value.DataType", i)) == "String" {
			p.id = r.Form.Get(fmt.Sprintf("MessageAttributes.entry.%d.Value.StringValue", i))
		}
	}
	if err := json.Unmarshal([]byte(r.Form.Get("Message")), &p.msg); err != nil {
		snsError(w, http.StatusBadRequest, "InvalidParameter", "message is not JSON")
		return
	}
	f.mu.Lock()
	f.messages = append(f.messages, p)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>%s</MessageId></PublishResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></PublishResponse>`, uuid.New(), uuid.New())
}

func snsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>x</RequestId></ErrorResponse>`, code, msg)
}

func (f *fakeSNS) got() (int, []published) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests, append([]published(nil), f.messages...)
}

// awsEnv points the SDK's default configuration at test credentials and
// nothing else on the machine.
func awsEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

const topic = "arn:aws:sns:eu-west-1:123456789012:pickup-pinned"

// Through the SDK: the message is the CAR's JSON, with the delivery id as
// an attribute; on a FIFO topic also the deduplication id, grouped by root.
// One request per Publish: retries are the notifier's.
func TestPublish(t *testing.T) {
	awsEnv(t)
	fake := newFakeSNS(t)
	msg := notify.CarMessage{Bucket: "carpark", Key: "bagcar/bagcar.car", RootCID: "bafyroot", CarCID: "bagcar", Bytes: 99, RequestID: uuid.New()}
	for _, c := range []struct {
		topic string
		fifo  bool
	}{{topic, false}, {topic + ".fifo", true}} {
		p, err := sns.New(context.Background(), sns.Config{TopicARN: c.topic, Endpoint: fake.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		id := uuid.New()
		if err := p.Publish(context.Background(), id, msg); err != nil {
			t.Fatalf("%s: %v", c.topic, err)
		}
		_, got := fake.got()
		last := got[len(got)-1]
		if last.topic != c.topic || last.msg != msg || last.id != id.String() {
			t.Errorf("%s: published %+v, want %+v with id %s", c.topic, last, msg, id)
		}
		if c.fifo && (last.dedup != id.String() || last.group != msg.RootCID) || !c.fifo && (last.dedup != "" || last.group != "") {
			t.Errorf("%s: deduplication id %q, group %q", c.topic, last.dedup, last.group)
		}
	}
	fake.fail = func(int) bool { return true }
	before, _ := fake.got()
	p, err := sns.New(context.Background(), sns.Config{TopicARN: topic, Endpoint: fake.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), uuid.New(), msg); err == nil {
		t.Error("a 500 from SNS is not an error")
	}
	if after, _ := fake.got(); after != before+1 {
		t.Errorf("%d requests for one failed Publish, want 1", after-before)
	}
	for _, bad := range []string{"", "pickup-pinned", "arn:aws:s3:::bucket", "arn:aws:sns:eu-west-1:123456789012:"} {
		if _, err := sns.New(context.Background(), sns.Config{TopicARN: bad}); !errors.Is(err, notify.ErrInvalid) {
			t.Errorf("topic %q: %v", bad, err)
		}
	}
}

// The notifier publishes one message per validated CAR, none for failures,
// and retries a failed publication with the same delivery id.
func TestNotifierPublishesValidatedCARs(t *testing.T) {
	awsEnv(t)
	fake := newFakeSNS(t)
	fake.fail = func(n int) bool { return n == 2 }
	ctx := context.Background()
	log, err := embedded.Open(ctx, filepath.Join(t.TempDir(), "events.db"), embedded.Options{PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	pub, err := sns.New(ctx, sns.Config{TopicARN: topic, Endpoint: fake.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(notify.Config{
		Policy: notify.Policy{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: 10 * time.Millisecond},
		Period: 10 * time.Millisecond, TopicARN: topic, Bucket: "carpark", Logger: slog.New(slog.DiscardHandler),
	}, notify.Deps{Log: log, Webhooks: notify.NewWebhookClient(notify.WebhookClientConfig{}), SNS: pub})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { _, ok := n.Processed(); return ok })

	want := map[uuid.UUID]notify.CarMessage{}
	for i := range 4 {
		id, root, car := uuid.New(), fmt.Sprintf("bafyroot%d", i), fmt.Sprintf("bagcar%d", i)
		evs := []pin.Payload{pin.Requested{RequestID: id, Tenant: "alice", CID: root, Created: time.Now()}, pin.FetchStarted{Attempt: 1, Fetcher: "f"}}
		if i == 3 {
			evs = append(evs, pin.Failed{Attempt: 1, Reason: pin.ReasonTooBig, Permanent: true}, pin.DeadLettered{Failures: 1, Reason: pin.ReasonTooBig})
		} else {
			evs = append(evs, pin.CarValidated{Attempt: 1, Key: car + "/" + car + ".car", Bytes: int64(100 + i), CarCID: car})
		}
		var props []eventlog.Proposed
		for _, p := range evs {
			ev, err := pinlog.Propose(p, uuid.New(), eventlog.Metadata{CorrelationID: id})
			if err != nil {
				t.Fatal(err)
			}
			props = append(props, ev)
		}
		if _, err := log.Append(ctx, pin.Stream(id), eventlog.NoStream, props...); err != nil {
			t.Fatal(err)
		}
		if i != 3 {
			cause := props[len(props)-1].ID
			want[notify.DeliveryID(cause, notify.Target{Kind: notify.KindSNS, TopicARN: topic})] = notify.CarMessage{
				Bucket: "carpark", Key: car + "/" + car + ".car", RootCID: root, CarCID: car, Bytes: int64(100 + i), RequestID: id,
			}
		}
	}
	for id := range want {
		waitFor(t, func() bool {
			evs, err := log.ReadStream(ctx, notify.Stream(id), eventlog.StreamEnd, eventlog.Backwards, 1)
			return err == nil && len(evs) == 1 && evs[0].Type == notify.TypeDelivered
		})
	}
	requests, got := fake.got()
	if requests != len(want)+1 || len(got) != len(want) {
		t.Errorf("%d requests, %d messages; want %d messages and one failed request", requests, len(got), len(want))
	}
	for _, p := range got {
		id, _ := uuid.Parse(p.id)
		if m, ok := want[id]; !ok || m != p.msg || p.topic != topic {
			t.Errorf("published %+v, want %+v", p, m)
		}
		delete(want, id)
	}
	if len(want) != 0 {
		t.Errorf("never published: %v", want)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("gave up waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
