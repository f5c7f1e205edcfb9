package tenant_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/tenant"
)

func TestCheckWebhookURL(t *testing.T) {
	for _, c := range []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://hooks.example.com/pickup", false, true},
		{"https://hooks.example.com:8443/pickup?tenant=a", false, true},
		{"https://93.184.215.14/x", false, true},
		{"https://[2606:4700::1111]/x", false, true},
		{"HTTPS://Hooks.Example.COM/x", false, true},
		{"http://hooks.example.com/pickup", false, false},
		{"http://hooks.example.com/pickup", true, false}, // http only to loopback
		{"http://127.0.0.1:8080/hook", false, false},
		{"http://127.0.0.1:8080/hook", true, true},
		{"http://localhost:8080/hook", true, true},
		{"http://[::1]:8080/hook", true, true},
		{"http://10.0.0.5/hook", true, false},
		{"https://10.0.0.5/hook", true, true},
		{"https://10.0.0.5/hook", false, false},
		{"https://192.168.1.10/hook", false, false},
		{"https://172.16.0.1/hook", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://100.64.0.1/", false, false},
		{"https://[::1]/", false, false},
		{"https://[fd12::1]/", false, false},
		{"https://[::ffff:127.0.0.1]/", false, false},
		{"https://[64:ff9b::a00:1]/", false, false},
		{"https://localhost/", false, false},
		{"https://printer.local/", false, false},
		{"https://metadata.google.internal/", false, false},
		{"https://intranet/", false, false},
		{"https://2130706433/", false, false},
		{"https://user:pass@hooks.example.com/", false, false},
		{"https://hooks.example.com/#frag", false, false},
		{"https://hooks.example.com:0/", false, false},
		{"https://hooks.example.com:99999/", false, false},
		{"ftp://hooks.example.com/", false, false},
		{"hooks.example.com/x", false, false},
		{"https:///x", false, false},
		{"https://hooks.example.com/a b", false, false},
		{"https://hooks.example.com/\n", false, false},
		{"", false, false},
		{"https://hooks.example.com/" + strings.Repeat("a", tenant.MaxWebhookURL), false, false},
	} {
		u, err := tenant.CheckWebhookURL(c.url, c.allowPrivate)
		if (err == nil) != c.ok {
			t.Errorf("CheckWebhookURL(%q, private %v) = %v, %v; want ok %v", c.url, c.allowPrivate, u, err, c.ok)
		}
		if err != nil && !errors.Is(err, tenant.ErrInvalid) {
			t.Errorf("CheckWebhookURL(%q): %v is not ErrInvalid", c.url, err)
		}
	}
}

// URLs come from operators' command lines: the check never panics, and
// what it accepts is an absolute https (or allowed http) URL.
func FuzzCheckWebhookURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/x", "http://127.0.0.1:1/", "https://[::1]/", "https://a:b@c/", "https://%zz/"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, allowPrivate bool) {
		u, err := tenant.CheckWebhookURL(raw, allowPrivate)
		if err != nil {
			return
		}
		if u.Scheme != "https" && (u.Scheme != "http" || !allowPrivate) || u.Host == "" || u.User != nil || u.Fragment != "" {
			t.Fatalf("accepted %q as %#v", raw, u)
		}
		if _, err := tenant.CheckWebhookURL(u.String(), allowPrivate); err != nil {
			t.Fatalf("accepted %q, but not its normal form %q: %v", raw, u, err)
		}
	})
}

