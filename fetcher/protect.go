package fetcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ECSTaskProtection asks the ECS agent to protect this task from scale-in
// while fetches run (ECS task scale-in protection): scaling the fetchers in
// must never kill work in flight.
type ECSTaskProtection struct {
	// AgentURI is $ECS_AGENT_URI, set by ECS in every task.
	AgentURI string
	// Expires bounds a protection that is never lifted (the process died
	// holding it); it should outlast the longest attempt.
	Expires time.Duration
	Client  *http.Client
}

// Protect sets or lifts the task's protection.
func (p ECSTaskProtection) Protect(ctx context.Context, on bool) error {
	body := map[string]any{"ProtectionEnabled": on}
	if on {
		body["ExpiresInMinutes"] = int(max(p.Expires.Round(time.Minute)/time.Minute, 1))
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	url := strings.TrimSuffix(p.AgentURI, "/") + "/task-protection/v1/state"
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("task protection: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("task protection: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	// The agent answers 200 with a body that may still carry a failure.
	var answer struct {
		Failure *struct{ Reason, Detail string } `json:"failure"`
		Error   *struct{ Code, Message string }  `json:"error"`
	}
	json.Unmarshal(msg, &answer)
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("task protection: agent answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	case answer.Failure != nil:
		return fmt.Errorf("task protection: %s: %s", answer.Failure.Reason, answer.Failure.Detail)
	case answer.Error != nil:
		return fmt.Errorf("task protection: %s: %s", answer.Error.Code, answer.Error.Message)
	}
	return nil
}
