package fetcher_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/eventlog"
	logembedded "github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/fetcher"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/trustless"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/pintest"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	viewembedded "github.com/pickup-ipfs/pickup/projections/embedded"
)

// world is what a fetcher works in, all real: the embedded log, the
// embedded views kept up to date by the projections runner, a CAR store in
// a directory, and a trustless gateway on loopback serving DAGs.
type world struct {
	t      testing.TB
	log    *logembedded.Store
	views  *viewembedded.Store
	cars   *carstore.Dir
	carDir string
	bs     blockstore.Blockstore
	gw     *ipfstest.Gateway
}

func newWorld(t testing.TB, gw ipfstest.GatewayOptions) *world {
	t.Helper()
	dir := t.TempDir()
	pw := pintest.Open(t, dir)
	pw.Follow()
	log, views := pw.Log, pw.Views
	carDir := filepath.Join(dir, "cars")
	cars, err := carstore.NewDir(carDir, quiet())
	if err != nil {
		t.Fatal(err)
	}
	bs := ipfstest.NewMemBlockstore()
	return &world{t: t, log: log, views: views, cars: cars, carDir: carDir, bs: bs, gw: ipfstest.NewGateway(t, bs, gw)}
}

func quiet() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// file adds a UnixFS file DAG to the gateway's blockstore.
func (w *world) file(size int64, seed uint64) cid.Cid {
	w.t.Helper()
	root, err := ipfstest.File(context.Background(), w.bs, ipfstest.FileOptions{Size: size, Seed: seed, CIDv1: seed%2 == 0})
	if err != nil {
		w.t.Fatal(err)
	}
	return root
}

// request appends a pin request, as the gateway would.
func (w *world) request(root cid.Cid) uuid.UUID {
	w.t.Helper()
	id := uuid.New()
	r, err := pin.Request(pin.State{}, pin.Requested{RequestID: id, Tenant: "alice", CID: root.String(), Created: time.Now()})
	if err != nil {
		w.t.Fatal(err)
	}
	prop, err := pinlog.Propose(r, uuid.New(), eventlog.Metadata{Actor: "test"})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.log.Append(context.Background(), pin.Stream(id), eventlog.NoStream, prop); err != nil {
		w.t.Fatal(err)
	}
	return id
}

type poolOptions struct {
	name string
	// origin is the trustless gateway's URL; w.gw's when empty. origins,
	// when set, are several, tried in order.
	origin  string
	origins []string
	// cars is the CAR store; w.cars when nil.
	cars      fetcher.CARStore
	cfg       fetcher.Config
	limits    dag.Limits
	protector fetcher.Protector
	// metrics and logger, when set, are the pool's and its DAG fetcher's.
	metrics fetcher.Metrics
	logger  *slog.Logger
}

// startPool runs a pool until the returned stop is called (or the test
// ends); stop returns what Run returned.
func (w *world) startPool(o poolOptions) (stop func() error) {
	w.t.Helper()
	if o.origin == "" {
		o.origin = w.gw.URL()
	}
	if len(o.origins) == 0 {
		o.origins = []string{o.origin}
	}
	var sources []dag.Source
	for _, url := range o.origins {
		src, err := trustless.New(trustless.Config{URL: url})
		if err != nil {
			w.t.Fatal(err)
		}
		sources = append(sources, src)
	}
	var cars fetcher.CARStore = w.cars
	if o.cars != nil {
		cars = o.cars
	}
	if o.limits.ChunkTimeout == 0 {
		o.limits.ChunkTimeout = 10 * time.Second
	}
	if o.logger == nil {
		o.logger = quiet()
	}
	d, err := dag.New(sources, o.limits, o.logger)
	if err != nil {
		w.t.Fatal(err)
	}
	cfg := o.cfg
	cfg.Name = o.name
	if cfg.ScanInterval == 0 {
		cfg.ScanInterval = 50 * time.Millisecond
	}
	if cfg.Lease == 0 {
		cfg.Lease = 3 * time.Second
	}
	p, err := fetcher.New(cfg, fetcher.Deps{Log: w.log, Queue: w.views, DAG: d, CARs: cars, Index: w.views, Protector: o.protector, Metrics: o.metrics, Logger: o.logger})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() { cancel(); result = <-done })
		return result
	}
	w.t.Cleanup(func() { stop() })
	return stop
}

// events returns the pin's events.
func (w *world) events(id uuid.UUID) []eventlog.Event {
	w.t.Helper()
	evs, err := w.log.ReadStream(context.Background(), pin.Stream(id), 0, eventlog.Forwards, 10000)
	if err != nil {
		w.t.Fatal(err)
	}
	return evs
}

