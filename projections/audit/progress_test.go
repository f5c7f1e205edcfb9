package audit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/audit"
)

// A time left is rounded up to what it shows, never down to nothing.
func TestRemaining(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Millisecond:                  "1s",
		12 * time.Second:                  "12s",
		59*time.Second + time.Millisecond: "1m00s",
		4*time.Minute + 5*time.Second:     "4m05s",
		59*time.Minute + 59*time.Second:   "59m59s",
		time.Hour:                         "1h00m",
		3*time.Hour + 19*time.Minute + 1:  "3h20m",
	} {
		if got := audit.Remaining(d); got != want {
			t.Errorf("Remaining(%v) = %q, want %q", d, got, want)
		}
	}
}

// A progress report that knows the size the DAG's root declares says how
// much of it is fetched; one that does not says nothing of it.
func TestTimelineNamesTheDeclaredSize(t *testing.T) {
	h := &history{t: t, id: uuid.MustParse("0a0a0a0a-0000-4000-8000-000000000002")}
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	h.add("gateway", at, func(s pin.State) (pin.Payload, error) {
		return pin.Request(s, pin.Requested{RequestID: h.id, Tenant: "alice", CID: "bafkqaaa", Created: at})
	})
	h.add("fetcher/a", at, func(s pin.State) (pin.Payload, error) { return s.Claim("fetcher/a", at, 30*time.Second) })
	h.add("fetcher/a", at, func(s pin.State) (pin.Payload, error) {
		return s.Progress(pin.FetchProgress{Fetcher: "fetcher/a", Attempt: 1, Bytes: 1<<20 + 200, Blocks: 5, BlockBytes: 1 << 20, ExpectedBytes: 4 << 20, Source: "gateway"}, at, 30*time.Second)
	})
	h.add("fetcher/a", at, func(s pin.State) (pin.Payload, error) {
		return s.Progress(pin.FetchProgress{Fetcher: "fetcher/a", Attempt: 1, Bytes: 2 << 20, Blocks: 9, Source: "gateway"}, at, 30*time.Second)
	})
	entries := audit.Timeline(h.events)
	if got := entries[2].What; !strings.Contains(got, "1.0 MiB of the 4.0 MiB its root declares") {
		t.Errorf("a report with the declared size reads %q", got)
	}
	if got := entries[3].What; strings.Contains(got, "declares") {
		t.Errorf("a report without it reads %q", got)
	}
}
