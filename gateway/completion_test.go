package gateway_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/pin"
)

// Through the log, the views and the API: a pin whose fetch knows the
// DAG's declared size shows it with the percentage fetched and the time
// left, and 100 once pinned.
func TestInfoShowsTheDeclaredSize(t *testing.T) {
	s, _, c := setup(t, gateway.Config{})
	ps := c.addPin(`{"cid":"` + newCID(t).String() + `"}`)
	id := uuid.MustParse(ps.RequestID)
	s.Claim(t, id)
	s.Report(t, id, pin.FetchProgress{Bytes: 1<<20 + 300, Blocks: 5, BlockBytes: 1 << 20, ExpectedBytes: 4 << 20, Source: "gateway"})
	s.Sync(t)
	var got api.PinStatus
	c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &got)
	wantInfo(t, got, "pinning", map[string]string{"bytes": "1048876", "expected_bytes": "4194304", "percent": "25"})
	if n, err := strconv.Atoi(got.Info[api.InfoSecondsLeft]); err != nil || n < 1 {
		t.Errorf("seconds_left %q, want a count of seconds (info %v)", got.Info[api.InfoSecondsLeft], got.Info)
	}

	s.Complete(t, id, "bagaaiera-car", 4<<20+600)
	s.Sync(t)
	var pinned api.PinStatus
	c.do(http.MethodGet, "/pins/"+ps.RequestID, "").want(t, http.StatusOK, &pinned)
	wantInfo(t, pinned, "pinned", map[string]string{"expected_bytes": "4194304", "percent": "100", "car_bytes": "4194904"})
	if _, ok := pinned.Info[api.InfoSecondsLeft]; ok {
		t.Errorf("a pinned pin has seconds_left: %v", pinned.Info)
	}
}
