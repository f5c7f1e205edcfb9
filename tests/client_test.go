package tests

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/api"
	psa "github.com/pickup-ipfs/pickup/api/client"
)

// client talks to a gateway as one tenant, through api/client; any error
// fails the test.
type client struct {
	t     testing.TB
	psa   *psa.Client
	token string
}

func (c *cluster) client(base string) *client {
	cl, err := psa.New(psa.Config{BaseURL: base, Token: c.token})
	if err != nil {
		c.t.Fatal(err)
	}
	return &client{t: c.t, psa: cl, token: c.token}
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// add pins a CID through the Pinning Service API.
func (cl *client) add(cid, name string) api.PinStatus {
	cl.t.Helper()
	ps, err := cl.psa.Add(context.Background(), api.Pin{CID: cid, Name: name}, "")
	if err != nil {
		cl.t.Fatal(err)
	}
	return ps
}

// remove removes a pin through the Pinning Service API.
func (cl *client) remove(id string) {
	cl.t.Helper()
	if err := cl.psa.Remove(context.Background(), id); err != nil {
		cl.t.Fatal(err)
	}
}

func (cl *client) get(id string) api.PinStatus {
	cl.t.Helper()
	ps, err := cl.psa.Get(context.Background(), id)
	if err != nil {
		cl.t.Fatal(err)
	}
	return ps
}

func (cl *client) list(o psa.ListOptions) api.PinResults {
	cl.t.Helper()
	res, err := cl.psa.List(context.Background(), o)
	if err != nil {
		cl.t.Fatal(err)
	}
	return res
}

// waitStatus polls a pin until it reaches one of the final statuses, and
// returns every status it was seen in, in order, without repeats. Unlike
// psa.Client.Wait it retries nothing: an error fails the test.
func (cl *client) waitStatus(id string, within time.Duration) ([]api.Status, api.PinStatus) {
	cl.t.Helper()
	var seen []api.Status
	deadline := time.Now().Add(within)
	for {
		ps := cl.get(id)
		if len(seen) == 0 || seen[len(seen)-1] != ps.Status {
			seen = append(seen, ps.Status)
		}
		if ps.Status.Final() {
			return seen, ps
		}
		if time.Now().After(deadline) {
			cl.t.Fatalf("pin %s not pinned or failed within %v: statuses %v, last %+v", id, within, seen, ps)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
