package ipni_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pickup-ipfs/pickup/eventlog/embedded"
	"github.com/pickup-ipfs/pickup/internal/ipnitest"
	"github.com/pickup-ipfs/pickup/serve/ipni"
	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
)

// dirObjects is a carpark of files (key → DIR/key) that two processes
// share, for the killed publisher's case.
type dirObjects string

func (d dirObjects) put(key string, b []byte) error {
	p := filepath.Join(string(d), key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

func (d dirObjects) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	b, err := os.ReadFile(filepath.Join(string(d), key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", key, errNotFound)
	} else if err != nil {
		return nil, err
	}
	b = b[offset:]
	if length >= 0 {
		b = b[:min(int64(len(b)), length)]
	}
	return io.NopCloser(strings.NewReader(string(b))), nil
}

// The killed publisher's settings, given to the child process.
const (
	envChildLog     = "PICKUP_IPNI_TEST_CHILD_LOG"
	envChildCars    = "PICKUP_IPNI_TEST_CHILD_CARS"
	envChildKey     = "PICKUP_IPNI_TEST_CHILD_KEY"
	envChildIndexer = "PICKUP_IPNI_TEST_CHILD_INDEXER"
)

// TestKilledPublisherChild is the publisher TestPublisherSIGKILLed kills:
// run in a child process only, it publishes from the log it is given,
// printing "appended N" as its count of ads grows, until it is killed.
func TestKilledPublisherChild(t *testing.T) {
	path := os.Getenv(envChildLog)
	if path == "" {
		t.Skip("the child of TestPublisherSIGKILLed")
	}
	log, err := embedded.Open(context.Background(), path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(os.Getenv(envChildKey))
	key, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, path: path, log: log, key: key}
	srv := newServer(t)
	cfg := ipni.Config{Key: key, Addrs: bitswapAddrs, HTTPAddr: srv.addr, Indexers: []string{os.Getenv(envChildIndexer)}, BatchSize: 5, RetryDelay: 10 * time.Millisecond}
	p, err := ipni.New(cfg, ipni.Deps{Log: w.log, Objects: dirObjects(os.Getenv(envChildCars)), IsNotFound: func(err error) bool { return errors.Is(err, errNotFound) }})
	if err != nil {
		t.Fatal(err)
	}
	srv.mount(p.Handler())
	go p.Run(context.Background())
	for last := int64(-1); ; time.Sleep(5 * time.Millisecond) {
		if n := p.Stats().Ads; n != last {
			fmt.Printf("appended %d\n", n)
			last = n
		}
	}
}

// TestPublisherSIGKILLed: a serve task's publisher, in a process of its
// own, is killed with SIGKILL while it publishes a backlog of 200 CARs
// (its appends of 5 ads each, its announcements, its HTTP server die with
// it); a publisher started after, on the same log, takes up the chain:
// it is continuous from the head to the first ad, every CAR in it once,
// and the indexer ingests every CAR from the new publisher.
func TestPublisherSIGKILLed(t *testing.T) {
	if os.Getenv(envChildLog) != "" {
		t.Skip("in the child")
	}
	ix := ipnitest.Start(t)
	w := newWorld(t)
	cars := dirObjects(t.TempDir())
	var pinned []locatetest.Car
	for i := range 200 {
		car := locatetest.NewCar(t, uint64(5000+i), 3)
		if err := cars.put(car.CAR.Key+".idx", car.Index); err != nil {
			t.Fatal(err)
		}
		w.pin(car)
		pinned = append(pinned, car)
	}
	raw, err := crypto.MarshalPrivateKey(w.key)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledPublisherChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChildLog+"="+w.path, envChildCars+"="+string(cars), envChildKey+"="+hex.EncodeToString(raw), envChildIndexer+"="+ix.IngestURL)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	said := 0
	for said < 20 && lines.Scan() {
		if n, ok := strings.CutPrefix(lines.Text(), "appended "); ok {
			said, _ = strconv.Atoi(n)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	go io.Copy(io.Discard, out)
	before := len(chainOf(t, w.log))
	if before < said || before >= len(pinned) {
		t.Fatalf("the killed publisher left %d ads (it said %d); want between that and all %d", before, said, len(pinned))
	}
	t.Logf("killed after %d ads", before)

	srv := newServer(t)
	cfg := ipni.Config{Key: w.key, Addrs: bitswapAddrs, HTTPAddr: srv.addr, Indexers: []string{ix.IngestURL}, BatchSize: 5, RetryDelay: 10 * time.Millisecond}
	p, err := ipni.New(cfg, ipni.Deps{Log: w.log, Objects: cars, IsNotFound: func(err error) bool { return errors.Is(err, errNotFound) }})
	if err != nil {
		t.Fatal(err)
	}
	srv.mount(p.Handler())
	run(t, p)
	eventually(t, "the new publisher publishes the rest", func() error {
		if n := len(chainOf(t, w.log)); n != len(pinned) {
			return fmt.Errorf("%d ads in the chain", n)
		}
		return nil
	})
	continuous(t, srv, w, pinned)
	for _, car := range pinned {
		eventually(t, "the indexer ingests every CAR", func() error { return named(ix, p, srv, car) })
	}
}
