package ipni_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	headschema "github.com/ipni/go-libipni/dagsync/ipnisync/head"
	"github.com/ipni/go-libipni/ingest/schema"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/serve/ipni"
	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
)

var errNotFound = locatetest.ErrNotFound

// objects is the carpark in memory, as the block lookup's loader tests
// keep it: the publisher reads index objects only, by key.
type objects = locatetest.Objects

// world is a real event log (the embedded one, in a file) and a carpark.
type world struct {
	t    testing.TB
	path string
	log  *embedded.Store
	cars *objects
	key  crypto.PrivKey
}

func newWorld(t testing.TB) *world {
	path := filepath.Join(t.TempDir(), "log.db")
	log, err := embedded.Open(context.Background(), path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, path: path, log: log, cars: locatetest.NewObjects(), key: key}
}

// pinCar makes a CAR of n blocks, puts it and its index in the carpark
// and records its pin through pinlog to CarValidated.
func (w *world) pinCar(seed uint64, n int) locatetest.Car {
	w.t.Helper()
	car := locatetest.NewCar(w.t, seed, n)
	w.cars.Put(car.CAR.Key, car.Bytes)
	w.cars.Put(car.CAR.Key+".idx", car.Index)
	w.pin(car)
	return car
}

// pin runs a pin of car's root to CarValidated, naming its index: the
// events the fetcher and the validator append.
func (w *world) pin(car locatetest.Car) uuid.UUID {
	w.t.Helper()
	ctx := context.Background()
	id := uuid.New()
	c := pinlog.New(w.log, nil)
	do := func(decide func(pin.State) (pin.Payload, error)) {
		w.t.Helper()
		_, err := c.Commit(ctx, pinlog.Commit{RequestID: id, Actor: "test", Decide: func(s pin.State) (pinlog.Decision, error) {
			p, err := decide(s)
			return pinlog.Decision{Payload: p}, err
		}})
		if err != nil {
			w.t.Fatal(err)
		}
	}
	do(func(s pin.State) (pin.Payload, error) {
		return pin.Request(s, pin.Requested{RequestID: id, Tenant: "alice", CID: car.CAR.Root.String(), Created: time.Now()})
	})
	do(func(s pin.State) (pin.Payload, error) { return s.Claim("fetcher-1", time.Now(), time.Minute) })
	do(func(s pin.State) (pin.Payload, error) {
		return s.Upload(pin.CarUploaded{Attempt: 1, Fetcher: "fetcher-1", Key: "staging/" + id.String(), Bytes: car.CAR.Bytes, Blocks: int64(max(1, len(car.Blocks))), CarCID: car.CAR.CarCID.String()})
	})
	sum := sha256.Sum256(car.Index)
	do(func(s pin.State) (pin.Payload, error) {
		return s.Validate(pin.CarValidated{Attempt: 1, Key: car.CAR.Key, Bytes: car.CAR.Bytes, CarCID: car.CAR.CarCID.String(),
			Index: car.CAR.Key + ".idx", IndexBytes: int64(len(car.Index)), IndexSHA256: hex.EncodeToString(sum[:])})
	})
	return id
}

// deleteRoot records the garbage collector's deletion of car's root on
// the root's stream (RootDeleting, then RootDeleted) and removes its
// objects, as pin/deciders' GC does after a root's last pin is removed.
func (w *world) deleteRoot(car locatetest.Car) {
	w.t.Helper()
	ctx := context.Background()
	c := pinlog.New(w.log, nil)
	root := pinlog.CanonicalRoot(car.CAR.Root)
	_, err := c.CommitRoot(ctx, pinlog.RootCommit{Root: root, Actor: "gc/test", Decide: func(s pin.RootState) (pinlog.RootDecision, error) {
		d, err := s.DecideDelete("gc/test", time.Now(), time.Minute)
		if err != nil || d == nil {
			return pinlog.RootDecision{}, err
		}
		return pinlog.RootDecision{Payload: *d}, nil
	}})
	if err != nil {
		w.t.Fatal(err)
	}
	w.cars.Remove(car.CAR.Key)
	w.cars.Remove(car.CAR.Key + ".idx")
	_, err = c.CommitRoot(ctx, pinlog.RootCommit{Root: root, Actor: "gc/test", Decide: func(s pin.RootState) (pinlog.RootDecision, error) {
		d, err := s.Deleted("gc/test", time.Now(), 2)
		return pinlog.RootDecision{Payload: d}, err
	}})
	if err != nil {
		w.t.Fatal(err)
	}
}

