package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/api"
)

// What pickup's gateway writes decodes and encodes again byte for byte:
// `pickup pin --json` prints the decoded answer, and a client that pages
// with before=<created> sends back exactly the text it read.
func TestRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		json string
	}{
		{"PinStatus", &api.PinStatus{},
			`{"requestid":"0193a1b2-0000-7000-8000-000000000001","status":"pinning","created":"2026-12-03T09:12:36.120000Z",` +
				`"pin":{"cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","name":"hello","origins":["/ip4/8.8.8.8/tcp/4001/p2p/12D3KooWArSKMUUeLk3z2m5LKyb9wGyFL1BtWCT7Gq7Apoo77PUR"],"meta":{"app":"a\u003cb"}},` +
				`"delegates":["/ip4/203.0.113.1/tcp/4001/p2p/12D3KooWArSKMUUeLk3z2m5LKyb9wGyFL1BtWCT7Gq7Apoo77PUR"],` +
				`"info":{"attempt":"1","blocks":"3","bytes":"1048576","status_details":"pinning: attempt 1, 1.0 MiB in 3 blocks so far"}}`},
		{"PinStatus without name, origins or meta", &api.PinStatus{},
			`{"requestid":"x","status":"queued","created":"2026-12-03T09:12:36.000001Z","pin":{"cid":"bafy"},"delegates":[],"info":{"status_details":"queued"}}`},
		{"PinResults", &api.PinResults{},
			`{"count":3,"results":[{"requestid":"x","status":"failed","created":"2026-12-03T09:12:36.000000Z","pin":{"cid":"bafy"},"delegates":["d"],"info":{"failure_reason":"too_big"}}]}`},
		{"empty PinResults", &api.PinResults{}, `{"count":0,"results":[]}`},
		{"Failure", &api.Failure{}, `{"error":{"reason":"NOT_FOUND","details":"The specified resource was not found"}}`},
		{"Failure without details", &api.Failure{}, `{"error":{"reason":"UNAUTHORIZED"}}`},
		{"ClusterPin", &api.ClusterPin{},
			`{"replication_factor_min":-1,"replication_factor_max":-1,"name":"photos","mode":"recursive","shard_size":0,"user_allocations":null,` +
				`"expire_at":"0001-01-01T00:00:00Z","metadata":{},"pin_update":null,"origins":[],"cid":"QmX","type":"pin","allocations":[],` +
				`"max_depth":-1,"reference":null,"timestamp":"2026-12-03T09:12:36.123456Z"}`},
		{"ClusterStatus", &api.ClusterStatus{},
			`{"cid":"QmX","name":"","allocations":[],"origins":[],"created":"2026-12-03T09:12:36.123456Z","metadata":null,` +
				`"peer_map":{"12D3":{"peername":"pickup","ipfs_peer_id":"12D3","ipfs_peer_addresses":["/ip4/203.0.113.1/tcp/4001"],` +
				`"status":"pin_error","timestamp":"2026-12-03T09:12:37.000000Z","error":"too_big: over 31 GiB","attempt_count":2,"priority_pin":false}}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := json.Unmarshal([]byte(c.json), c.v); err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.json {
				t.Errorf("encoded again:\n%s\nwant\n%s", b, c.json)
			}
		})
	}
}

// Times are written in UTC with six digits of microseconds, whatever their
// zone and however many digits they need.
func TestTimeMarshal(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	for _, c := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 12, 3, 9, 12, 36, 0, time.UTC), `"2026-12-03T09:12:36.000000Z"`},
		{time.Date(2026, 12, 3, 9, 12, 36, 120_000_000, time.UTC), `"2026-12-03T09:12:36.120000Z"`},
		{time.Date(2026, 12, 3, 10, 12, 36, 123_456_789, berlin), `"2026-12-03T09:12:36.123456Z"`},
		{time.Time{}, `"0001-01-01T00:00:00Z"`},
	} {
		b, err := json.Marshal(api.Time{Time: c.in})
		if err != nil || string(b) != c.want {
			t.Errorf("%v: %s (%v), want %s", c.in, b, err, c.want)
		}
		if got := api.FormatTime(c.in); !c.in.IsZero() && `"`+got+`"` != c.want {
			t.Errorf("FormatTime(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

// Any RFC 3339 time reads, as other services write them; anything else is
// refused; null leaves the time as it was.
func TestTimeUnmarshal(t *testing.T) {
	at := time.Date(2020, 7, 27, 17, 32, 28, 276_000_000, time.UTC)
	for _, c := range []struct {
		in      string
		want    time.Time
		problem string
	}{
		{`"2020-07-27T17:32:28.276Z"`, at, ""},
		{`"2020-07-27T17:32:28.276000Z"`, at, ""},
		{`"2020-07-27T19:32:28.276+02:00"`, at, ""},
		{`"2020-07-27T17:32:28Z"`, at.Truncate(time.Second), ""},
		{`null`, at.Add(time.Hour), ""},
		{`"2020-07-27"`, time.Time{}, "not RFC 3339"},
		{`""`, time.Time{}, "not RFC 3339"},
		{`1595871148`, time.Time{}, "not a JSON string"},
		{`{"t":1}`, time.Time{}, "not a JSON string"},
	} {
		got := api.Time{Time: at.Add(time.Hour)}
		err := json.Unmarshal([]byte(c.in), &got)
		switch {
		case c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)):
			t.Errorf("%s: %v, want an error saying %q", c.in, err, c.problem)
		case c.problem == "" && (err != nil || !got.Equal(c.want)):
			t.Errorf("%s: %v (%v), want %v", c.in, got, err, c.want)
		}
	}
}

func TestStatusFinal(t *testing.T) {
	final := map[api.Status]bool{api.StatusPinned: true, api.StatusFailed: true}
	for _, s := range append(api.AllStatuses(), "", "unknown") {
		if s.Final() != final[s] {
			t.Errorf("%q.Final() = %v", s, s.Final())
		}
	}
	if n := len(api.AllStatuses()); n != 4 {
		t.Errorf("%d statuses, want the spec's 4", n)
	}
}
