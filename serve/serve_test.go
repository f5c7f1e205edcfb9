package serve_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/index"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/servetest"
	"github.com/pickup-ipfs/pickup/serve"
	"github.com/pickup-ipfs/pickup/serve/locate"
	locatesqlite "github.com/pickup-ipfs/pickup/serve/locate/sqlite"
)

// fixture is a carpark (a real store: the directory, or S3 on versitygw)
// holding one pinned DAG, its CAR indexed into a real lookup, and the
// serving role over them.
type fixture struct {
	root    cid.Cid
	car     []byte
	stored  carstore.Stored
	dir     string
	pins    *servetest.Held
	damages *servetest.Damages
	reg     *prometheus.Registry
	srv     *httptest.Server
	lookup  *locatesqlite.Store
	store   carpark
}

// carpark is what the fixture needs of a store.
type carpark interface {
	Stage(ctx context.Context, key string, meta carstore.Metadata) (carstore.Upload, error)
	Promote(ctx context.Context, stagedKey string, want carstore.Expected) (carstore.Stored, error)
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
}

func newFixture(t *testing.T, size int64) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := carstore.NewDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := newFixtureIn(t, store, ipfstest.FileOptions{Size: size, Seed: 3, CIDv1: true})
	f.dir = dir
	return f
}

// newFixtureIn pins a file DAG of opts into store: its CAR as `ipfs dag
// export` writes it, promoted, indexed as go-car indexes it, and held.
func newFixtureIn(tb testing.TB, store carpark, opts ipfstest.FileOptions) *fixture {
	tb.Helper()
	return newFixtureOf(tb, store, func(ctx context.Context, bs blockstore.Blockstore) (cid.Cid, error) {
		return ipfstest.File(ctx, bs, opts)
	})
}

