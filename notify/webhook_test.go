package notify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/notify"
)

// TestWebhookRedirectIsAFailedAttempt proves that the webhook client
// follows no redirect, not even to loopback with private webhooks allowed:
// the 3xx is the attempt's answer, and the target is never asked.
func TestWebhookRedirectIsAFailedAttempt(t *testing.T) {
	var asked atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked.Add(1) }))
	defer target.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()
	c := notify.NewWebhookClient(notify.WebhookClientConfig{AllowPrivate: true})
	status, err := c.Post(context.Background(), notify.WebhookRequest{URL: redirecting.URL, ID: uuid.New(), Event: "pinned", Body: []byte("{}"), Secret: "s", Time: time.Now()})
	if err == nil || status != http.StatusTemporaryRedirect {
		t.Fatalf("redirect: %d %v, want a failed attempt with the 307", status, err)
	}
	if n := asked.Load(); n != 0 {
		t.Fatalf("the redirect's target was asked %d times", n)
	}
}

// TestWebhookErrorHoldsNoReasonPhrase: a receiver's reason phrase (its own
// words, which the attempt's event would keep) is not recorded; the status
// code and its standard text are.
func TestWebhookErrorHoldsNoReasonPhrase(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 500 \x1b[31m<b>PWNED</b>\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		buf.Flush()
	}))
	defer srv.Close()
	c := notify.NewWebhookClient(notify.WebhookClientConfig{AllowPrivate: true})
	status, err := c.Post(context.Background(), notify.WebhookRequest{URL: srv.URL, ID: uuid.New(), Event: "failed", Body: []byte("{}"), Secret: "s", Time: time.Now()})
	if err == nil || status != 500 {
		t.Fatalf("%d %v, want a failed 500", status, err)
	}
	if msg := err.Error(); strings.Contains(msg, "PWNED") || strings.Contains(msg, "\x1b") || !strings.Contains(msg, "500 Internal Server Error") {
		t.Fatalf("error %q", msg)
	}
}
