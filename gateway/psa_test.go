package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// A pin's whole life through the API: accepted, visible at once, its
// progress shown while it is fetched, pinned, deleted and gone at once.
func TestPinLifecycle(t *testing.T) {
	s, _, c := setup(t, gateway.Config{})
	root := newCID(t).String()
	ps := c.addPin(`{"cid":"` + root + `","name":"PreciousData.pdf","origins":["/ip4/8.8.8.8/tcp/4001/p2p/` + peerA + `"],"meta":{"app_id":"a1"}}`)
	id, err := uuid.Parse(ps.RequestID)
	switch {
	case err != nil:
		t.Fatalf("requestid %q is not a UUID: %v", ps.RequestID, err)
	case ps.Status != "queued" || ps.Pin.CID != root || ps.Pin.Name != "PreciousData.pdf" || ps.Pin.Meta["app_id"] != "a1":
		t.Fatalf("202 body %+v does not echo the request as queued", ps)
	case !slices.Equal(ps.Delegates, []string{gatewaytest.Delegate}):
		t.Fatalf("delegates %q, want the configured %q", ps.Delegates, gatewaytest.Delegate)
	case ps.Created.IsZero():
		t.Fatal("no created time")
	}

	// Read your writes: no wait between the 202 and these reads.
	var got api.PinStatus
	c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &got)
	if got.RequestID != ps.RequestID || !got.Created.Equal(ps.Created.Time) || got.Status != "queued" {
		t.Fatalf("GET after POST = %+v, want the accepted pin %+v", got, ps)
	}
	var list api.PinResults
	c.do(http.MethodGet, "/pins?status=queued", "").want(t, http.StatusOK, &list)
	if list.Count != 1 || len(list.Results) != 1 || list.Results[0].RequestID != ps.RequestID {
		t.Fatalf("queued listing %+v, want the new pin", list)
	}
	c.do(http.MethodGet, "/pins", "").want(t, http.StatusOK, &list)
	if list.Count != 0 || list.Results == nil {
		t.Fatalf("default listing (pinned only) = %+v, want an empty results array", list)
	}

	s.Claim(t, id)
	s.Progress(t, id, 3<<20, 12, "bitswap")
	s.Sync(t)
	c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &got)
	wantInfo(t, got, "pinning", map[string]string{"attempt": "1", "bytes": "3145728", "blocks": "12", "source": "bitswap",
		"status_details": "pinning: attempt 1, 3.0 MiB in 12 blocks so far from bitswap"})

	s.Complete(t, id, "bagaaiera-car", 4<<20)
	s.Sync(t)
	c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &got)
	wantInfo(t, got, "pinned", map[string]string{"attempt": "1", "car_cid": "bagaaiera-car", "car_bytes": "4194304",
		"status_details": "pinned: CAR bagaaiera-car, 4.0 MiB"})
	c.do(http.MethodGet, "/pins", "").want(t, http.StatusOK, &list)
	if list.Count != 1 || list.Results[0].RequestID != ps.RequestID {
		t.Fatalf("default listing after pinning = %+v, want the pin", list)
	}

	c.do(http.MethodDelete, "/pins/"+ps.RequestID, "").want(t, http.StatusAccepted, nil)
	c.do(http.MethodGet, "/pins/"+ps.RequestID, "").wantError(t, http.StatusNotFound, "NOT_FOUND", "not found")
	c.do(http.MethodGet, "/pins?status=queued,pinning,pinned,failed", "").want(t, http.StatusOK, &list)
	if list.Count != 0 {
		t.Fatalf("listing after delete = %+v, want nothing", list)
	}
	c.do(http.MethodDelete, "/pins/"+ps.RequestID, "").wantError(t, http.StatusNotFound, "NOT_FOUND", "")
	if st := s.Pin(t, id); !st.Removed {
		t.Fatalf("log state after delete: %+v, want removed", st)
	}
}

