package gateway_test

// api/client against the real gateway on loopback: these tests live here,
// not in api/client, because the gateway's test stack is internal to
// gateway/.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
	psa "github.com/pickup-ipfs/pickup/api/client"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/gateway/internal/gatewaytest"
)

// psaClient starts a stack and returns it, its server's URL and an
// api/client of a tenant.
func psaClient(t *testing.T) (*gatewaytest.Stack, string, *psa.Client) {
	t.Helper()
	s := gatewaytest.New(t, gateway.Config{})
	srv := s.Server(t)
	c, err := psa.New(psa.Config{BaseURL: srv.URL, Token: s.Token(t, "alice"), Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s, srv.URL, c
}

// wantPins checks that the tenant has n live pins, in any status.
func wantPins(t *testing.T, c *psa.Client, n int, why string) {
	t.Helper()
	res, err := c.List(context.Background(), psa.ListOptions{Status: api.AllStatuses()})
	if err != nil || res.Count != n || len(res.Results) != n {
		t.Fatalf("%s: %d pins listed (%v), want %d", why, res.Count, err, n)
	}
}

// Add, Get, List, Replace and Remove do what the spec says, as the gateway
// records them.
func TestClientPins(t *testing.T) {
	s, _, c := psaClient(t)
	ctx := context.Background()
	root := newCID(t).String()
	origin := "/ip4/8.8.8.8/tcp/4001/p2p/" + peerA
	added, err := c.Add(ctx, api.Pin{CID: root, Name: "PreciousData.pdf", Origins: []string{origin}, Meta: map[string]string{"app": "a"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(added.RequestID)
	if err != nil || added.Status != api.StatusQueued || added.Pin.CID != root || added.Pin.Name != "PreciousData.pdf" ||
		!slices.Equal(added.Pin.Origins, []string{origin}) || added.Pin.Meta["app"] != "a" ||
		!slices.Equal(added.Delegates, []string{gatewaytest.Delegate}) || added.Created.IsZero() || added.Info[api.InfoStatusDetails] != "queued" {
		t.Fatalf("Add answered %+v (%v)", added, err)
	}
	if st := s.Pin(t, id); st.Request.CID != root || st.Request.Name != "PreciousData.pdf" {
		t.Fatalf("the log holds %+v", st.Request)
	}
	got, err := c.Get(ctx, added.RequestID)
	if err != nil || got.RequestID != added.RequestID || !got.Created.Equal(added.Created.Time) || got.Status != api.StatusQueued || got.Pin.CID != root {
		t.Fatalf("Get answered %+v (%v), want the added pin %+v", got, err, added)
	}

	// Two more to list, older first.
	other, err := c.Add(ctx, api.Pin{CID: newCID(t).String(), Name: "holiday photos"}, "")
	if err != nil {
		t.Fatal(err)
	}
	newest, err := c.Add(ctx, api.Pin{CID: newCID(t).String(), Name: "Photos of the cat", Meta: map[string]string{"app": "b"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	all := api.AllStatuses()
	for _, l := range []struct {
		name  string
		o     psa.ListOptions
		want  []string // request ids, newest first
		count int
	}{
		{"pinned only, by default", psa.ListOptions{}, nil, 0},
		{"every status", psa.ListOptions{Status: all}, []string{newest.RequestID, other.RequestID, added.RequestID}, 3},
		{"limit", psa.ListOptions{Status: all, Limit: 2}, []string{newest.RequestID, other.RequestID}, 3},
		{"before the newest", psa.ListOptions{Status: all, Before: newest.Created.Time}, []string{other.RequestID, added.RequestID}, 2},
		{"after the oldest", psa.ListOptions{Status: all, After: added.Created.Time}, []string{newest.RequestID, other.RequestID}, 2},
		{"by CID", psa.ListOptions{CIDs: []string{root, other.Pin.CID}}, []string{other.RequestID, added.RequestID}, 2},
		{"name, exact", psa.ListOptions{Name: "holiday photos"}, []string{other.RequestID}, 1},
		{"name, ipartial", psa.ListOptions{Name: "PHOTOS", Match: api.MatchIPartial}, []string{newest.RequestID, other.RequestID}, 2},
		{"name, partial", psa.ListOptions{Name: "Photos", Match: api.MatchPartial}, []string{newest.RequestID}, 1},
		{"meta", psa.ListOptions{Meta: map[string]string{"app": "a"}}, []string{added.RequestID}, 1},
		{"queued", psa.ListOptions{Status: []api.Status{api.StatusQueued}, Name: "nothing so named"}, nil, 0},
	} {
		t.Run(l.name, func(t *testing.T) {
			res, err := c.List(ctx, l.o)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range res.Results {
				ids = append(ids, r.RequestID)
			}
			if res.Count != l.count || !slices.Equal(ids, l.want) {
				t.Fatalf("listed %d: %v; want %d: %v", res.Count, ids, l.count, l.want)
			}
		})
	}

	// Replace: a new request; the old one is gone.
	repl, err := c.Replace(ctx, other.RequestID, api.Pin{CID: root, Name: "again"}, "")
	if err != nil || repl.RequestID == other.RequestID || repl.Pin.CID != root || repl.Pin.Name != "again" || repl.Status != api.StatusQueued {
		t.Fatalf("Replace answered %+v (%v)", repl, err)
	}
	if _, err := c.Get(ctx, other.RequestID); !errors.Is(err, psa.ErrNotFound) {
		t.Fatalf("Get of the replaced pin: %v, want ErrNotFound", err)
	}

	// Remove: gone at once, and a second Remove finds nothing.
	if err := c.Remove(ctx, added.RequestID); err != nil {
		t.Fatal(err)
	}
	if !s.Pin(t, id).Removed {
		t.Fatal("Remove left the pin in the log")
	}
	if _, err := c.Get(ctx, added.RequestID); !errors.Is(err, psa.ErrNotFound) {
		t.Fatalf("Get of a removed pin: %v, want ErrNotFound", err)
	}
	if err := c.Remove(ctx, added.RequestID); !errors.Is(err, psa.ErrNotFound) {
		t.Fatalf("second Remove: %v, want ErrNotFound", err)
	}
	wantPins(t, c, 2, "after a replace and a remove")
}

// The gateway's refusals reach the caller with their reason and details,
// and sort into kinds.
func TestClientErrors(t *testing.T) {
	s, base, c := psaClient(t)
	ctx := context.Background()
	revokedToken, tokenID := s.IssueWithID(t, "alice")
	s.Revoke(t, tokenID)
	revoked, err := psa.New(psa.Config{BaseURL: base, Token: revokedToken})
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := psa.New(psa.Config{BaseURL: base, Token: "pk_nobody"})
	if err != nil {
		t.Fatal(err)
	}
	elevenCIDs := make([]string, 11)
	for i := range elevenCIDs {
		elevenCIDs[i] = newCID(t).String()
	}
	for _, tc := range []struct {
		name    string
		call    func() error
		kind    error
		status  int
		reason  string
		details string
	}{
		{"a CID that is not one", func() error { _, err := c.Add(ctx, api.Pin{CID: "not-a-cid"}, ""); return err },
			psa.ErrBadRequest, 400, api.ReasonBadRequest, "cid"},
		{"no CID", func() error { _, err := c.Add(ctx, api.Pin{Name: "nameless"}, ""); return err },
			psa.ErrBadRequest, 400, api.ReasonBadRequest, "empty CID"},
		{"a bad origin", func() error {
			_, err := c.Add(ctx, api.Pin{CID: newCID(t).String(), Origins: []string{"/ip4/8.8.8.8/tcp/1"}}, "")
			return err
		}, psa.ErrBadRequest, 400, api.ReasonBadRequest, "does not end with /p2p/<peer id>"},
		{"too many CIDs listed", func() error { _, err := c.List(ctx, psa.ListOptions{CIDs: elevenCIDs}); return err },
			psa.ErrBadRequest, 400, api.ReasonBadRequest, "at most 10"},
		{"a limit over 1000", func() error { _, err := c.List(ctx, psa.ListOptions{Limit: 1001}); return err },
			psa.ErrBadRequest, 400, api.ReasonBadRequest, "limit"},
		{"an unknown status", func() error {
			_, err := c.List(ctx, psa.ListOptions{Status: []api.Status{"done"}})
			return err
		}, psa.ErrBadRequest, 400, api.ReasonBadRequest, "done"},
		{"an id nobody has", func() error { _, err := c.Get(ctx, uuid.NewString()); return err },
			psa.ErrNotFound, 404, api.ReasonNotFound, "not found"},
		{"removing an id nobody has", func() error { return c.Remove(ctx, uuid.NewString()) },
			psa.ErrNotFound, 404, api.ReasonNotFound, "not found"},
		{"replacing an id nobody has", func() error {
			_, err := c.Replace(ctx, uuid.NewString(), api.Pin{CID: newCID(t).String()}, "")
			return err
		}, psa.ErrNotFound, 404, api.ReasonNotFound, "not found"},
		{"an unknown token", func() error { _, err := unknown.List(ctx, psa.ListOptions{}); return err },
			psa.ErrUnauthorized, 401, api.ReasonUnauthorized, ""},
		{"a revoked token", func() error { _, err := revoked.Add(ctx, api.Pin{CID: newCID(t).String()}, ""); return err },
			psa.ErrUnauthorized, 401, api.ReasonUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var e *psa.Error
			if !errors.As(err, &e) || !errors.Is(err, tc.kind) || e.Status != tc.status || e.Reason != tc.reason || !strings.Contains(e.Details, tc.details) {
				t.Fatalf("error %#v, want %v: %d %s with details mentioning %q", err, tc.kind, tc.status, tc.reason, tc.details)
			}
		})
	}
	wantPins(t, c, 0, "after the refused requests")
}

// An Idempotency-Key makes a retry answer the first request instead of
// making another; the same key with another Pin is refused.
func TestClientIdempotencyKey(t *testing.T) {
	_, _, c := psaClient(t)
	ctx := context.Background()
	p := api.Pin{CID: newCID(t).String(), Name: "once"}
	first, err := c.Add(ctx, p, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	old, err := c.Add(ctx, api.Pin{CID: newCID(t).String()}, "")
	if err != nil {
		t.Fatal(err)
	}
	replaced, err := c.Replace(ctx, old.RequestID, p, "key-2")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() (api.PinStatus, error)
		want api.PinStatus // the status of the first request; zero when refused
		kind error
	}{
		{"Add again", func() (api.PinStatus, error) { return c.Add(ctx, p, "key-1") }, first, nil},
		{"Add with another Pin", func() (api.PinStatus, error) { return c.Add(ctx, api.Pin{CID: newCID(t).String()}, "key-1") }, api.PinStatus{}, psa.ErrKeyReused},
		{"Add with another name", func() (api.PinStatus, error) { return c.Add(ctx, api.Pin{CID: p.CID, Name: "twice"}, "key-1") }, api.PinStatus{}, psa.ErrKeyReused},
		{"Replace again", func() (api.PinStatus, error) { return c.Replace(ctx, old.RequestID, p, "key-2") }, replaced, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			if tc.kind != nil {
				var e *psa.Error
				if !errors.Is(err, tc.kind) || !errors.As(err, &e) || e.Status != 422 || e.Reason != api.ReasonIdempotencyKeyUsed {
					t.Fatalf("error %#v, want 422 %s", err, api.ReasonIdempotencyKeyUsed)
				}
				return
			}
			if err != nil || got.RequestID != tc.want.RequestID || !got.Created.Equal(tc.want.Created.Time) {
				t.Fatalf("answered %+v (%v), want the first answer %+v", got, err, tc.want)
			}
		})
	}
	wantPins(t, c, 2, "the keyed pin and the replacement")
}

// Wait follows a pin as the fetcher moves it on, showing each status, to
// pinned.
func TestClientWait(t *testing.T) {
	s, _, c := psaClient(t)
	ctx := context.Background()
	ps, err := c.Add(ctx, api.Pin{CID: newCID(t).String()}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.MustParse(ps.RequestID)
	seen := make(chan api.PinStatus, 1000)
	done := make(chan struct{})
	var final api.PinStatus
	go func() {
		defer close(done)
		final, err = c.Wait(ctx, ps, func(ps api.PinStatus) { seen <- ps })
	}()
	// Each step waits until Wait has shown the one before.
	next := func(want api.Status, info string) {
		t.Helper()
		for deadline := time.After(30 * time.Second); ; {
			select {
			case got := <-seen:
				if got.Status == want && (info == "" || got.Info[info] != "") {
					return
				}
			case <-deadline:
				t.Fatalf("Wait never showed %s with %s", want, info)
			}
		}
	}
	next(api.StatusQueued, "")
	s.Claim(t, id)
	next(api.StatusPinning, api.InfoAttempt)
	s.Progress(t, id, 1<<20, 3, "gateway")
	next(api.StatusPinning, api.InfoBytes)
	s.Complete(t, id, "bagcarcid", 1<<20+100)
	<-done
	if err != nil || final.Status != api.StatusPinned || final.Info[api.InfoCarCID] != "bagcarcid" || final.Info[api.InfoCarBytes] != "1048676" {
		t.Fatalf("Wait returned %+v (%v), want pinned with the CAR", final, err)
	}
}
