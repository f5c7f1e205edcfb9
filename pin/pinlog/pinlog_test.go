package pinlog_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

var t0 = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

// open returns a real embedded log in a temporary directory.
func open(t *testing.T) *embedded.Store {
	t.Helper()
	log, err := embedded.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return log
}

func clock() time.Time { return t0 }

// request commits a new pin request and returns its id.
func request(t *testing.T, c *pinlog.Committer) uuid.UUID {
	t.Helper()
	id := uuid.New()
	r := pin.Requested{RequestID: id, Tenant: "alice", CID: "bafkqaaa", Created: t0}
	_, err := c.Commit(context.Background(), pinlog.Commit{RequestID: id, Actor: "tenant:alice", From: &pin.State{},
		Decide: func(s pin.State) (pinlog.Decision, error) {
			r, err := pin.Request(s, r)
			return pinlog.Decision{Payload: r}, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func claim(fetcher string) func(pin.State) (pinlog.Decision, error) {
	return func(s pin.State) (pinlog.Decision, error) {
		p, err := s.Claim(fetcher, t0, time.Minute)
		return pinlog.Decision{Payload: p}, err
	}
}

func TestEveryPayloadSurvivesTheEnvelope(t *testing.T) {
	id := uuid.New()
	for _, p := range []pin.Payload{
		pin.Requested{RequestID: id, Tenant: "a", CID: "bafkqaaa", Name: "n", Origins: []string{"/ip4/1.2.3.4/tcp/1"}, Meta: map[string]string{"k": "v"}, Created: t0, Replaces: uuid.New()},
		pin.FetchStarted{Attempt: 1, Fetcher: "f", LeaseUntil: t0},
		pin.FetchProgress{Attempt: 1, Fetcher: "f", Bytes: 5, Blocks: 2, Source: "gateway", BlockBytes: 3, ExpectedBytes: 9, LeaseUntil: t0},
		pin.CarUploaded{Attempt: 1, Fetcher: "f", Key: "k", Bytes: 5, Blocks: 2, CarCID: "bagb", Checksum: "x", Source: "kubo", ExpectedBytes: 9},
		pin.CarValidated{Attempt: 1, Key: "k", Bytes: 5, CarCID: "bagb", Reused: true},
		pin.Failed{Attempt: 2, Reason: pin.ReasonTooBig, Message: "m", Permanent: true},
		pin.RetryScheduled{Failures: 1, NotBefore: t0, Requeued: true},
		pin.DeadLettered{Failures: 3, Reason: pin.ReasonTimeout, Message: "m"},
		pin.Removed{ReplacedBy: uuid.New()},
	} {
		eid := uuid.New()
		prop, err := pinlog.Propose(p, eid, eventlog.Metadata{Time: t0})
		if err != nil {
			t.Fatal(err)
		}
		got, err := pinlog.Decode(eventlog.Event{ID: eid, Revision: 7, Type: prop.Type, Version: prop.Version, Data: prop.Data, Meta: prop.Meta})
		if err != nil {
			t.Fatalf("%s: %v", p.EventType(), err)
		}
		want := pin.Recorded{ID: eid, Revision: 7, At: t0, Payload: p}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded %+v, want %+v", p.EventType(), got, want)
		}
	}
}

// Events recorded before FetchProgress and CarUploaded carried the DAG's
// declared size decode as they did, the size unknown (zero), at the same
// schema version; the new fields are written only when known.
func TestEventsBeforeTheDeclaredSizeStillDecode(t *testing.T) {
	old := []eventlog.Event{
		{Type: pin.TypeFetchProgress, Version: 1, Data: []byte(`{"attempt":1,"fetcher":"f","bytes":5,"blocks":2,"source":"gateway","lease_until":"` + t0.Format(time.RFC3339Nano) + `"}`)},
		{Type: pin.TypeCarUploaded, Version: 1, Data: []byte(`{"attempt":1,"fetcher":"f","key":"k","bytes":5,"blocks":2,"car_cid":"bagb"}`)},
	}
	want := []pin.Payload{
		pin.FetchProgress{Attempt: 1, Fetcher: "f", Bytes: 5, Blocks: 2, Source: "gateway", LeaseUntil: t0},
		pin.CarUploaded{Attempt: 1, Fetcher: "f", Key: "k", Bytes: 5, Blocks: 2, CarCID: "bagb"},
	}
	for i, e := range old {
		got, err := pinlog.Decode(e)
		if err != nil || !reflect.DeepEqual(got.Payload, want[i]) {
			t.Errorf("%s: decoded %+v, %v; want %+v", e.Type, got.Payload, err, want[i])
		}
		// Re-encoded, it is the same JSON: an unknown size is not written.
		prop, err := pinlog.Propose(want[i], uuid.New(), eventlog.Metadata{})
		if err != nil || strings.Contains(string(prop.Data), "expected_bytes") || strings.Contains(string(prop.Data), "block_bytes") || prop.Version != 1 {
			t.Errorf("%s re-encoded as v%d %s (%v)", e.Type, prop.Version, prop.Data, err)
		}
	}
}

func TestDecodeRefusesWhatItCannotRead(t *testing.T) {
	for _, e := range []eventlog.Event{
		{Type: "TokenIssued", Version: 1, Data: []byte(`{}`)},
		{Type: pin.TypeRequested, Version: 2, Data: []byte(`{}`)},
		{Type: pin.TypeRequested, Version: 1, Data: []byte(`{"cid": 5}`)},
	} {
		if _, err := pinlog.Decode(e); err == nil {
			t.Errorf("decode of %s v%d %s succeeded", e.Type, e.Version, e.Data)
		}
	}
	if _, err := pinlog.Decode(eventlog.Event{Type: "Other", Version: 1}); !errors.Is(err, eventlog.ErrUnknownType) {
		t.Errorf("unknown type: %v, want ErrUnknownType", err)
	}
}

func TestExpected(t *testing.T) {
	if got := pinlog.Expected(pin.State{}); got != eventlog.NoStream {
		t.Errorf("a new pin expects %v, want no stream", got)
	}
	if got := pinlog.Expected(pin.State{Exists: true, Revision: 2}); got != eventlog.At(2) {
		t.Errorf("a pin at revision 2 expects %v, want At(2)", got)
	}
}

func TestCommitAppendsAtTheRevisionItDecidedOn(t *testing.T) {
	ctx := context.Background()
	log := open(t)
	c := pinlog.New(log, clock)
	id := request(t, c)

	got, err := c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: "f1", Decide: claim("f1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Appended.(pin.FetchStarted); !ok || got.State.Phase != pin.PhaseFetching || got.State.Revision != 1 || got.Position == 0 {
		t.Fatalf("claim: %+v", got)
	}
	// The state returned is the one the log now folds to.
	read, events, err := c.Read(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(read, got.State) {
		t.Errorf("state after commit %+v, read back %+v", got.State, read)
	}
	e := events[1]
	if e.Meta.Actor != "f1" || e.Meta.CorrelationID != id || e.Meta.CausationID != events[0].ID || !e.Meta.Time.Equal(t0) {
		t.Errorf("metadata %+v", e.Meta)
	}
	if e.ID != pinlog.EventID(pin.Fold(nil).Apply(mustDecode(t, events[0])), "f1", pin.FetchStarted{}, "") {
		t.Errorf("event id %s does not follow the rule", e.ID)
	}

	// A refusal comes back as it is, nothing appended, with the state.
	got, err = c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: "f2", Decide: claim("f2")})
	if !errors.Is(err, pin.ErrClaimed) || got.Appended != nil || got.State.Fetcher != "f1" {
		t.Errorf("second claim: %+v, %v; want ErrClaimed", got, err)
	}
	// An empty decision appends nothing.
	got, err = c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: "f2", Decide: func(pin.State) (pinlog.Decision, error) { return pinlog.Decision{}, nil }})
	if err != nil || got.Appended != nil {
		t.Errorf("empty decision: %+v, %v", got, err)
	}
	if _, events, _ := c.Read(ctx, id); len(events) != 2 {
		t.Errorf("%d events, want 2", len(events))
	}
}

