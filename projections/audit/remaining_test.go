package audit_test

import (
	"testing"
	"time"

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
