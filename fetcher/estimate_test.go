package fetcher_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/boxo/ipld/merkledag"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/fetcher"
	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections/views"
)

// payloads decodes the pin's events of one type.
func payloads[P pin.Payload](t testing.TB, evs []eventlog.Event) []P {
	t.Helper()
	var out []P
	for _, e := range evs {
		r, err := pinlog.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := r.Payload.(P); ok {
			out = append(out, p)
		}
	}
	return out
}

// pinView waits until the views show the pin in phase, and returns it.
func (w *world) pinView(id uuid.UUID, phase pin.Phase) views.Pin {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := w.views.Pin(context.Background(), "alice", id)
		if err == nil && v.Phase == phase {
			return v
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the views never showed the pin %s: %+v, %v", phase, v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A UnixFS DAG fetched slowly enough to report its progress: the reports
// carry the size its root declares, which is the CAR's block bytes, and
// the blocks' bytes so far; the staged CAR records it too; the views show
// the percentage climbing to 100 when pinned.
func TestFetchRecordsTheDeclaredSize(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	root := w.file(3<<20, 2)
	want, err := ipfstest.BlockBytes(w.exported(root))
	if err != nil {
		t.Fatal(err)
	}
	// 2 MiB/s: the fetch takes about 1.5 s, reported every 200 ms.
	w.startPool(poolOptions{name: "f1", origin: ipfstest.Throttled(t, w.gw.URL(), 2<<20), cfg: fetcher.Config{Lease: 600 * time.Millisecond}})
	id := w.request(root)
	s := w.waitFor(id, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })

	evs := w.events(id)
	var midway int
	for _, p := range payloads[pin.FetchProgress](t, evs) {
		if p.ExpectedBytes != 0 && p.ExpectedBytes != want {
			t.Errorf("a report declares %d bytes, want the CAR's %d block bytes", p.ExpectedBytes, want)
		}
		if p.ExpectedBytes == want && p.BlockBytes > 0 && p.BlockBytes < want && p.BlockBytes < p.Bytes {
			midway++
		}
	}
	if midway == 0 {
		t.Errorf("no report midway with the declared size and the blocks' bytes: %v", payloads[pin.FetchProgress](t, evs))
	}
	if up := payloads[pin.CarUploaded](t, evs); len(up) != 1 || up[0].ExpectedBytes != want {
		t.Errorf("CarUploaded %+v, want one declaring %d bytes", up, want)
	}
	if c := s.Completion(); c != (pin.Completion{Expected: want, Percent: 100, LeftKnown: true}) {
		t.Errorf("pinned completion %+v, want %d bytes at 100%%", c, want)
	}
	if v := w.pinView(id, pin.PhasePinned); v.Completion.Expected != want || v.Completion.Percent != 100 {
		t.Errorf("the views show %+v, want %d bytes at 100%%", v.Completion, want)
	}
}

// A root whose links declare more than MAX_CAR_BYTES fails the pin as
// too_big, permanently, once it has arrived: the origin serves the root
// and hardly more (the byte count alone would have taken 9 blocks), and
// nothing is staged.
func TestRootOverTheLimitFailsThePinAtOnce(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	root := w.file(4<<20, 2) // 16 chunks of 256 KiB
	// A block each 100 ms: what the gateway served when the fetcher hung
	// up is what the fetcher took.
	origin := ipfstest.Count(w.bs, 100*time.Millisecond)
	gw := ipfstest.NewGateway(t, origin, ipfstest.GatewayOptions{})
	w.startPool(poolOptions{name: "f1", origin: gw.URL(), limits: dag.Limits{MaxCARBytes: 2 << 20}})
	id := w.request(root)
	s := w.waitFor(id, "failed", func(s pin.State) bool { return s.Phase == pin.PhaseFailed })

	f := s.LastFailure
	if f.Reason != pin.ReasonTooBig || !f.Permanent || !strings.Contains(f.Message, "the root declares a DAG of 4195") {
		t.Errorf("failure %+v, want a permanent too_big naming the root's declared size", f)
	}
	if n := origin.Served(); n > 3 {
		t.Errorf("the origin served %d blocks, want the root and at most two more", n)
	}
	if got := types(w.events(id)); count(w.events(id), pin.TypeCarUploaded) != 0 {
		t.Errorf("events %v: a CAR was staged", got)
	}
}

// A root that declares less than its DAG holds (links with a Tsize of 1)
// is fetched, and failed as too_big by the CAR's byte count all the same.
func TestLyingRootIsCaughtByTheByteCount(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	liar := merkledag.NodeWithData([]byte{0x08, 0x01})
	liar.SetCidBuilder(merkledag.V1CidPrefix())
	for i, seed := range []uint64{4, 6} {
		sub := w.file(2<<20, seed)
		if err := liar.AddRawLink(string(rune('a'+i)), &ipld.Link{Cid: sub, Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.bs.Put(context.Background(), liar); err != nil {
		t.Fatal(err)
	}
	w.startPool(poolOptions{name: "f1", limits: dag.Limits{MaxCARBytes: 3 << 20}})
	id := w.request(liar.Cid())
	s := w.waitFor(id, "failed", func(s pin.State) bool { return s.Phase == pin.PhaseFailed })
	if f := s.LastFailure; f.Reason != pin.ReasonTooBig || !strings.Contains(f.Message, "the CAR passes") {
		t.Errorf("failure %+v, want too_big from the byte count", f)
	}
	for _, p := range payloads[pin.FetchProgress](t, w.events(id)) {
		if p.ExpectedBytes != 0 && p.ExpectedBytes >= 3<<20 {
			t.Errorf("a report declares %d bytes: the root said %d", p.ExpectedBytes, len(liar.RawData())+2)
		}
	}
}

// A raw root declares no size: nothing of one is recorded, and the views
// show no percentage.
func TestRawRootDeclaresNoSize(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	data := make([]byte, 1<<20)
	if _, err := io.ReadFull(ipfstest.Random(8), data); err != nil {
		t.Fatal(err)
	}
	root, err := ipfstest.PutRaw(context.Background(), w.bs, uint64(multicodec.Raw), multihash.SHA2_256, data)
	if err != nil {
		t.Fatal(err)
	}
	w.startPool(poolOptions{name: "f1", origin: ipfstest.Throttled(t, w.gw.URL(), 2<<20), cfg: fetcher.Config{Lease: 600 * time.Millisecond}})
	id := w.request(root)
	s := w.waitFor(id, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
	evs := w.events(id)
	progress := payloads[pin.FetchProgress](t, evs)
	for _, p := range progress {
		if p.ExpectedBytes != 0 {
			t.Errorf("a report of a raw root declares %d bytes", p.ExpectedBytes)
		}
	}
	if len(progress) == 0 {
		t.Errorf("no progress reported in a fetch of about 0.5 s: events %v", types(evs))
	}
	if up := payloads[pin.CarUploaded](t, evs); len(up) != 1 || up[0].ExpectedBytes != 0 {
		t.Errorf("CarUploaded %+v, want one declaring nothing", up)
	}
	if c := s.Completion(); c != (pin.Completion{}) {
		t.Errorf("completion %+v, want none", c)
	}
	if v := w.pinView(id, pin.PhasePinned); v.Completion != (pin.Completion{}) || v.Bytes == 0 {
		t.Errorf("the views show %+v with %d bytes, want bytes and no completion", v.Completion, v.Bytes)
	}
}
