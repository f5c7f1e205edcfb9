package fetcher_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/fetcher"
)

// agent stands in for the ECS container agent's task-protection endpoint,
// which exists only inside an ECS task: a hand-written fake, since no ECS
// agent can run here. It checks requests against the agent's documented
// API and records the protection states asked for.
type agent struct {
	url string
	mu  sync.Mutex
	log []string
	// fail, when set, is answered instead of success.
	fail string
}

func newAgent(t *testing.T) *agent {
	a := &agent{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ProtectionEnabled *bool
			ExpiresInMinutes  *int
		}
		if r.Method != http.MethodPut || r.URL.Path != "/task-protection/v1/state" || json.NewDecoder(r.Body).Decode(&body) != nil || body.ProtectionEnabled == nil {
			http.Error(w, `{"error":{"Code":"InvalidParameterException","Message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.fail != "" {
			w.Write([]byte(`{"failure":{"Arn":"arn:aws:ecs:task","Reason":"` + a.fail + `","Detail":"denied"}}`))
			return
		}
		state := "off"
		if *body.ProtectionEnabled {
			state = "on"
			if body.ExpiresInMinutes == nil || *body.ExpiresInMinutes < 1 {
				http.Error(w, `{"error":{"Code":"InvalidParameterException","Message":"no expiry"}}`, http.StatusBadRequest)
				return
			}
		}
		a.log = append(a.log, state)
		w.Write([]byte(`{"protection":{"ProtectionEnabled":` + map[string]string{"on": "true", "off": "false"}[state] + `}}`))
	}))
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

func (a *agent) states() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.log...)
}

func TestECSTaskProtection(t *testing.T) {
	a := newAgent(t)
	p := fetcher.ECSTaskProtection{AgentURI: a.url + "/", Expires: 4*time.Hour + 10*time.Minute}
	if err := p.Protect(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if err := p.Protect(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(a.states(), ","); got != "on,off" {
		t.Errorf("agent saw %s, want on,off", got)
	}
	a.fail = "ACCESS_DENIED"
	if err := p.Protect(context.Background(), true); err == nil || !strings.Contains(err.Error(), "ACCESS_DENIED") {
		t.Errorf("a refusal in a 200 answer: error %v, want it reported", err)
	}
}