func wantInfo(t *testing.T, got api.PinStatus, status string, info map[string]string) {
	t.Helper()
	if string(got.Status) != status {
		t.Fatalf("status %q, want %q", got.Status, status)
	}
	for k, v := range info {
		if got.Info[k] != v {
			t.Errorf("info[%s] = %q, want %q (info %v)", k, got.Info[k], v, got.Info)
		}
	}
}

// Failures show why, whether a retry is coming and when.
func TestInfoOnFailure(t *testing.T) {
	s, _, c := setup(t, gateway.Config{})
	policy := pin.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Hour, MaxDelay: time.Hour}
	ps := c.addPin(`{"cid":"` + newCID(t).String() + `"}`)
	id := uuid.MustParse(ps.RequestID)
	s.Claim(t, id)
	s.Fail(t, id, pin.ReasonStalled, "no bytes for 2m", policy)
	s.Sync(t)
	var got api.PinStatus
	c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &got)
	wantInfo(t, got, "queued", map[string]string{"attempt": "1", "failures": "1", "failure_reason": "stalled", "failure_message": "no bytes for 2m"})
	retryAt, err := time.Parse(time.RFC3339, got.Info["retry_at"])
	if err != nil || retryAt.Before(time.Now().Add(30*time.Minute)) {
		t.Fatalf("retry_at %q, want a time about an hour ahead (%v)", got.Info["retry_at"], err)
	}
	if !strings.Contains(got.Info["status_details"], "retry at") {
		t.Errorf("status_details %q does not say when the retry comes", got.Info["status_details"])
	}

	s.Decide(t, id, func(st pin.State) (pin.Payload, error) { return st.Claim(gatewaytest.Fetcher, st.NotBefore, time.Hour) })
	s.Fail(t, id, pin.ReasonSourcesFailed, "every source refused", policy)
	s.Sync(t)
	c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &got)
	wantInfo(t, got, "failed", map[string]string{"attempt": "2", "failures": "2", "failure_reason": "sources_failed"})
	if !strings.Contains(got.Info["failure_message"], "every source refused") {
		t.Errorf("failure_message %q lost the last failure's message", got.Info["failure_message"])
	}
	var list api.PinResults
	c.do(http.MethodGet, "/pins?status=failed", "").want(t, http.StatusOK, &list)
	if list.Count != 1 {
		t.Fatalf("failed listing %+v, want the pin", list)
	}
}

// A tenant can neither see nor change another's pins, and cannot tell them
// from pins that do not exist.
func TestTenantIsolation(t *testing.T) {
	s, base, alice := setup(t, gateway.Config{})
	bob := bearer(t, base, s.Token(t, "bob"))
	ps := alice.addPin(`{"cid":"` + newCID(t).String() + `","name":"secret"}`)
	unknown := uuid.NewString()
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodGet, "/pins/" + ps.RequestID, ""},
		{http.MethodDelete, "/pins/" + ps.RequestID, ""},
		{http.MethodPost, "/pins/" + ps.RequestID, `{"cid":"` + newCID(t).String() + `"}`},
	} {
		got := bob.do(tc.method, tc.path, tc.body)
		same := bob.do(tc.method, strings.Replace(tc.path, ps.RequestID, unknown, 1), tc.body)
		got.wantError(t, http.StatusNotFound, "NOT_FOUND", "")
		if string(got.body) != string(same.body) {
			t.Errorf("%s on another tenant's pin answers %s, on an unknown id %s: ids leak", tc.method, got.body, same.body)
		}
	}
	var list api.PinResults
	bob.do(http.MethodGet, "/pins?status=queued&name=secret", "").want(t, http.StatusOK, &list)
	if list.Count != 0 {
		t.Fatalf("bob lists %+v", list)
	}
	var got api.PinStatus
	alice.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &got)
	if got.Status != "queued" {
		t.Fatalf("bob's attempts changed alice's pin: %+v", got)
	}
}