func mustDecode(t *testing.T, e eventlog.Event) pin.Recorded {
	t.Helper()
	r, err := pinlog.Decode(e)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRacingClaimsOneWins(t *testing.T) {
	ctx := context.Background()
	log := open(t)
	c := pinlog.New(log, clock)
	id := request(t, c)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// Each starts from the state as requested: all but one lose the
			// race, read again, and are refused.
			s, _, err := c.Read(ctx, id)
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: uuid.NewString(), From: &s, Decide: claim("f")})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, pin.ErrClaimed):
			t.Errorf("a loser got %v, want ErrClaimed", err)
		}
	}
	if _, events, _ := c.Read(ctx, id); won != 1 || len(events) != 2 {
		t.Errorf("%d claims won, %d events; want 1 and 2", won, len(events))
	}
}

func TestOneDecisionTwiceIsRecordedOnce(t *testing.T) {
	ctx := context.Background()
	log := open(t)
	c := pinlog.New(log, clock)
	id := request(t, c)
	s, _, _ := c.Read(ctx, id)
	expire := func(s pin.State) (pinlog.Decision, error) {
		f, err := s.Expire(t0.Add(2*time.Hour), time.Hour)
		return pinlog.Decision{Payload: f}, err
	}
	// Two watchdogs (or one retried after a lost answer) decide on the same
	// state: the same event id, so the log keeps one.
	for range 2 {
		got, err := c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: "watchdog", From: &s, Decide: expire})
		if err != nil || got.Appended == nil {
			t.Fatalf("expire: %+v, %v", got, err)
		}
	}
	if _, events, _ := c.Read(ctx, id); len(events) != 2 {
		t.Errorf("%d events, want the request and one failure", len(events))
	}

	// A key tells apart two decisions of one actor on one state: they race.
	s, _, _ = c.Read(ctx, id)
	remove := func(by uuid.UUID) func(pin.State) (pinlog.Decision, error) {
		return func(s pin.State) (pinlog.Decision, error) {
			rm, err := s.Remove(by)
			return pinlog.Decision{Payload: rm, Key: by.String()}, err
		}
	}
	if _, err := c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: "tenant:alice", From: &s, Decide: remove(uuid.New())}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: "tenant:alice", From: &s, Decide: remove(uuid.New())})
	if !errors.Is(err, pin.ErrRemoved) {
		t.Errorf("second replacement on the same state: %v, want ErrRemoved after a lost race", err)
	}
}

