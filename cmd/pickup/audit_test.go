package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections/audit"
)

// seedPin writes a pin that fails permanently and is dead-lettered.
func seedPin(t *testing.T, path string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	log, err := embedded.Open(ctx, path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	id := uuid.New()
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	var s pin.State
	for i, step := range []func(pin.State) (pin.Payload, error){
		func(s pin.State) (pin.Payload, error) {
			return pin.Request(s, pin.Requested{RequestID: id, Tenant: "alice", CID: "bafkqaaa", Created: at})
		},
		func(s pin.State) (pin.Payload, error) { return s.Claim("fetcher/a", at, time.Minute) },
		func(s pin.State) (pin.Payload, error) {
			return s.Fail("fetcher/a", 1, pin.ReasonTooBig, "34 GB, over the 31 GiB limit", true)
		},
		func(s pin.State) (pin.Payload, error) { return s.DecideRetry(pin.DefaultRetryPolicy()) },
	} {
		p, err := step(s)
		if err != nil {
			t.Fatal(err)
		}
		actor := []string{"gateway", "fetcher/a", "fetcher/a", "decider"}[i]
		ev, _ := pinlog.Propose(p, uuid.New(), eventlog.Metadata{Time: at.Add(time.Duration(i) * time.Second), Actor: actor})
		if _, err := log.Append(ctx, pin.Stream(id), pinlog.Expected(s), ev); err != nil {
			t.Fatal(err)
		}
		if s, _, err = readState(ctx, log, id); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func readState(ctx context.Context, log eventlog.Store, id uuid.UUID) (pin.State, []eventlog.Event, error) {
	evs, err := log.ReadStream(ctx, pin.Stream(id), 0, eventlog.Forwards, 100)
	if err != nil {
		return pin.State{}, nil, err
	}
	s, err := pinlog.Fold(evs)
	return s, evs, err
}

func TestAuditPrintsTheTimeline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	id := seedPin(t, path)
	vars := map[string]string{"PICKUP_EVENTLOG": path}

	e, out, errs := testEnv(vars)
	if code := run(context.Background(), e, []string{"audit", id.String()}); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	text := out.String()
	for _, want := range []string{"pin request " + id.String(), "gateway", "attempt 1 claimed by fetcher/a",
		"too_big: 34 GB, over the 31 GiB limit", "dead-lettered after 1 failure", "permanent failure", "status now: failed"} {
		if !strings.Contains(text, want) {
			t.Errorf("audit text lacks %q:\n%s", want, text)
		}
	}

	e, out, errs = testEnv(vars)
	if code := run(context.Background(), e, []string{"audit", "--json", id.String()}); code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("--json printed %d lines, want one per event", len(lines))
	}
	var last audit.Entry
	if err := json.Unmarshal([]byte(lines[3]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Type != pin.TypeDeadLettered || last.Actor != "decider" || last.Status != pin.StatusFailed || !strings.Contains(last.Reason, "too_big") {
		t.Errorf("last entry %+v", last)
	}

	for _, c := range []struct {
		args []string
		code int
	}{{[]string{"audit"}, 2}, {[]string{"audit", "not-a-uuid"}, 2}, {[]string{"audit", uuid.NewString()}, 1}} {
		e, _, _ := testEnv(vars)
		if code := run(context.Background(), e, c.args); code != c.code {
			t.Errorf("%v: exit %d, want %d", c.args, code, c.code)
		}
	}
}