func TestAuthorization(t *testing.T) {
	s, base, _ := setup(t, gateway.Config{})
	token := s.Token(t, "alice")
	revoked, revokedID := s.IssueWithID(t, "alice")
	s.Revoke(t, revokedID)
	for _, tc := range []struct {
		name, path, auth string
		status           int
		challenge        string
	}{
		{"bearer", "/pins", "Bearer " + token, http.StatusOK, ""},
		{"basic on a PSA route", "/pins", basic(t, base, "alice", token).auth, http.StatusOK, ""},
		{"basic on a cluster route", "/pins/" + newCID(t).String(), basic(t, base, "alice", token).auth, http.StatusOK, ""},
		{"missing", "/pins", "", http.StatusUnauthorized, "Bearer"},
		{"empty bearer", "/pins", "Bearer ", http.StatusUnauthorized, "Bearer"},
		{"unknown token", "/pins", "Bearer pickup_nope", http.StatusUnauthorized, "Bearer"},
		{"revoked token", "/pins", "Bearer " + revoked, http.StatusUnauthorized, "Bearer"},
		{"other scheme", "/pins", "Token " + token, http.StatusUnauthorized, "Bearer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := client{t: t, base: base, auth: tc.auth}.do(http.MethodGet, tc.path, "")
			if tc.status == http.StatusOK {
				r.want(t, http.StatusOK, nil)
				return
			}
			r.wantError(t, http.StatusUnauthorized, "UNAUTHORIZED", "Access token is missing or invalid")
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.challenge+" realm=") {
				t.Errorf("WWW-Authenticate %q, want a %s challenge", got, tc.challenge)
			}
		})
	}
	// Nothing is written for an unauthorized command.
	head, _ := s.Log.Head(context.Background())
	client{t: t, base: base, auth: "Bearer nope"}.do(http.MethodPost, "/pins", `{"cid":"`+newCID(t).String()+`"}`).
		wantError(t, http.StatusUnauthorized, "UNAUTHORIZED", "")
	if after, _ := s.Log.Head(context.Background()); after != head {
		t.Fatalf("an unauthorized POST appended to the log (%d -> %d)", head, after)
	}
}

func TestReplace(t *testing.T) {
	s, _, c := setup(t, gateway.Config{})
	old := c.addPin(`{"cid":"` + newCID(t).String() + `","name":"v1"}`)
	newRoot := newCID(t).String()
	var repl api.PinStatus
	c.do(http.MethodPost, "/pins/"+old.RequestID, `{"cid":"`+newRoot+`","name":"v2"}`).want(t, http.StatusAccepted, &repl)
	if repl.RequestID == old.RequestID || repl.Pin.CID != newRoot || repl.Status != "queued" || !repl.Created.After(old.Created.Time) {
		t.Fatalf("replacement %+v of %+v: want a new request id, the new CID, queued, created later", repl, old)
	}
	c.do(http.MethodGet, "/pins/"+old.RequestID, "").wantError(t, http.StatusNotFound, "NOT_FOUND", "")
	var got api.PinStatus
	c.do(http.MethodGet, "/pins/"+repl.RequestID, "").want(t, http.StatusOK, &got)
	var list api.PinResults
	c.do(http.MethodGet, "/pins?status=queued", "").want(t, http.StatusOK, &list)
	if list.Count != 1 || list.Results[0].RequestID != repl.RequestID {
		t.Fatalf("listing after replace = %+v, want only the replacement", list)
	}
	oldState, newState := s.Pin(t, uuid.MustParse(old.RequestID)), s.Pin(t, uuid.MustParse(repl.RequestID))
	if !oldState.Removed || oldState.ReplacedBy.String() != repl.RequestID || newState.Request.Replaces.String() != old.RequestID {
		t.Fatalf("log does not link the two: old %+v, new %+v", oldState, newState.Request)
	}
	// The old id is gone for every command.
	c.do(http.MethodPost, "/pins/"+old.RequestID, `{"cid":"`+newRoot+`"}`).wantError(t, http.StatusNotFound, "NOT_FOUND", "")
	c.do(http.MethodPost, "/pins/"+uuid.NewString(), `{"cid":"`+newRoot+`"}`).wantError(t, http.StatusNotFound, "NOT_FOUND", "")
	// A bad body is refused before anything is looked up or written.
	c.do(http.MethodPost, "/pins/"+repl.RequestID, `{"cid":"nope"}`).wantError(t, http.StatusBadRequest, "BAD_REQUEST", `cid: "nope" is not a CID`)
	c.do(http.MethodGet, "/pins/"+repl.RequestID, "").want(t, http.StatusOK, nil)
}

