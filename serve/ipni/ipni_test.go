package ipni_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/ipni/go-libipni/ingest/schema"
	"github.com/ipni/go-libipni/metadata"
	"github.com/multiformats/go-multicodec"

	"github.com/pickup-ipfs/pickup/internal/ipnitest"
	"github.com/pickup-ipfs/pickup/serve/ipni"
	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
)

// named checks that the indexer names the publisher's peer for every
// block of car, with the CAR CID as context, the serve peer's addresses
// (its libp2p ones and its HTTP gateway) and the bitswap and gateway
// transports.
func named(ix *ipnitest.Indexer, p *ipni.Publisher, srv *server, car locatetest.Car) error {
	for i, b := range car.Blocks {
		var ps []ipnitest.Provider
		var err error
		if i == 0 {
			ps, err = ix.FindCID(b.Cid())
		} else {
			ps, err = ix.FindMultihash(b.Cid().Hash())
		}
		if err != nil {
			return err
		}
		at := slices.IndexFunc(ps, func(pr ipnitest.Provider) bool { return pr.Provider.ID == p.Peer().String() })
		if at < 0 {
			return fmt.Errorf("block %d of CAR %s (%s): providers %+v, not %s", i, car.CAR.CarCID, b.Cid(), ps, p.Peer())
		}
		pr := ps[at]
		if !bytes.Equal(pr.ContextID, car.CAR.CarCID.Bytes()) {
			return fmt.Errorf("block %s: context id %x, want the CAR CID %s", b.Cid(), pr.ContextID, car.CAR.CarCID)
		}
		want := []string{bitswapAddrs[0].String(), bitswapAddrs[1].String(), srv.addr.String()}
		if !slices.Equal(pr.Provider.Addrs, want) {
			return fmt.Errorf("block %s: addresses %v, want %v", b.Cid(), pr.Provider.Addrs, want)
		}
		md := metadata.Default.New()
		if err := md.UnmarshalBinary(pr.Metadata); err != nil {
			return fmt.Errorf("block %s: metadata: %v", b.Cid(), err)
		}
		if got := md.Protocols(); !slices.Contains(got, multicodec.TransportBitswap) || !slices.Contains(got, multicodec.TransportIpfsGatewayHttp) {
			return fmt.Errorf("block %s: transports %v, want bitswap and the trustless gateway", b.Cid(), got)
		}
	}
	return nil
}

// notNamed checks that the indexer names the publisher for no block of car.
func notNamed(ix *ipnitest.Indexer, p *ipni.Publisher, car locatetest.Car) error {
	for _, b := range car.Blocks {
		ps, err := ix.FindMultihash(b.Cid().Hash())
		if err != nil {
			return err
		}
		if slices.ContainsFunc(ps, func(pr ipnitest.Provider) bool { return pr.Provider.ID == p.Peer().String() }) {
			return fmt.Errorf("block %s of the deleted CAR %s is still provided by %s", b.Cid(), car.CAR.CarCID, p.Peer())
		}
	}
	return nil
}

// TestIndexerFindsWhatIsPinned: storetheindex, told of the chain's head,
// syncs it from pickup over HTTP and then names pickup's peer for every
// block of every pinned DAG (CARs of several entry chunks among them);
// after a root is removed and deleted, it stops naming it for that DAG's
// blocks, and still names it for the others'.
func TestIndexerFindsWhatIsPinned(t *testing.T) {
	ix := ipnitest.Start(t)
	w := newWorld(t)
	cars := []locatetest.Car{w.pinCar(1, 40), w.pinCar(2, 1), w.pinCar(3, 300)}
	srv := newServer(t)
	p := w.publisher(srv, []string{ix.IngestURL}, ipni.Config{ChunkSize: 64})
	run(t, p)
	for _, car := range cars {
		eventually(t, "the indexer names pickup for every block", func() error { return named(ix, p, srv, car) })
	}
	// A CAR validated while the publisher runs.
	late := w.pinCar(4, 70)
	eventually(t, "the indexer names pickup for a CAR pinned later", func() error { return named(ix, p, srv, late) })

	w.deleteRoot(cars[2])
	eventually(t, "the indexer stops naming pickup for a deleted root", func() error { return notNamed(ix, p, cars[2]) })
	for _, car := range []locatetest.Car{cars[0], cars[1], late} {
		if err := named(ix, p, srv, car); err != nil {
			t.Fatal(err)
		}
	}
	chain := chainOf(t, w.log)
	if n := len(chain); n != 5 {
		t.Fatalf("%d ads in the chain, want 4 and a removal", n)
	}
	if rm := chain[4]; !rm.IsRm || rm.CarCID != cars[2].CAR.CarCID.String() || rm.Entries != schema.NoEntries.Cid.String() {
		t.Fatalf("the last ad %+v, want the removal of %s with no entries", rm, cars[2].CAR.CarCID)
	}
	if got := len(chain[2].Chunks); got != 5 {
		t.Fatalf("a CAR of 300 blocks in %d chunks of 64, want 5", got)
	}
}

// TestNewIndexerAfterADeletion: an indexer that first syncs the chain
// after a root was deleted (its ad, then its removal, in the chain; its
// index object gone, so its entry chunks are not found) ingests the rest
// of the chain: it names pickup for the CARs still pinned and not for the
// deleted one.
func TestNewIndexerAfterADeletion(t *testing.T) {
	w := newWorld(t)
	srv := newServer(t)
	quiet := w.publisher(srv, nil, ipni.Config{ChunkSize: 8})
	stop := run(t, quiet)
	gone, kept := w.pinCar(1, 20), w.pinCar(2, 20)
	waitAds(t, quiet, 2)
	w.deleteRoot(gone)
	later := w.pinCar(3, 20)
	waitAds(t, quiet, 4)
	stop()

	ix := ipnitest.Start(t)
	p := w.publisher(srv, []string{ix.IngestURL}, ipni.Config{ChunkSize: 8})
	run(t, p)
	for _, car := range []locatetest.Car{kept, later} {
		eventually(t, "a new indexer names pickup for what is pinned", func() error { return named(ix, p, srv, car) })
	}
	if err := notNamed(ix, p, gone); err != nil {
		t.Fatal(err)
	}
}
