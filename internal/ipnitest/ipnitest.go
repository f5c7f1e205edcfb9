// Package ipnitest runs the real IPNI indexer for tests: storetheindex
// (v0.8.38, built by `make storetheindex` into .tools/bin), initialised in
// a temporary directory with every listener on a free loopback port, no
// bootstrap peers and a pubsub topic of its own (its libp2p host, which
// its ingester needs, dials nobody and is dialed by nobody), syncing
// advertisement chains from publishers over HTTP when told of them by an
// announcement (PUT /announce on its ingest port). It is stopped when the
// test ends.
package ipnitest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// readyTimeout bounds the wait for a started indexer to answer (it is
// ready in about a second on these machines).
const readyTimeout = 60 * time.Second

// Indexer is one storetheindex process.
type Indexer struct {
	// FinderURL answers GET /cid/{cid} and /multihash/{mh}; IngestURL
	// takes announcements (PUT /announce); AdminURL is its admin API.
	FinderURL, IngestURL, AdminURL string
	// Dir holds its config and data.
	Dir string

	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

// Start starts an indexer, failing the test if storetheindex is not built
// (`make storetheindex`) or does not answer; it is stopped at the test's
// end, and its log printed when the test failed.
func Start(t testing.TB) *Indexer {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ix, err := start(bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ix.stop()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "daemon.log")); err == nil {
				t.Logf("storetheindex's log (last 8 KiB):\n%s", tail(b, 8<<10))
			}
		}
	})
	return ix
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func start(bin, dir string) (*Indexer, error) {
	var ports [4]string
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	ma := func(port string) string { return "/ip4/127.0.0.1/tcp/" + port }
	env := append(os.Environ(), "STORETHEINDEX_PATH="+dir, "GOLOG_LOG_LEVEL=info")
	init := exec.Command(bin, "init", "--no-bootstrap", "--store", "pebble", "--pubsub-topic", "/pickup/test/"+filepath.Base(dir),
		"--listen-admin", ma(ports[0]), "--listen-finder", ma(ports[1]), "--listen-ingest", ma(ports[2]), "--listen-p2p", ma(ports[3]))
	init.Env, init.Dir = env, dir
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("storetheindex init: %v: %s", err, out)
	}
	if err := tune(filepath.Join(dir, "config")); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "daemon")
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, dir, logf, logf
	// The kernel kills the indexer if the test process dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start storetheindex: %w", err)
	}
	ix := &Indexer{
		FinderURL: "http://127.0.0.1:" + ports[1], IngestURL: "http://127.0.0.1:" + ports[2], AdminURL: "http://127.0.0.1:" + ports[0],
		Dir: dir, cmd: cmd, done: make(chan error, 1), log: logf,
	}
	go func() { ix.done <- cmd.Wait() }()
	if err := ix.waitReady(); err != nil {
		ix.stop()
		b, _ := os.ReadFile(logf.Name())
		return nil, fmt.Errorf("%w; its log:\n%s", err, tail(b, 8<<10))
	}
	return ix, nil
}

// tune sets what init has no flag for: a small cache (the default block
// cache is 1 GiB) and a quick shutdown.
func tune(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("storetheindex config: %w", err)
	}
	section := func(name string) map[string]any {
		m, _ := cfg[name].(map[string]any)
		if m == nil {
			m = map[string]any{}
			cfg[name] = m
		}
		return m
	}
	ixr := section("Indexer")
	ixr["PebbleBlockCacheSize"] = "8Mi"
	ixr["CacheSize"] = 10000
	ixr["ShutdownTimeout"] = "5s"
	ing := section("Ingest")
	ing["IngestWorkerCount"] = 2
	b, err = json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func (ix *Indexer) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		ok := true
		for _, u := range []string{ix.FinderURL + "/health", ix.IngestURL + "/health"} {
			resp, err := http.Get(u)
			if err != nil {
				ok = false
				break
			}
			resp.Body.Close()
		}
		if ok {
			return nil
		}
		select {
		case err := <-ix.done:
			ix.done <- err
			return fmt.Errorf("storetheindex exited before answering: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("storetheindex did not answer within %v", readyTimeout)
		}
	}
}

func (ix *Indexer) stop() {
	if ix.cmd.Process != nil {
		_ = ix.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-ix.done:
		case <-time.After(10 * time.Second):
			_ = ix.cmd.Process.Kill()
			<-ix.done
		}
	}
	ix.log.Close()
}

// Provider is one provider record of a find answer.
type Provider struct {
	ContextID []byte
	Metadata  []byte
	Provider  struct {
		ID    string
		Addrs []string
	}
}

// FindMultihash asks GET /multihash/{mh}: the providers the indexer names
// for it (none: 404, an empty answer).
func (ix *Indexer) FindMultihash(mh multihash.Multihash) ([]Provider, error) {
	return ix.find("/multihash/" + mh.B58String())
}

// FindCID asks GET /cid/{cid}.
func (ix *Indexer) FindCID(c cid.Cid) ([]Provider, error) { return ix.find("/cid/" + c.String()) }

func (ix *Indexer) find(path string) ([]Provider, error) {
	req, err := http.NewRequest(http.MethodGet, ix.FinderURL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, nil
	case http.StatusOK:
	default:
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	var out struct {
		MultihashResults []struct {
			ProviderResults []Provider
		}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	var ps []Provider
	for _, r := range out.MultihashResults {
		ps = append(ps, r.ProviderResults...)
	}
	return ps, nil
}

// Binary finds storetheindex in .tools/bin at the root of the module the
// working directory is in, then on PATH.
func Binary() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".tools", "bin", "storetheindex")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if p, err := exec.LookPath("storetheindex"); err == nil {
		return p, nil
	}
	return "", errors.New("storetheindex is not in .tools/bin nor on PATH: `make storetheindex` builds it (scripts/build-storetheindex.sh)")
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port, nil
}
