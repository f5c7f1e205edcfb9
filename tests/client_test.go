package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// pinStatus is the Pinning Service API's PinStatus.
type pinStatus struct {
	RequestID string    `json:"requestid"`
	Status    string    `json:"status"`
	Created   time.Time `json:"created"`
	Pin       struct {
		CID     string            `json:"cid"`
		Name    string            `json:"name"`
		Origins []string          `json:"origins"`
		Meta    map[string]string `json:"meta"`
	} `json:"pin"`
	Delegates []string          `json:"delegates"`
	Info      map[string]string `json:"info"`
}

type pinResults struct {
	Count   int         `json:"count"`
	Results []pinStatus `json:"results"`
}

// client talks to a gateway as one tenant.
type client struct {
	t     *testing.T
	base  string
	token string
}

func (c *cluster) client(api string) *client { return &client{t: c.t, base: api, token: c.token} }

// do sends a request and returns the status and body.
func (cl *client) do(method, path string, body []byte, header ...string) (int, []byte) {
	cl.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, cl.base+path, r)
	if err != nil {
		cl.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cl.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cl.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		cl.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// add pins a CID through the Pinning Service API.
func (cl *client) add(cid, name string) pinStatus {
	cl.t.Helper()
	body, _ := json.Marshal(map[string]any{"cid": cid, "name": name})
	code, b := cl.do(http.MethodPost, "/pins", body)
	if code != http.StatusAccepted {
		cl.t.Fatalf("POST /pins %s: %d %s", cid, code, b)
	}
	return decode[pinStatus](cl.t, b)
}

func (cl *client) get(id string) pinStatus {
	cl.t.Helper()
	code, b := cl.do(http.MethodGet, "/pins/"+id, nil)
	if code != http.StatusOK {
		cl.t.Fatalf("GET /pins/%s: %d %s", id, code, b)
	}
	return decode[pinStatus](cl.t, b)
}

func (cl *client) list(q url.Values) pinResults {
	cl.t.Helper()
	code, b := cl.do(http.MethodGet, "/pins?"+q.Encode(), nil)
	if code != http.StatusOK {
		cl.t.Fatalf("GET /pins?%s: %d %s", q.Encode(), code, b)
	}
	return decode[pinResults](cl.t, b)
}

// waitStatus polls a pin until it reaches one of the final statuses, and
// returns every status it was seen in, in order, without repeats.
func (cl *client) waitStatus(id string, within time.Duration) ([]string, pinStatus) {
	cl.t.Helper()
	var seen []string
	deadline := time.Now().Add(within)
	for {
		ps := cl.get(id)
		if len(seen) == 0 || seen[len(seen)-1] != ps.Status {
			seen = append(seen, ps.Status)
		}
		if ps.Status == "pinned" || ps.Status == "failed" {
			return seen, ps
		}
		if time.Now().After(deadline) {
			cl.t.Fatalf("pin %s not pinned or failed within %v: statuses %v, last %+v", id, within, seen, ps)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
