// Package gatewaytest builds the stack a gateway runs on out of the real
// parts, for tests and benchmarks: the embedded event log, the embedded view
// store and the projection runner that keeps it up to date, with tenants and
// tokens issued by events as in production. It also plays the fetcher's
// part in a pin's life by appending the events pin's decisions produce, so
// tests can show what users see at every step without running a fetch.
package gatewaytest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	logembedded "github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/internal/pintest"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	viewembedded "github.com/pickup-ipfs/pickup/projections/embedded"
	"github.com/pickup-ipfs/pickup/tenant"
)

// Delegate is the delegate every test stack returns.
const Delegate = "/ip4/203.0.113.1/tcp/4001/p2p/12D3KooWArSKMUUeLk3z2m5LKyb9wGyFL1BtWCT7Gq7Apoo77PUR"

// Stack is a gateway on the real embedded log and views.
type Stack struct {
	Log     *logembedded.Store
	Views   *viewembedded.Store
	Handler *gateway.Handler
	// Dir holds the log's and the views' files.
	Dir string

	world *pintest.World
}

// New starts a stack in a temporary directory, with the runner following
// the log. cfg's Delegates default to Delegate.
func New(t testing.TB, cfg gateway.Config) *Stack {
	t.Helper()
	return Open(t, t.TempDir(), cfg)
}

// Open starts a stack on the files in dir.
func Open(t testing.TB, dir string, cfg gateway.Config) *Stack {
	t.Helper()
	w := pintest.Open(t, dir)
	s := &Stack{Log: w.Log, Views: w.Views, Dir: dir, world: w}
	if len(cfg.Delegates) == 0 {
		cfg.Delegates = []string{Delegate}
	}
	s.Handler = s.NewHandler(t, cfg)
	s.StartRunner()
	t.Cleanup(s.StopRunner)
	return s
}

