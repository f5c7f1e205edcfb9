package gateway

import (
	"maps"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// What info says of a fetch's progress towards the size its root
// declares, and of one whose root declares none.
func TestInfoOfTheDeclaredSize(t *testing.T) {
	pinning := views.Pin{Status: pin.StatusPinning, Attempt: 1, Bytes: 1<<20 + 400, Blocks: 5, Source: "gateway"}
	with := func(v views.Pin, c pin.Completion) views.Pin { v.Completion = c; return v }
	for name, c := range map[string]struct {
		v    views.Pin
		want map[string]string
	}{
		"pinning, a quarter done": {with(pinning, pin.Completion{Expected: 4 << 20, Percent: 25, Left: 90*time.Second + time.Millisecond, LeftKnown: true}), map[string]string{
			"attempt": "1", "bytes": "1048976", "blocks": "5", "source": "gateway",
			"expected_bytes": "4194304", "percent": "25", "seconds_left": "91",
			"status_details": "pinning: attempt 1, 1.0 MiB in 5 blocks so far from gateway, 25% of 4.0 MiB, about 1m31s left",
		}},
		"pinning, a tenth of a percent": {with(pinning, pin.Completion{Expected: 4 << 30, Percent: 0.1}), map[string]string{
			"attempt": "1", "bytes": "1048976", "blocks": "5", "source": "gateway",
			"expected_bytes": "4294967296", "percent": "0.1",
			"status_details": "pinning: attempt 1, 1.0 MiB in 5 blocks so far from gateway, 0.1% of 4.0 GiB",
		}},
		"pinning, the size known before the bytes": {with(views.Pin{Status: pin.StatusPinning, Attempt: 2}, pin.Completion{Expected: 4 << 20}), map[string]string{
			"attempt": "2", "expected_bytes": "4194304", "percent": "0",
			"status_details": "pinning: attempt 2, 0 B in 0 blocks so far, 0% of 4.0 MiB",
		}},
		"pinning a raw root": {pinning, map[string]string{
			"attempt": "1", "bytes": "1048976", "blocks": "5", "source": "gateway",
			"status_details": "pinning: attempt 1, 1.0 MiB in 5 blocks so far from gateway",
		}},
		"pinned": {with(views.Pin{Status: pin.StatusPinned, Attempt: 1, CarCID: "bagcar", CarBytes: 4<<20 + 900}, pin.Completion{Expected: 4 << 20, Percent: 100, LeftKnown: true}), map[string]string{
			"attempt": "1", "car_cid": "bagcar", "car_bytes": "4195204", "expected_bytes": "4194304", "percent": "100",
			"status_details": "pinned: CAR bagcar, 4.0 MiB",
		}},
		"pinned from the carpark": {views.Pin{Status: pin.StatusPinned, Attempt: 1, CarCID: "bagcar", CarBytes: 10}, map[string]string{
			"attempt": "1", "car_cid": "bagcar", "car_bytes": "10", "status_details": "pinned: CAR bagcar, 10 B",
		}},
	} {
		if got := info(c.v); !maps.Equal(got, c.want) {
			t.Errorf("%s: info\n %v\nwant\n %v", name, got, c.want)
		}
	}
}