func (w *world) state(id uuid.UUID) pin.State {
	w.t.Helper()
	s, err := pinlog.Fold(w.events(id))
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// waitFor waits until the pin's state satisfies ok.
func (w *world) waitFor(id uuid.UUID, what string, ok func(pin.State) bool) pin.State {
	w.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := w.state(id)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("pin %s never %s; it is %s with events %v", id, what, s.Phase, types(w.events(id)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func types(evs []eventlog.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func count(evs []eventlog.Event, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// exported is the CAR `ipfs dag export` writes for the DAG.
func (w *world) exported(root cid.Cid) []byte {
	w.t.Helper()
	var buf bytes.Buffer
	if _, err := ipfstest.Export(context.Background(), w.bs, root, &buf); err != nil {
		w.t.Fatal(err)
	}
	return buf.Bytes()
}

// carpark returns the bytes of the CAR at key in the carpark.
func (w *world) carpark(key string) []byte {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(w.carDir, "carpark", filepath.FromSlash(key)))
	if err != nil {
		w.t.Fatalf("carpark object %s: %v", key, err)
	}
	return b
}

// leftovers lists what is left in the store's staging and upload areas.
func (w *world) leftovers() []string {
	w.t.Helper()
	var out []string
	for _, area := range []string{"staging", "uploads"} {
		filepath.WalkDir(filepath.Join(w.carDir, area), func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				out = append(out, path)
			}
			return nil
		})
	}
	return out
}

func TestPinnedCARIsTheDAGsExport(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	root := w.file(3<<20+12345, 1)
	w.startPool(poolOptions{name: "f1"})
	id := w.request(root)
	s := w.waitFor(id, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })

	want := w.exported(root)
	got := w.carpark(s.Car.Key)
	if !bytes.Equal(got, want) {
		t.Fatalf("carpark CAR (%d bytes) differs from `dag export` of the DAG (%d bytes)", len(got), len(want))
	}
	carCID := carstore.CarCID(sha256Sum(want))
	if s.Car.CarCID != carCID.String() || s.Car.Bytes != int64(len(want)) || s.Car.Key != carstore.CarKey(carCID) {
		t.Errorf("CarValidated %+v, want CAR CID %s, %d bytes, key %s", s.Car, carCID, len(want), carstore.CarKey(carCID))
	}
	evs := w.events(id)
	if got := types(evs); got[1] != pin.TypeFetchStarted || count(evs, pin.TypeCarUploaded) != 1 || got[len(got)-1] != pin.TypeCarValidated {
		t.Errorf("events %v, want a claim, one upload, and the validation last", got)
	}
	for _, e := range evs[1:] {
		if e.Meta.Actor != "f1" || e.Meta.CorrelationID != id {
			t.Errorf("%s written by %q correlated %s, want f1 and %s", e.Type, e.Meta.Actor, e.Meta.CorrelationID, id)
		}
	}
	if left := w.leftovers(); len(left) > 0 {
		t.Errorf("left in staging after validation: %v", left)
	}
}

func TestCompetingPoolsClaimEachAttemptOnce(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	roots := make([]cid.Cid, 12)
	for i := range roots {
		roots[i] = w.file(int64(200<<10+i*1000), uint64(100+i))
	}
	var ids []uuid.UUID
	for _, r := range roots {
		ids = append(ids, w.request(r))
	}
	// The same root asked for again once the first is pinned is not fetched
	// again.
	w.startPool(poolOptions{name: "f1", cfg: fetcher.Config{BatchSize: 3}})
	w.startPool(poolOptions{name: "f2", cfg: fetcher.Config{BatchSize: 3}})
	w.startPool(poolOptions{name: "f3", cfg: fetcher.Config{BatchSize: 3}})
	for _, id := range ids {
		w.waitFor(id, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
	}
	claimedBy := map[string]int{}
	for _, id := range ids {
		evs := w.events(id)
		if n := count(evs, pin.TypeFetchStarted); n != 1 {
			t.Errorf("pin %s claimed %d times: %v", id, n, types(evs))
		}
		claimedBy[evs[1].Meta.Actor]++
	}
	if got := w.gw.Requests(); got != int64(len(roots)) {
		t.Errorf("the gateway served %d requests for %d roots: some DAG was fetched twice", got, len(roots))
	}
	t.Logf("claims by fetcher: %v", claimedBy)

	again := w.request(roots[0])
	s := w.waitFor(again, "pinned", func(s pin.State) bool { return s.Phase == pin.PhasePinned })
	if !s.Car.Reused || w.gw.Requests() != int64(len(roots)) {
		t.Errorf("a pinned root asked again: reused %v, gateway requests %d; want it completed from the carpark without a fetch", s.Car.Reused, w.gw.Requests())
	}
}

func TestHostileSourceFailsWithItsReasonAndStoresNothing(t *testing.T) {
	for _, c := range []struct {
		name   string
		tamper ipfstest.Tamper
		reason pin.Reason
	}{
		{"corrupted block", ipfstest.Tamper{Corrupt: 3}, pin.ReasonBlockMismatch},
		{"block left out", ipfstest.Tamper{Drop: 4}, pin.ReasonMissingBlock},
		{"unrequested block", ipfstest.Tamper{Extra: true}, pin.ReasonUnrequestedBlock},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, ipfstest.GatewayOptions{Tamper: c.tamper})
			root := w.file(1<<20+7, 7)
			w.startPool(poolOptions{name: "f1"})
			id := w.request(root)
			s := w.waitFor(id, "failed", func(s pin.State) bool { return s.LastFailure != nil })
			if s.LastFailure.Reason != c.reason || s.LastFailure.Permanent {
				t.Errorf("failure %+v, want transient %s", s.LastFailure, c.reason)
			}
			if left := w.leftovers(); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if entries, _ := os.ReadDir(filepath.Join(w.carDir, "carpark")); len(entries) > 0 {
				t.Errorf("the carpark holds %d entries after a hostile fetch", len(entries))
			}
		})
	}
}

