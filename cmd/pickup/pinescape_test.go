package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
)

// hostileName is a pin name that would colour the terminal red, end its
// line, set the window's title, reorder the text that follows (a
// bidirectional override) and send an 8-bit CSI, printed raw.
const hostileName = "\x1b[31mred\nsecond line\x1b]0;title\x07\u202eevil\u009b2J\ttab"

// hostileService is a pinning service (any service `pickup pin` is
// pointed at) whose answers carry terminal escapes in every string: the
// pin's name, its meta, its CID, its status details and failure message,
// and its error details.
func hostileService(t *testing.T) (string, api.PinStatus) {
	t.Helper()
	ps := api.PinStatus{
		RequestID: uuid.NewString(), Status: api.StatusFailed, Created: api.Time{Time: time.Now()},
		Pin:       api.Pin{CID: "bafy\x1b[2Jcid", Name: hostileName, Meta: map[string]string{"k\x1b[1m": "v\r\nX"}},
		Delegates: []string{},
		Info: map[string]string{api.InfoStatusDetails: "details \x1b[5mblink", api.InfoFailureReason: "sources_failed",
			api.InfoFailureMessage: "gateway said \x1b[31m<html>\n"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/pins":
			json.NewEncoder(w).Encode(api.PinResults{Count: 1, Results: []api.PinStatus{ps}})
		case r.Method == http.MethodGet && r.URL.Path == "/pins/"+ps.RequestID:
			json.NewEncoder(w).Encode(ps)
		default:
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.Failure{Error: api.FailureError{Reason: "NOT_FOUND", Details: "no \x1b[2J such \x1b]0;x\x07 pin\nforged line"}})
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ps
}

// rawTerminal reports the bytes that would act on a terminal: C0 controls
// but the line ends printing adds, DEL, C1 controls and bidirectional
// formatting.
func rawTerminal(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
	})
}

// TestPinOutputIsEscaped proves that `pin ls`, `pin status` (and its
// --wait lines), and the errors they print escape what the service sent:
// no escape sequence, control character or line break of the service's
// reaches the terminal; and that --json stays valid JSON holding the same
// values, with every such character \u-escaped.
func TestPinOutputIsEscaped(t *testing.T) {
	base, ps := hostileService(t)
	vars := map[string]string{"PICKUP_API": base, "PICKUP_TOKEN": "t"}
	pin := func(args ...string) (int, string, string) {
		e, out, errs := testEnv(vars)
		code := run(context.Background(), e, append([]string{"pin"}, args...))
		return code, out.String(), errs.String()
	}
	for _, args := range [][]string{{"ls"}, {"status", ps.RequestID}, {"status", "--wait", ps.RequestID}, {"rm", uuid.NewString()}} {
		code, out, errs := pin(args...)
		if code == 0 && args[0] != "ls" {
			t.Errorf("pin %v: exit 0 for a failed pin or a refusal", args)
		}
		for _, stream := range []string{out, errs} {
			if rawTerminal(stream) {
				t.Errorf("pin %v printed raw terminal controls: %q", args, stream)
			}
		}
		if args[0] == "rm" {
			if !strings.Contains(errs, `no \x1b[2J such`) || strings.Contains(errs, "\nforged line") {
				t.Errorf("pin rm: the service's error details are not escaped: %q", errs)
			}
			continue
		}
		// The name's newline is an escape: its second line is no line of
		// its own.
		for _, line := range strings.Split(out+errs, "\n") {
			if strings.HasPrefix(line, "second line") || strings.HasPrefix(line, "X") {
				t.Errorf("pin %v: a name or meta value broke the line: %q", args, out)
			}
		}
		if !strings.Contains(out, `\x1b[31mred\nsecond line\x1b]0;title\a\u202eevil\u009b2J\ttab`) {
			t.Errorf("pin %v: the name is not shown escaped: %q", args, out)
		}
	}
	if _, out, _ := pin("status", ps.RequestID); !strings.Contains(out, `meta.k\x1b[1m`) || !strings.Contains(out, `v\r\nX`) ||
		!strings.Contains(out, `gateway said \x1b[31m<html>\n`) {
		t.Errorf("pin status: meta or failure message not shown escaped: %q", out)
	}

	for _, args := range [][]string{{"ls", "--json"}, {"status", "--json", ps.RequestID}} {
		_, out, _ := pin(args...)
		if rawTerminal(out) || strings.Count(out, "\n") != 1 {
			t.Errorf("pin %v: raw controls or line breaks in the JSON: %q", args, out)
		}
		var got api.PinStatus
		if args[0] == "ls" {
			var res api.PinResults
			if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Results) != 1 {
				t.Fatalf("pin ls --json is not the PinResults: %v: %s", err, out)
			}
			got = res.Results[0]
		} else if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("pin status --json is not a PinStatus: %v: %s", err, out)
		}
		if got.Pin.Name != hostileName || got.Pin.Meta["k\x1b[1m"] != "v\r\nX" || got.Pin.CID != ps.Pin.CID {
			t.Errorf("pin %v: the JSON's values changed: %+v", args, got.Pin)
		}
	}
}