// NewHandler returns another gateway on the same log and views, as another
// process (a second Lambda instance) would run.
func (s *Stack) NewHandler(t testing.TB, cfg gateway.Config) *gateway.Handler {
	t.Helper()
	if len(cfg.Delegates) == 0 {
		cfg.Delegates = []string{Delegate}
	}
	h, err := gateway.New(cfg, gateway.Deps{Log: s.Log, Views: s.Views, Tokens: s.Views, Checkpoints: s.Views,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// StartRunner starts keeping the views up to date, if it is not already.
func (s *Stack) StartRunner() { s.world.Follow() }

// StopRunner stops the views where they are, so that tests can show what
// reads do while views lag.
func (s *Stack) StopRunner() { s.world.Unfollow() }

// Server serves the stack's handler on loopback.
func (s *Stack) Server(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(s.Handler)
	t.Cleanup(srv.Close)
	return srv
}

// Sync waits until the views reflect the whole log.
func (s *Stack) Sync(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	head, err := s.Log.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		cp, err := s.Views.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp >= head {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("views stuck at %d, log at %d", cp, head)
		}
		time.Sleep(time.Millisecond)
	}
}

// Token issues a new token for the tenant, and waits until the views know
// it.
func (s *Stack) Token(t testing.TB, name string) string {
	t.Helper()
	token, _ := s.IssueWithID(t, name)
	return token
}

// IssueWithID issues a token, waits until the views know it, and returns it
// with its id, for Revoke.
func (s *Stack) IssueWithID(t testing.TB, name string) (string, uuid.UUID) {
	t.Helper()
	token, issued, err := tenant.Issue(name, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e, err := tenant.Proposal(issued, uuid.New(), eventlog.Metadata{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Log.Append(context.Background(), tenant.Stream(issued.TokenID), eventlog.NoStream, e); err != nil {
		t.Fatal(err)
	}
	s.Sync(t)
	return token, issued.TokenID
}

// Revoke revokes a token and waits until the views know it.
func (s *Stack) Revoke(t testing.TB, tokenID uuid.UUID) {
	t.Helper()
	e, err := tenant.Proposal(tenant.TokenRevoked{TokenID: tokenID}, tenant.RevocationID(tokenID), eventlog.Metadata{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Log.Append(context.Background(), tenant.Stream(tokenID), eventlog.Any, e); err != nil {
		t.Fatal(err)
	}
	s.Sync(t)
}

// Pin folds a pin's stream from the log.
func (s *Stack) Pin(t testing.TB, id uuid.UUID) pin.State {
	t.Helper()
	st, _, err := pinlog.Read(context.Background(), s.Log, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Decide commits what decide returns for the pin's current state, through
// the write path: how the fetcher, the validator and the retry decider move
// pins on.
func (s *Stack) Decide(t testing.TB, id uuid.UUID, decide func(pin.State) (pin.Payload, error)) {
	t.Helper()
	_, err := pinlog.New(s.Log, nil).Commit(context.Background(), pinlog.Commit{RequestID: id, Actor: "test",
		Decide: func(st pin.State) (pinlog.Decision, error) {
			p, err := decide(st)
			return pinlog.Decision{Payload: p}, err
		}})
	if err != nil {
		t.Fatalf("decide on %s: %v", id, err)
	}
}

// Lease is the lease the test fetcher holds.
const Lease = time.Hour

// Fetcher names the test fetcher.
const Fetcher = "fetcher/test"

// Claim starts an attempt.
func (s *Stack) Claim(t testing.TB, id uuid.UUID) {
	t.Helper()
	s.Decide(t, id, func(st pin.State) (pin.Payload, error) { return st.Claim(Fetcher, time.Now(), Lease) })
}

// Progress reports the current attempt's progress.
func (s *Stack) Progress(t testing.TB, id uuid.UUID, bytes, blocks int64, source string) {
	t.Helper()
	s.Decide(t, id, func(st pin.State) (pin.Payload, error) {
		return st.Progress(pin.FetchProgress{Fetcher: Fetcher, Attempt: st.Attempt, Bytes: bytes, Blocks: blocks, Source: source}, time.Now(), Lease)
	})
}

// Report reports the current attempt's progress as p says (its fetcher
// and attempt filled in): a fetch that knows the DAG's declared size.
func (s *Stack) Report(t testing.TB, id uuid.UUID, p pin.FetchProgress) {
	t.Helper()
	s.Decide(t, id, func(st pin.State) (pin.Payload, error) {
		p.Fetcher, p.Attempt = Fetcher, st.Attempt
		return st.Progress(p, time.Now(), Lease)
	})
}

// Complete uploads and validates the current attempt's CAR; the upload
// records the size the attempt's reports declared, as the fetcher's does.
func (s *Stack) Complete(t testing.TB, id uuid.UUID, carCID string, bytes int64) {
	t.Helper()
	s.Decide(t, id, func(st pin.State) (pin.Payload, error) {
		return st.Upload(pin.CarUploaded{Attempt: st.Attempt, Fetcher: Fetcher, Key: "staging/" + id.String(), Bytes: bytes, Blocks: 3, CarCID: carCID,
			ExpectedBytes: st.ExpectedBytes})
	})
	s.Decide(t, id, func(st pin.State) (pin.Payload, error) {
		return st.Validate(pin.CarValidated{Attempt: st.Attempt, Key: "carpark/" + id.String(), Bytes: bytes, CarCID: carCID})
	})
}

// Fail fails the current attempt and lets the retry decider (policy p)
// decide.
func (s *Stack) Fail(t testing.TB, id uuid.UUID, reason pin.Reason, message string, p pin.RetryPolicy) {
	t.Helper()
	s.Decide(t, id, func(st pin.State) (pin.Payload, error) {
		return st.Fail(Fetcher, st.Attempt, reason, message, reason.Permanent())
	})
	s.Decide(t, id, func(st pin.State) (pin.Payload, error) { return st.DecideRetry(p) })
}
