package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
)

func TestConfigValidate(t *testing.T) {
	d := gatewaytest.Delegate
	many := make([]string, gateway.MaxDelegates+1)
	for i := range many {
		many[i] = fmt.Sprintf("/ip4/8.8.8.%d/tcp/4001/p2p/%s", i+1, peerA)
	}
	for _, tc := range []struct {
		name    string
		cfg     gateway.Config
		problem string
	}{
		{"defaults", gateway.Config{Delegates: []string{d}}, ""},
		{"process consistency", gateway.Config{Delegates: []string{d}, Consistency: gateway.ConsistencyProcess}, ""},
		{"no delegates", gateway.Config{}, ""},
		{"bad delegate", gateway.Config{Delegates: []string{"/ip4/1.2.3.4/tcp"}}, "delegate 0"},
		{"delegate without peer id", gateway.Config{Delegates: []string{"/ip4/1.2.3.4/tcp/4001"}}, "does not end with /p2p/<peer id>"},
		{"delegate twice", gateway.Config{Delegates: []string{d, d}}, "listed twice"},
		{"too many delegates", gateway.Config{Delegates: many}, "21 delegates, at most 20"},
		{"bad consistency", gateway.Config{Delegates: []string{d}, Consistency: "eventual"}, `consistency "eventual"`},
		{"negative wait", gateway.Config{Delegates: []string{d}, ReadWait: -time.Second}, "negative read wait"},
		{"tiny body limit", gateway.Config{Delegates: []string{d}, MaxBodyBytes: 10}, "at least 1 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.problem == "" && err != nil || tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.problem)
			}
		})
	}
}

// clock is a settable clock for the token cache.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A revoked token stops working within TokenCacheTTL; with the cache off,
// at once.
func TestTokenRevocation(t *testing.T) {
	s := gatewaytest.New(t, gateway.Config{})
	for _, tc := range []struct {
		name     string
		ttl      time.Duration
		worksFor time.Duration
		deniedAt time.Duration
	}{
		{"cached for 10s", 10 * time.Second, 9 * time.Second, 11 * time.Second},
		{"no cache", -1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Now()}
			h, err := gateway.New(gateway.Config{Delegates: []string{gatewaytest.Delegate}, TokenCacheTTL: tc.ttl},
				gateway.Deps{Log: s.Log, Views: s.Views, Tokens: s.Views, Checkpoints: s.Views, Now: c.Now})
			if err != nil {
				t.Fatal(err)
			}
			token, id := s.IssueWithID(t, "alice")
			serveOnce(t, h, http.MethodGet, "/pins", "", "Bearer "+token).want(t, http.StatusOK, nil)
			s.Revoke(t, id)
			if tc.worksFor > 0 {
				c.Add(tc.worksFor)
				serveOnce(t, h, http.MethodGet, "/pins", "", "Bearer "+token).want(t, http.StatusOK, nil)
			}
			c.Add(tc.deniedAt - tc.worksFor)
			serveOnce(t, h, http.MethodGet, "/pins", "", "Bearer "+token).wantError(t, http.StatusUnauthorized, "UNAUTHORIZED", "")
		})
	}
}