func TestCommitGivesUpOnAPinThatKeepsMoving(t *testing.T) {
	ctx := context.Background()
	log := open(t)
	c := pinlog.New(log, clock)
	id := request(t, c)
	if _, err := c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: "f1", Decide: claim("f1")}); err != nil {
		t.Fatal(err)
	}
	decisions := 0
	_, err := c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: "tenant:alice", Decide: func(s pin.State) (pinlog.Decision, error) {
		decisions++
		// Another writer (the fetcher) moves the pin under every decision.
		p, err := s.Progress(pin.FetchProgress{Fetcher: "f1", Attempt: 1, Bytes: int64(decisions), Blocks: 1, Source: "gateway"}, t0, time.Minute)
		if err != nil {
			return pinlog.Decision{}, err
		}
		prop, err := pinlog.Propose(p, uuid.New(), eventlog.Metadata{Time: t0})
		if err != nil {
			return pinlog.Decision{}, err
		}
		if _, err := log.Append(ctx, pin.Stream(id), pinlog.Expected(s), prop); err != nil {
			return pinlog.Decision{}, err
		}
		rm, err := s.Remove(uuid.Nil)
		return pinlog.Decision{Payload: rm}, err
	}})
	if !errors.Is(err, pinlog.ErrTooManyRaces) || decisions != pinlog.MaxRaces {
		t.Errorf("%d decisions, %v; want %d and ErrTooManyRaces", decisions, err, pinlog.MaxRaces)
	}
	if s, _, _ := c.Read(ctx, id); s.Removed {
		t.Error("the pin was removed although every decision lost")
	}
}