func TestTooBigFailsPermanently(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{})
	root := w.file(2<<20, 9)
	w.startPool(poolOptions{name: "f1", limits: dag.Limits{MaxCARBytes: 1 << 20}})
	id := w.request(root)
	s := w.waitFor(id, "failed", func(s pin.State) bool { return s.LastFailure != nil })
	if s.LastFailure.Reason != pin.ReasonTooBig || !s.LastFailure.Permanent || s.Status() != pin.StatusFailed {
		t.Errorf("failure %+v with status %s, want permanent too_big and failed", s.LastFailure, s.Status())
	}
}

func TestRemovalStopsTheFetchAndAbortsTheUpload(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{StallAt: 3}})
	root := w.file(2<<20, 11)
	w.startPool(poolOptions{name: "f1", cfg: fetcher.Config{Lease: time.Second}})
	id := w.request(root)
	s := w.waitFor(id, "claimed", func(s pin.State) bool { return s.Phase == pin.PhaseFetching })

	rm, err := s.Remove(uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	prop, _ := pinlog.Propose(rm, uuid.New(), eventlog.Metadata{Actor: "alice"})
	for {
		_, err := w.log.Append(context.Background(), pin.Stream(id), pinlog.Expected(s), prop)
		if err == nil {
			break
		}
		if !eventlog.IsWrongRevision(err) {
			t.Fatal(err)
		}
		s = w.state(id) // a progress report landed first
	}
	// Within a renewal or two the fetcher notices, stops, and cleans up.
	deadline := time.Now().Add(10 * time.Second)
	for len(w.leftovers()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := w.leftovers(); len(left) > 0 {
		t.Errorf("left behind after the removal: %v", left)
	}
	time.Sleep(1500 * time.Millisecond) // more than a renewal period
	evs := w.events(id)
	if last := evs[len(evs)-1]; last.Type != pin.TypeRemoved {
		t.Errorf("after the removal the fetcher wrote %s: %v", last.Type, types(evs))
	}
}

func TestStoppingPoolHandsBackItsWork(t *testing.T) {
	w := newWorld(t, ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{StallAt: 2}})
	root := w.file(1<<20, 13)
	agent := newAgent(t)
	stop := w.startPool(poolOptions{name: "f1", cfg: fetcher.Config{DrainTimeout: 200 * time.Millisecond},
		protector: fetcher.ECSTaskProtection{AgentURI: agent.url, Expires: time.Hour}})
	id := w.request(root)
	w.waitFor(id, "claimed", func(s pin.State) bool { return s.Phase == pin.PhaseFetching })
	if err := stop(); err != nil {
		t.Fatalf("stopping pool: %v", err)
	}
	s := w.state(id)
	if s.Phase != pin.PhaseFailed || s.LastFailure.Reason != pin.ReasonHandedBack || s.Failures != 0 {
		t.Fatalf("after the stop the pin is %s with failure %+v and %d failures; want handed back, no attempt spent", s.Phase, s.LastFailure, s.Failures)
	}
	if left := w.leftovers(); len(left) > 0 {
		t.Errorf("left behind after the hand-back: %v", left)
	}
	if got := agent.states(); len(got) != 2 || got[0] != "on" || got[1] != "off" {
		t.Errorf("task protection went %v, want on while fetching, then off", got)
	}
}

func sha256Sum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}