// server is one serve task's HTTP listener, with the publisher's
// handler mounted at /ipni/v1/ad/ as the serve role mounts it.
type server struct {
	srv  *httptest.Server
	addr multiaddr.Multiaddr
	mu   sync.Mutex
	h    http.Handler
}

func newServer(t testing.TB) *server {
	s := &server{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		h := s.h
		s.mu.Unlock()
		if h == nil {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	host, port, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	s.addr = multiaddr.StringCast("/ip4/" + host + "/tcp/" + port + "/http")
	return s
}

func (s *server) mount(h http.Handler) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

// bitswapAddrs stand for the serve peer's libp2p addresses, which the ads
// carry (the bitswap server is another part's).
var bitswapAddrs = []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/4001"), multiaddr.StringCast("/ip4/127.0.0.1/udp/4001/quic-v1")}

// publisher makes a publisher of the world's key behind srv.
func (w *world) publisher(srv *server, indexers []string, cfg ipni.Config) *ipni.Publisher {
	w.t.Helper()
	cfg.Key, cfg.Addrs, cfg.HTTPAddr, cfg.Indexers = w.key, bitswapAddrs, srv.addr, indexers
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 10 * time.Millisecond
	}
	p, err := ipni.New(cfg, ipni.Deps{Log: w.log, Objects: w.cars, IsNotFound: func(err error) bool { return errors.Is(err, errNotFound) },
		Logger: slog.New(slog.NewTextHandler(testWriter{w.t}, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		w.t.Fatal(err)
	}
	srv.mount(p.Handler())
	return p
}

type testWriter struct{ t testing.TB }

func (tw testWriter) Write(p []byte) (int, error) {
	tw.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// run starts p and returns its stop, which waits for it to return.
func run(t testing.TB, p *ipni.Publisher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually retries check until it returns nil, failing the test with
// its last error after two minutes.
func eventually(t testing.TB, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// walked is one ad of a chain, as fetched from a publisher.
type walked struct {
	cid cid.Cid
	ad  schema.Advertisement
}

// walk fetches the chain from a publisher's HTTP address as an indexer
// does: the signed head (checked against the publisher's key), then each
// ad by its CID, back to the first; each one's bytes are checked against
// its CID and its signature against the provider. It returns the chain
// from its first ad.
func walk(t testing.TB, base string, key crypto.PrivKey) []walked {
	t.Helper()
	get := func(path string) []byte {
		t.Helper()
		resp, err := http.Get(base + ipni.HandlerPath + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %v: %s", path, resp.Status, err, b)
		}
		return b
	}
	signed, err := headschema.Decode(bytes.NewReader(get("head")))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signed.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := peer.IDFromPrivateKey(key); signer != want {
		t.Fatalf("head signed by %s, want %s", signer, want)
	}
	var out []walked
	for c := signed.Head.(cidlink.Link).Cid.String(); c != ""; {
		id := cid.MustParse(c)
		b := get(c)
		sum, _ := multihash.Sum(b, multihash.SHA2_256, -1)
		if !bytes.Equal(sum, id.Hash()) {
			t.Fatalf("ad %s: its bytes hash to %s", c, sum.B58String())
		}
		ad, err := schema.BytesToAdvertisement(id, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ad.VerifySignature(); err != nil {
			t.Fatalf("ad %s: %v", c, err)
		}
		out = append(out, walked{id, ad})
		c = ""
		if prev := ad.PreviousCid(); prev.Defined() {
			c = prev.String()
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// chainOf reads the chain's stream from the log.
func chainOf(t testing.TB, log eventlog.Store) []ipni.Advertised {
	t.Helper()
	evs, err := log.ReadStream(context.Background(), ipni.Stream, 0, eventlog.Forwards, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]ipni.Advertised, len(evs))
	for i, e := range evs {
		if e.Revision != uint64(i) {
			t.Fatalf("event %d of %s at revision %d", i, ipni.Stream, e.Revision)
		}
		if out[i], err = ipni.Decode(e); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// get fetches a CID from a publisher's handler, checking its bytes
// against it.
func get(t testing.TB, srv *server, c string) []byte {
	t.Helper()
	resp, err := http.Get(srv.srv.URL + ipni.HandlerPath + c)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v: %s", c, resp.Status, err, b)
	}
	id := cid.MustParse(c)
	sum, _ := multihash.Sum(b, id.Prefix().MhType, -1)
	if !bytes.Equal(sum, id.Hash()) {
		t.Fatalf("%s: the bytes served hash to %s", c, sum.B58String())
	}
	return b
}
