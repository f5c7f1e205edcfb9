package fetcher_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/index"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
)

// checkIndexed checks that CarValidated names the CAR's index, beside it,
// with the size and SHA-256 of the object there, that the index is the one
// go-car builds by reading the CAR, and that the root's mapping is there.
func (w *world) checkIndexed(root cid.Cid, v pin.CarValidated) {
	w.t.Helper()
	if v.Index != carstore.IndexKey(v.Key) {
		w.t.Fatalf("CarValidated names index %q, want %q", v.Index, carstore.IndexKey(v.Key))
	}
	got := w.carpark(v.Index)
	sum := sha256.Sum256(got)
	if v.IndexBytes != int64(len(got)) || v.IndexSHA256 != hex.EncodeToString(sum[:]) {
		w.t.Errorf("CarValidated says the index has %d bytes, SHA-256 %s; it has %d, %x", v.IndexBytes, v.IndexSHA256, len(got), sum)
	}
	idx, err := car.GenerateIndex(bytes.NewReader(w.carpark(v.Key)))
	if err != nil {
		w.t.Fatal(err)
	}
	var want bytes.Buffer
	if _, err := index.WriteTo(idx, &want); err != nil {
		w.t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		w.t.Errorf("the stored index (%d bytes) is not go-car's index of the CAR (%d bytes)", len(got), want.Len())
	}
	c, err := cid.Decode(v.CarCID)
	if err != nil {
		w.t.Fatal(err)
	}
	if b := w.carpark(carstore.RootMapKey(root, c)); len(b) != 0 {
		w.t.Errorf("the root's mapping holds %d bytes", len(b))
	}
}

// A fetched CAR's index, recorded while it was written, is stored beside
// it and named in CarValidated; a pin completed from the carpark names
// that same index.
func TestPinnedCARHasItsIndex(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	root := w.file(3<<20+999, 41)
	w.startPool(poolOptions{name: "f1"})
	first := w.waitFor(w.request(root), "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
	w.checkIndexed(root, first.Car)
	if !bytes.Equal(w.carpark(first.Car.Key), w.exported(root)) {
		t.Fatal("the CAR is not what dag export writes")
	}
	again := w.waitFor(w.request(root), "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
	if !again.Car.Reused || again.Car.Index != first.Car.Index || again.Car.IndexSHA256 != first.Car.IndexSHA256 {
		t.Fatalf("reused %+v, want the first pin's index %+v", again.Car, first.Car)
	}
}

// A CAR in the carpark with no index (pinned before indexes), or with
// something else where its index should be, is indexed when a pin is
// completed from it, by reading it once.
func TestReusedCARWithoutIndexIsIndexed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(path string) error
	}{
		{"no index", os.Remove},
		{"a truncated index", func(path string) error { return os.Truncate(path, 10) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, ipfstest.GatewayOptions{})
			root := w.file(2<<20+7, 43)
			w.startPool(poolOptions{name: "f1"})
			first := w.waitFor(w.request(root), "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
			if err := tc.spoil(filepath.Join(w.carDir, "carpark", filepath.FromSlash(first.Car.Index))); err != nil {
				t.Fatal(err)
			}
			c, _ := cid.Decode(first.Car.CarCID)
			if err := os.Remove(filepath.Join(w.carDir, "carpark", filepath.FromSlash(carstore.RootMapKey(root, c)))); err != nil {
				t.Fatal(err)
			}
			again := w.waitFor(w.request(root), "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
			if !again.Car.Reused {
				t.Fatalf("the second pin was fetched again: %+v", again.Car)
			}
			w.checkIndexed(root, again.Car)
			if again.Car.IndexSHA256 != first.Car.IndexSHA256 {
				t.Errorf("the rebuilt index differs from the one recorded while writing")
			}
		})
	}
}