// Two replaces of one pin race: exactly one wins; the loser's new request
// is withdrawn and it answers 404, as if it had come second.
func TestConcurrentReplace(t *testing.T) {
	s, _, c := setup(t, gateway.Config{})
	for round := range 10 {
		old := c.addPin(`{"cid":"` + newCID(t).String() + `"}`)
		const racers = 4
		answers := make([]response, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				answers[i] = c.do(http.MethodPost, "/pins/"+old.RequestID, fmt.Sprintf(`{"cid":"%s","name":"racer %d"}`, newCID(t), i))
			})
		}
		wg.Wait()
		var winner api.PinStatus
		wins := 0
		for _, a := range answers {
			switch a.status {
			case http.StatusAccepted:
				wins++
				a.want(t, http.StatusAccepted, &winner)
			case http.StatusNotFound:
			default:
				t.Fatalf("round %d: a racer got %d %s", round, a.status, a.body)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d replaces won, want exactly 1", round, wins)
		}
		var list api.PinResults
		c.do(http.MethodDelete, "/pins/"+winner.RequestID, "").want(t, http.StatusAccepted, nil)
		c.do(http.MethodGet, "/pins?status=queued,pinning,pinned,failed", "").want(t, http.StatusOK, &list)
		if list.Count != 0 {
			t.Fatalf("round %d: losers' requests still live: %+v", round, list)
		}
		if st := s.Pin(t, uuid.MustParse(old.RequestID)); st.ReplacedBy.String() != winner.RequestID {
			t.Fatalf("round %d: old replaced by %s, but %s won", round, st.ReplacedBy, winner.RequestID)
		}
	}
}

// A DELETE that races a fetcher's progress on the same stream still
// removes the pin: it decides again on what the fetcher appended.
func TestDeleteWhileFetching(t *testing.T) {
	s, _, c := setup(t, gateway.Config{})
	ps := c.addPin(`{"cid":"` + newCID(t).String() + `"}`)
	id := uuid.MustParse(ps.RequestID)
	s.Claim(t, id)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := int64(1); ctx.Err() == nil; n++ {
			st := s.Pin(t, id)
			p, err := st.Progress(pin.FetchProgress{Fetcher: gatewaytest.Fetcher, Attempt: st.Attempt, Bytes: n, Blocks: n, Source: "gateway"}, time.Now(), time.Hour)
			if err != nil {
				return // removed: the fetcher's claim is gone
			}
			e, _ := pinlog.Propose(p, uuid.New(), eventlog.Metadata{})
			s.Log.Append(ctx, pin.Stream(id), pinlog.Expected(st), e)
			time.Sleep(100 * time.Microsecond) // a busy fetcher, reporting every block
		}
	})
	time.Sleep(5 * time.Millisecond)
	c.do(http.MethodDelete, "/pins/"+ps.RequestID, "").want(t, http.StatusAccepted, nil)
	cancel()
	wg.Wait()
	if !s.Pin(t, id).Removed {
		t.Fatal("pin not removed")
	}
	c.do(http.MethodGet, "/pins/"+ps.RequestID, "").wantError(t, http.StatusNotFound, "NOT_FOUND", "")
}
