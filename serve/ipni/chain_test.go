package ipni_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/pickup-ipfs/pickup/internal/ipnitest"
	"github.com/pickup-ipfs/pickup/serve/ipni"
	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
)

// continuous checks the chain fetched from a publisher against the log's
// stream: the same ads in the same order, each following the one before
// (no gap, no fork), a CAR advertised only when not advertised already and
// removed only when it is, and cars the ones advertised at the end.
func continuous(t *testing.T, srv *server, w *world, cars []locatetest.Car) {
	t.Helper()
	walked := walk(t, srv.srv.URL, w.key)
	logged := chainOf(t, w.log)
	if len(walked) != len(logged) {
		t.Fatalf("the chain served is %d ads from its head, the log holds %d", len(walked), len(logged))
	}
	live := map[string]bool{}
	for i, a := range walked {
		if a.cid.String() != logged[i].CID {
			t.Fatalf("ad %d served is %s, the log's is %s", i, a.cid, logged[i].CID)
		}
		if i > 0 && a.ad.PreviousCid() != walked[i-1].cid {
			t.Fatalf("ad %d follows %s, not the ad before it, %s", i, a.ad.PreviousCid(), walked[i-1].cid)
		}
		ctx := string(a.ad.ContextID)
		switch {
		case a.ad.IsRm && !live[ctx]:
			t.Fatalf("ad %d removes CAR %x, not advertised", i, a.ad.ContextID)
		case !a.ad.IsRm && live[ctx]:
			t.Fatalf("ad %d advertises CAR %x again", i, a.ad.ContextID)
		}
		live[ctx] = !a.ad.IsRm
	}
	seen := map[string]bool{}
	for ctx, ok := range live {
		if ok {
			seen[ctx] = true
		}
	}
	if len(seen) != len(cars) {
		t.Fatalf("%d CARs advertised, want %d", len(seen), len(cars))
	}
	for _, car := range cars {
		if !seen[string(car.CAR.CarCID.Bytes())] {
			t.Fatalf("CAR %s is not advertised", car.CAR.CarCID)
		}
	}
}

// TestBacklogSurvivesAKilledPublisher: 200 CARs validated while no
// publisher ran are published in batches; the publisher is stopped in
// the middle of them (its context cancelled, which cuts the append in
// flight), and another takes up the chain from the log: the chain is
// continuous from its head to its first ad, every CAR in it once, and
// the indexer, told of each head, ingests every CAR.
func TestBacklogSurvivesAKilledPublisher(t *testing.T) {
	ix := ipnitest.Start(t)
	w := newWorld(t)
	var cars []locatetest.Car
	for i := range 200 {
		cars = append(cars, w.pinCar(uint64(100+i), 3))
	}
	srv := newServer(t)
	first := w.publisher(srv, []string{ix.IngestURL}, ipni.Config{BatchSize: 7})
	stop := run(t, first)
	eventually(t, "the first publisher publishes part of the backlog", func() error {
		if n := first.Stats().Ads; n < 30 {
			return fmt.Errorf("%d ads", n)
		}
		return nil
	})
	stop()
	before := len(chainOf(t, w.log))
	if before >= len(cars) {
		t.Fatalf("the first publisher published all %d ads before it was stopped; the test proves nothing", before)
	}
	t.Logf("stopped after %d ads", before)

	second := w.publisher(srv, []string{ix.IngestURL}, ipni.Config{BatchSize: 7})
	run(t, second)
	eventually(t, "the second publisher publishes the rest", func() error {
		if n := len(chainOf(t, w.log)); n != len(cars) {
			return fmt.Errorf("%d ads in the chain", n)
		}
		return nil
	})
	if got := second.Stats().Ads; got != int64(len(cars)-before) {
		t.Fatalf("the second publisher appended %d ads, want the %d the first did not", got, len(cars)-before)
	}
	continuous(t, srv, w, cars)
	for _, car := range cars {
		eventually(t, "the indexer ingests every CAR", func() error { return named(ix, second, srv, car) })
	}
}

// TestTwoPublishersOneChain: two serve tasks publish from one log at
// once, each behind its own HTTP listener: one chain, every CAR in it
// once, served alike by both.
func TestTwoPublishersOneChain(t *testing.T) {
	w := newWorld(t)
	srvA, srvB := newServer(t), newServer(t)
	a := w.publisher(srvA, nil, ipni.Config{BatchSize: 3})
	b := w.publisher(srvB, nil, ipni.Config{BatchSize: 3})
	run(t, a)
	run(t, b)
	var cars []locatetest.Car
	for i := range 60 {
		cars = append(cars, w.pinCar(uint64(1000+i), 2))
	}
	eventually(t, "both publishers reach the chain's end", func() error {
		n := uint64(len(chainOf(t, w.log)))
		_, na := a.Head()
		_, nb := b.Head()
		if n != uint64(len(cars)) || na != n || nb != n {
			return fmt.Errorf("%d ads in the log, %d and %d folded", n, na, nb)
		}
		return nil
	})
	sa, sb := a.Stats(), b.Stats()
	t.Logf("publisher A appended %d ads (%d races lost), B %d (%d)", sa.Ads, sa.Races, sb.Ads, sb.Races)
	if sa.Ads+sb.Ads != int64(len(cars)) {
		t.Fatalf("%d + %d ads appended, want %d", sa.Ads, sb.Ads, len(cars))
	}
	continuous(t, srvA, w, cars)
	continuous(t, srvB, w, cars)
	ha, _ := a.Head()
	hb, _ := b.Head()
	if !ha.Equals(hb) {
		t.Fatalf("heads %s and %s", ha, hb)
	}
	// Both serve every entry chunk, rebuilt from the index objects.
	for _, ad := range chainOf(t, w.log) {
		for _, ch := range ad.Chunks {
			ga, gb := get(t, srvA, ch), get(t, srvB, ch)
			if !bytes.Equal(ga, gb) {
				t.Fatalf("chunk %s served differently", ch)
			}
		}
	}
}