// newFixtureOf pins the DAG build makes.
func newFixtureOf(tb testing.TB, store carpark, build func(context.Context, blockstore.Blockstore) (cid.Cid, error)) *fixture {
	tb.Helper()
	ctx := context.Background()
	bs := ipfstest.NewMemBlockstore()
	root, err := build(ctx, bs)
	if err != nil {
		tb.Fatal(err)
	}
	var car bytes.Buffer
	if _, err := ipfstest.Export(ctx, bs, root, &car); err != nil {
		tb.Fatal(err)
	}
	meta := carstore.Metadata{Root: root, RequestID: uuid.NewString()}
	staged := carstore.StagingKey(meta.RequestID, 1)
	up, err := store.Stage(ctx, staged, meta)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := up.Write(car.Bytes()); err != nil {
		tb.Fatal(err)
	}
	st, err := up.Complete(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	stored, err := store.Promote(ctx, staged, carstore.Expected{Bytes: st.Bytes, CarCID: st.CarCID, Metadata: meta, Checksum: st.Checksum})
	if err != nil {
		tb.Fatal(err)
	}
	idx, err := carv2.GenerateIndex(bytes.NewReader(car.Bytes()), carv2.UseIndexCodec(multicodec.CarMultihashIndexSorted))
	if err != nil {
		tb.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := index.WriteTo(idx, &raw); err != nil {
		tb.Fatal(err)
	}
	entries, err := locate.Entries(bytes.NewReader(raw.Bytes()), int64(car.Len()))
	if err != nil {
		tb.Fatal(err)
	}
	lookup, err := locatesqlite.Open(ctx, filepath.Join(tb.TempDir(), "locate.db"), locatesqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { lookup.Close() })
	if err := lookup.Add(ctx, locate.CAR{CarCID: stored.CarCID, Root: root, Key: stored.Key, Bytes: stored.Bytes}, entries); err != nil {
		tb.Fatal(err)
	}
	f := &fixture{root: root, car: car.Bytes(), stored: stored, damages: &servetest.Damages{}, reg: prometheus.NewRegistry(), lookup: lookup, store: store,
		pins: servetest.NewHeld()}
	f.pins.Hold(root, stored.CarCID)
	h, err := serve.New(serve.Config{Deserialized: true, HoldTTL: time.Nanosecond, MaxDAGBytes: -1}, serve.Deps{Locator: lookup, Carpark: store, Pins: f.pins, Reporter: f.damages, Metrics: f.reg})
	if err != nil {
		tb.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	tb.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// corrupt flips one byte of the stored CAR at offset.
func (f *fixture) corrupt(t *testing.T, offset int64) {
	t.Helper()
	p := filepath.Join(f.dir, "carpark", filepath.FromSlash(f.stored.Key))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[offset] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func blocks(t testing.TB, car []byte) []struct {
	cid    cid.Cid
	data   []byte
	offset int64
} {
	t.Helper()
	br, err := carv2.NewBlockReader(bytes.NewReader(car))
	if err != nil {
		t.Fatal(err)
	}
	var out []struct {
		cid    cid.Cid
		data   []byte
		offset int64
	}
	var from int64
	for {
		b, err := br.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		// The data is the last bytes of its section, after the last
		// block's.
		off := from + int64(bytes.Index(car[from:], b.RawData()))
		from = off + int64(len(b.RawData()))
		out = append(out, struct {
			cid    cid.Cid
			data   []byte
			offset int64
		}{b.Cid(), b.RawData(), off})
	}
}

// The whole DAG of a pinned root is the stored CAR, byte for byte.
func TestWholeDAGIsTheStoredCAR(t *testing.T) {
	f := newFixture(t, 1<<20+777)
	resp, body := f.get(t, "/ipfs/"+f.root.String()+"?format=car")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, f.car) {
		t.Fatalf("GET CAR: %d, %d bytes, want 200 and the stored %d", resp.StatusCode, len(body), len(f.car))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.ipld.car; version=1") {
		t.Errorf("Content-Type %q", ct)
	}
	// Another form of the root's CID is composed by boxo, with its own
	// header root, from the same verified blocks.
	v0 := cid.NewCidV0(f.root.Hash())
	if f.root.Type() == cid.DagProtobuf {
		resp, body = f.get(t, "/ipfs/"+v0.String()+"?format=car")
		got, want := blocks(t, body), blocks(t, f.car)
		if resp.StatusCode != http.StatusOK || len(got) != len(want) || !got[0].cid.Equals(v0) {
			t.Fatalf("GET CAR of the CIDv0: %d, %d blocks, want %d from %s", resp.StatusCode, len(got), len(want), v0)
		}
		for i := range got {
			if !bytes.Equal(got[i].data, want[i].data) {
				t.Fatalf("GET CAR of the CIDv0: block %d differs", i)
			}
		}
	}
}

// Every block is served raw; none of a root no pin holds is, and a removed
// root's stop at once (HoldTTL here is the smallest).
func TestRawBlocksOfHeldRootsOnly(t *testing.T) {
	f := newFixture(t, 600<<10)
	blks := blocks(t, f.car)
	for _, b := range blks {
		resp, body := f.get(t, "/ipfs/"+b.cid.String()+"?format=raw")
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, b.data) {
			t.Fatalf("raw %s: %d, %d bytes", b.cid, resp.StatusCode, len(body))
		}
	}
	f.pins.Release(f.root)
	for _, q := range []string{blks[0].cid.String() + "?format=raw", blks[1].cid.String() + "?format=raw", f.root.String() + "?format=car", f.root.String()} {
		if resp, _ := f.get(t, "/ipfs/"+q); resp.StatusCode != http.StatusNotFound {
			t.Errorf("after release, %s: %d, want 404", q, resp.StatusCode)
		}
	}
}

// A stored block that does not match its CID is never served: a 5xx for
// the block, a CAR cut short before it, a report naming the CAR and the
// section, and the metric.
func TestDamagedBlockIsNeverServed(t *testing.T) {
	f := newFixture(t, 600<<10)
	blks := blocks(t, f.car)
	bad := blks[2]
	f.corrupt(t, bad.offset+10)

	resp, body := f.get(t, "/ipfs/"+bad.cid.String()+"?format=raw")
	if resp.StatusCode < 500 || bytes.Contains(body, bad.data[:32]) {
		t.Fatalf("damaged block: %d (%d bytes), want a 5xx without its bytes", resp.StatusCode, len(body))
	}
	got := f.damages.All()
	if len(got) != 1 || !got[0].Block.Equals(bad.cid) || got[0].Location.Key != f.stored.Key || got[0].Location.Offset >= bad.offset || got[0].Location.Offset < bad.offset-100 {
		t.Fatalf("reports %+v, want one for %s in %s just before %d", got, bad.cid, f.stored.Key, bad.offset)
	}
	if n := testutil.ToFloat64(mustCounter(t, f.reg, "pickup_serve_damaged_blocks_total")); n != 1 {
		t.Errorf("pickup_serve_damaged_blocks_total %v, want 1", n)
	}
	// The other blocks are still served.
	if resp, _ := f.get(t, "/ipfs/"+blks[1].cid.String()+"?format=raw"); resp.StatusCode != http.StatusOK {
		t.Errorf("a sound block: %d", resp.StatusCode)
	}
	// The whole CAR stops before the damaged section: what was sent is the
	// stored CAR's sound prefix, and the stream is marked cut short.
	resp, body = f.get(t, "/ipfs/"+f.root.String()+"?format=car")
	sectionStart := got[0].Location.Offset
	if resp.StatusCode != http.StatusOK || bytes.Equal(body, f.car) || !bytes.HasPrefix(f.car, body[:sectionStart]) || bytes.Contains(body, bad.data[:32]) {
		t.Fatalf("CAR with a damaged block: %d, %d bytes (stored %d): want the sound prefix only", resp.StatusCode, len(body), len(f.car))
	}
	if !strings.Contains(string(body[sectionStart:]), "CAR stream truncated") {
		t.Errorf("the cut CAR does not say it is cut short: %q", body[sectionStart:])
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
			c.Add(mf.GetMetric()[0].GetCounter().GetValue())
			return c
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// Limits and routes: /ipns/ is refused, /healthz answers, a bad CID is 400.
func TestRoutes(t *testing.T) {
	f := newFixture(t, 1000)
	if resp, _ := f.get(t, "/ipns/example.com"); resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("/ipns/: %d, want 501", resp.StatusCode)
	}
	if resp, body := f.get(t, "/healthz"); resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}
	if resp, _ := f.get(t, "/ipfs/not-a-cid?format=raw"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad CID: %d, want 400", resp.StatusCode)
	}
	if resp, _ := f.get(t, "/pins"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/pins: %d, want 404", resp.StatusCode)
	}
	if _, err := serve.New(serve.Config{MaxRequests: -1}, serve.Deps{}); err == nil {
		t.Error("a negative MaxRequests was accepted")
	}
}

// A damaged block is reported to the log as a BlockDamaged event of its
// CAR's stream, once however often it is read.
func TestLogReporterReportsOnce(t *testing.T) {
	ctx := context.Background()
	log, err := embedded.Open(ctx, filepath.Join(t.TempDir(), "events.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	f := newFixture(t, 300<<10)
	bad := blocks(t, f.car)[1]
	f.corrupt(t, bad.offset+5)
	r := serve.LogReporter{Log: log, Actor: "serve-test"}
	bs := serve.NewBlockstore(f.lookup, f.store, f.pins, serve.BlockstoreOptions{HoldTTL: time.Second, Reporter: r})
	for range 3 {
		if _, err := bs.Get(ctx, bad.cid); !errors.Is(err, serve.ErrDamaged) {
			t.Fatalf("Get of a damaged block: %v, want ErrDamaged", err)
		}
	}
	evs, err := log.ReadStream(ctx, serve.DamageStreamPrefix+f.stored.CarCID.String(), 0, eventlog.Forwards, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("damage stream: %d events, %v; want one", len(evs), err)
	}
	d, err := serve.DecodeDamage(evs[0])
	if err != nil || d.Block != bad.cid.String() || d.Key != f.stored.Key || d.Offset >= bad.offset || d.Offset < bad.offset-100 || d.Detail == "" {
		t.Fatalf("report %+v, %v", d, err)
	}
}

// The spec's other statuses, as boxo's handler gives them over the
// carpark: 406 for a format the block cannot be given in, 412 for
// only-if-cached of what is not held (200 for what is), and the cap on a
// deserialized response's DAG (410 Gone), which raw blocks and CARs do
// not have.
func TestStatusesAndLimits(t *testing.T) {
	f := newFixture(t, 600<<10)
	if resp, _ := f.get(t, "/ipfs/"+f.root.String()+"?format=dag-json"); resp.StatusCode != http.StatusNotAcceptable {
		t.Errorf("dag-json of a dag-pb block: %d, want 406", resp.StatusCode)
	}
	// Another block: blocks are found by multihash (a block held under
	// one codec is held under any), so it takes other bytes.
	mh, err := multihash.Sum([]byte("never pinned"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	other := cid.NewCidV1(cid.Raw, mh)
	for _, c := range []struct {
		cid  cid.Cid
		want int
	}{{f.root, http.StatusOK}, {other, http.StatusPreconditionFailed}} {
		req, _ := http.NewRequest(http.MethodHead, f.srv.URL+"/ipfs/"+c.cid.String()+"?format=raw", nil)
		req.Header.Set("Cache-Control", "only-if-cached")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("only-if-cached %s: %d, want %d", c.cid, resp.StatusCode, c.want)
		}
	}

	h, err := serve.New(serve.Config{Deserialized: true, MaxDAGBytes: 100 << 10}, serve.Deps{Locator: f.lookup, Carpark: f.store, Pins: f.pins})
	if err != nil {
		t.Fatal(err)
	}
	capped := httptest.NewServer(h)
	defer capped.Close()
	for _, q := range []struct {
		path string
		want int
	}{{"", http.StatusGone}, {"?format=car", http.StatusOK}, {"?format=raw", http.StatusOK}} {
		resp, err := http.Get(capped.URL + "/ipfs/" + f.root.String() + q.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != q.want {
			t.Errorf("a 600 KiB file capped at 100 KiB, %q: %d, want %d", q.path, resp.StatusCode, q.want)
		}
	}
}

// A stored CAR cut short is sent up to its last whole section, then marked
// cut short, and reported.
func TestTruncatedCARIsCutBeforeItsLastSection(t *testing.T) {
	f := newFixture(t, 3<<20+3)
	p := filepath.Join(f.dir, "carpark", filepath.FromSlash(f.stored.Key))
	if err := os.Truncate(p, int64(len(f.car)-10)); err != nil { // inside the last section, the file's 3-byte tail
		t.Fatal(err)
	}
	blks := blocks(t, f.car)
	last := blks[len(blks)-1]
	resp, body := f.get(t, "/ipfs/"+f.root.String()+"?format=car")
	lastStart := int(last.offset) - last.cid.ByteLen() - varintLen(uint64(last.cid.ByteLen()+len(last.data)))
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, f.car[:lastStart]) || !strings.Contains(string(body[lastStart:]), "CAR stream truncated") {
		t.Fatalf("a truncated CAR: %d, %d bytes of %d (last section at %d; reports %+v); want the sections before the last, then the cut mark", resp.StatusCode, len(body), len(f.car), lastStart, f.damages.All())
	}
	got := f.damages.All()
	if len(got) != 1 || got[0].Location.Offset != int64(lastStart) || !strings.Contains(got[0].Err.Error(), "ends inside a section") {
		t.Fatalf("reports %+v, want one at %d", got, lastStart)
	}
}

func varintLen(n uint64) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// A UnixFS directory is served deserialized through boxo: its listing, a
// file by its path, and the whole directory's CAR is the stored one.
func TestDirectoryDeserialized(t *testing.T) {
	dir := t.TempDir()
	store, err := carstore.NewDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	files := map[string][]byte{"a.txt": []byte("hello from a"), "b.bin": bytes.Repeat([]byte{7}, 300<<10)}
	f := newFixtureOf(t, store, func(ctx context.Context, bs blockstore.Blockstore) (cid.Cid, error) {
		ds := merkledag.NewDAGService(blockservice.New(bs, nil))
		d, err := uio.NewDirectory(ds)
		if err != nil {
			return cid.Undef, err
		}
		for name, content := range files {
			nd, err := importer.BuildDagFromReader(ds, chunker.DefaultSplitter(bytes.NewReader(content)))
			if err != nil {
				return cid.Undef, err
			}
			if err := d.AddChild(ctx, name, nd); err != nil {
				return cid.Undef, err
			}
		}
		nd, err := d.GetNode()
		if err != nil {
			return cid.Undef, err
		}
		return nd.Cid(), ds.Add(ctx, nd)
	})
	for name, content := range files {
		if resp, body := f.get(t, "/ipfs/"+f.root.String()+"/"+name); resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
			t.Errorf("%s: %d, %d bytes, want 200 and %d", name, resp.StatusCode, len(body), len(content))
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/ipfs/"+f.root.String()+"/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	listing, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(listing, []byte("a.txt")) || !bytes.Contains(listing, []byte("b.bin")) {
		t.Errorf("directory listing: %d, names missing", resp.StatusCode)
	}
	if resp, body := f.get(t, "/ipfs/"+f.root.String()+"?format=car"); resp.StatusCode != http.StatusOK || !bytes.Equal(body, f.car) {
		t.Errorf("the directory's CAR: %d, %d bytes, want the stored %d", resp.StatusCode, len(body), len(f.car))
	}
}