// The registry is the fold of the webhooks stream: registrations add,
// removals take away, each tenant sees its own, and the limit holds.
func TestWebhookRegistry(t *testing.T) {
	var reg tenant.Webhooks
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []eventlog.Event
	apply := func(p tenant.Payload, id uuid.UUID) {
		t.Helper()
		ev, err := tenant.Proposal(p, id, eventlog.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		e := eventlog.Event{ID: ev.ID, Stream: tenant.WebhooksStream, Revision: uint64(len(evs)), Type: ev.Type, Version: ev.Version, Data: ev.Data}
		evs = append(evs, e)
		if err := reg.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	a1, err := reg.Register("alice", "https://a.example.com/1", nil, "k", false, now)
	if err != nil || len(a1.Events) != 2 || a1.KeyID != "k" || a1.URL != "https://a.example.com/1" {
		t.Fatalf("Register: %+v, %v", a1, err)
	}
	apply(a1, uuid.New())
	a2, _ := reg.Register("alice", "https://a.example.com/2", []tenant.WebhookEvent{tenant.WebhookFailed}, "k", false, now.Add(time.Second))
	apply(a2, uuid.New())
	b1, _ := reg.Register("bob", "https://b.example.com/", []tenant.WebhookEvent{tenant.WebhookPinned}, "k", false, now)
	apply(b1, uuid.New())

	ids := func(ws []tenant.WebhookRegistered) string {
		var s []string
		for _, w := range ws {
			s = append(s, w.URL)
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		tenant string
		event  tenant.WebhookEvent
		want   string
	}{
		{"alice", tenant.WebhookPinned, "https://a.example.com/1"},
		{"alice", tenant.WebhookFailed, "https://a.example.com/1 https://a.example.com/2"},
		{"bob", tenant.WebhookPinned, "https://b.example.com/"},
		{"bob", tenant.WebhookFailed, ""},
		{"carol", tenant.WebhookPinned, ""},
	} {
		if got := ids(reg.For(c.tenant, c.event)); got != c.want {
			t.Errorf("For(%s, %s) = %q, want %q", c.tenant, c.event, got, c.want)
		}
	}
	rm, err := reg.Remove(a1.WebhookID)
	if err != nil || rm.Tenant != "alice" {
		t.Fatalf("Remove: %+v, %v", rm, err)
	}
	apply(rm, tenant.WebhookRemovalID(a1.WebhookID))
	if got := ids(reg.List("alice")); got != "https://a.example.com/2" {
		t.Errorf("after removal alice has %q", got)
	}
	if _, err := reg.Remove(a1.WebhookID); !errors.Is(err, tenant.ErrNoWebhook) {
		t.Errorf("removing twice: %v", err)
	}
	again, err := tenant.FoldWebhooks(evs)
	if err != nil || again.Len() != reg.Len() || again.Revision != reg.Revision || !again.Exists {
		t.Errorf("fold of the stream: %d webhooks at %d (%v), want %d at %d", again.Len(), again.Revision, err, reg.Len(), reg.Revision)
	}
	for i := reg.Len() - 1; len(reg.List("bob")) < tenant.MaxWebhooksPerTenant; i++ {
		w, err := reg.Register("bob", fmt.Sprintf("https://b.example.com/%d", i), nil, "k", false, now)
		if err != nil {
			t.Fatal(err)
		}
		apply(w, uuid.New())
	}
	for _, bad := range []struct{ tenant, url, key string }{
		{"bob", "https://b.example.com/more", "k"},  // over the limit
		{"bad name", "https://x.example.com/", "k"}, // tenant
		{"carol", "http://x.example.com/", "k"},     // URL
		{"carol", "https://x.example.com/", ""},     // no key
	} {
		if _, err := reg.Register(bad.tenant, bad.url, nil, bad.key, false, now); !errors.Is(err, tenant.ErrInvalid) {
			t.Errorf("Register(%q, %q, %q) = %v, want ErrInvalid", bad.tenant, bad.url, bad.key, err)
		}
	}
	if _, err := tenant.ParseWebhookEvents("pinned,unpinned"); !errors.Is(err, tenant.ErrInvalid) {
		t.Errorf("unknown event: %v", err)
	}
	if evs, err := tenant.ParseWebhookEvents(" failed , failed "); err != nil || len(evs) != 1 || evs[0] != tenant.WebhookFailed {
		t.Errorf("ParseWebhookEvents: %v, %v", evs, err)
	}
	if evs, err := tenant.ParseWebhookEvents(""); err != nil || len(evs) != 2 {
		t.Errorf("ParseWebhookEvents(\"\"): %v, %v", evs, err)
	}
}
