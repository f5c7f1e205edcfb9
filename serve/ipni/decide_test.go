package ipni_test

import (
	"fmt"
	"testing"

	"github.com/pickup-ipfs/pickup/serve/ipni"
	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
)

// waitAds waits until p has folded n ads.
func waitAds(t *testing.T, p *ipni.Publisher, n uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d ads", n), func() error {
		if _, got := p.Head(); got != n {
			return fmt.Errorf("%d ads", got)
		}
		return nil
	})
}

// TestWhatIsAdvertised: a CAR is advertised once however many pins
// validate it (a second pin of a root completes from the carpark with the
// same CAR); a deleted root's CAR is removed once, and advertised again
// when the root is pinned again; a CAR whose index object is missing, or
// is not the one validated, is not advertised (and the chain goes on).
func TestWhatIsAdvertised(t *testing.T) {
	w := newWorld(t)
	srv := newServer(t)
	p := w.publisher(srv, nil, ipni.Config{})
	run(t, p)

	a := w.pinCar(1, 5)
	w.pin(a) // the same CAR, validated again for another pin
	b := w.pinCar(2, 5)
	waitAds(t, p, 2)

	w.deleteRoot(a)
	waitAds(t, p, 3)
	w.cars.Put(a.CAR.Key, a.Bytes)
	w.cars.Put(a.CAR.Key+".idx", a.Index)
	w.pin(a) // pinned again after its deletion
	waitAds(t, p, 4)

	missing := locatetest.NewCar(t, 3, 5)
	w.pin(missing) // no index object in the carpark
	bad := locatetest.NewCar(t, 4, 5)
	w.cars.Put(bad.CAR.Key+".idx", b.Index) // not the index validated
	w.pin(bad)
	c := w.pinCar(5, 5)
	waitAds(t, p, 5)

	chain := chainOf(t, w.log)
	want := []struct {
		car  locatetest.Car
		isRm bool
	}{{a, false}, {b, false}, {a, true}, {a, false}, {c, false}}
	for i, ad := range chain {
		if ad.CarCID != want[i].car.CAR.CarCID.String() || ad.IsRm != want[i].isRm {
			t.Fatalf("ad %d: CAR %s removal %v, want %s removal %v", i, ad.CarCID, ad.IsRm, want[i].car.CAR.CarCID, want[i].isRm)
		}
	}
	if s := p.Stats(); s.Skipped != 2 || s.Ads != 4 || s.Removals != 1 {
		t.Fatalf("stats %+v, want 4 ads, 1 removal, 2 CARs skipped", s)
	}
	continuous(t, srv, w, []locatetest.Car{a, b, c})
}
