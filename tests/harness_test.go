package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/postgrestest"
	"github.com/pickup-ipfs/pickup/internal/s3test"
)

var (
	pg postgrestest.Shared
	// pickupBin is the pickup binary the tests run, built once.
	pickupBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pickup-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pickupBin = filepath.Join(dir, "pickup")
	// Built as the image builds it (static, -trimpath), which make test
	// has compiled already.
	build := exec.Command("go", "build", "-trimpath", "-o", pickupBin, "github.com/pickup-ipfs/pickup/cmd/pickup")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pickup:", err)
		os.Exit(1)
	}
	code := pg.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is a deployment of pickup on loopback: what every process shares,
// and the processes started so far.
type cluster struct {
	t       testing.TB
	dir     string
	logPath string
	views   string
	s3      *s3test.Server
	staging string
	carpark string
	// bs is what the origin serves; origin is a trustless gateway over it.
	bs        blockstore.Blockstore
	origin    *ipfstest.Gateway
	originURL string
	// throttle is the proxy in front of the origin, when the options ask
	// for one: it counts what the origin served.
	throttle *ipfstest.Throttle
	token    string

	mu    sync.Mutex
	procs []*process
}

type clusterOptions struct {
	origin ipfstest.GatewayOptions
	// throttle, when not zero, puts the origin behind a proxy that sends at
	// most this many bytes a second, so that fetches take a while.
	throttle int
}

func newCluster(t testing.TB, o clusterOptions) *cluster {
	t.Helper()
	dir := t.TempDir()
	srv := s3test.Start(t)
	c := &cluster{
		t: t, dir: dir, logPath: filepath.Join(dir, "events.db"), views: pg.NewDatabase(t),
		s3: srv, staging: srv.CreateBucket(t, "staging"), carpark: srv.CreateBucket(t, "carpark"),
		bs: ipfstest.NewMemBlockstore(),
	}
	c.origin = ipfstest.NewGateway(t, c.bs, o.origin)
	c.originURL = c.origin.URL()
	if o.throttle > 0 {
		c.throttle = ipfstest.NewThrottle(t, c.originURL, o.throttle)
		c.originURL = c.throttle.URL()
	}
	c.token = c.createToken("alice")
	return c
}

// env is what every pickup process of the cluster is started with.
func (c *cluster) env() []string {
	return append(os.Environ(),
		"PICKUP_EVENTLOG="+c.logPath,
		"PICKUP_VIEWS="+c.views,
		"PICKUP_LOG_LEVEL=debug",
		"PICKUP_ADMIN_ADDR=127.0.0.1:0",
		"PICKUP_STAGING_BUCKET="+c.staging,
		"PICKUP_CARPARK_BUCKET="+c.carpark,
		"PICKUP_S3_ENDPOINT="+c.s3.Endpoint,
		"PICKUP_S3_REGION="+c.s3.Region,
		"AWS_ACCESS_KEY_ID="+c.s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+c.s3.SecretKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"PICKUP_SOURCES=gateway",
		"PICKUP_TRUSTLESS_GATEWAYS="+c.originURL,
		"PICKUP_DELEGATES=/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWR3DeCKahEqXtP8KvuG3XBeLZTU55yktXSmy8g4Phh6BV",
		"PICKUP_ALLOW_PRIVATE_ORIGINS=true",
		"PICKUP_HTTP_ADDR=127.0.0.1:0",
		"PICKUP_SERVE_ADDR=127.0.0.1:0",
		"PICKUP_SERVE_LIBP2P_LISTEN=/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1",
		// Short enough that tests see retries and lease expiry in seconds.
		"PICKUP_LEASE=2s",
		"PICKUP_RETRY_BASE_DELAY=300ms",
		"PICKUP_RETRY_MAX_DELAY=2s",
		"PICKUP_FETCH_CHUNK_TIMEOUT=3s",
		"PICKUP_METRICS_INTERVAL=1s",
	)
}

// pickup runs a pickup command to its end and returns its stdout.
func (c *cluster) pickup(args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command(pickupBin, args...)
	cmd.Env = c.env()
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("pickup %s: %v: %s", strings.Join(args, " "), err, errs.String())
	}
	return out.String(), nil
}

func (c *cluster) createToken(tenant string) string {
	c.t.Helper()
	out, err := c.pickup("tokens", "create", "--tenant", tenant)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "token:"); ok {
			return strings.TrimSpace(v)
		}
	}
	c.t.Fatalf("tokens create printed no token: %q", out)
	return ""
}

// process is a running pickup role.
type process struct {
	name  string
	cmd   *exec.Cmd
	logs  *os.File
	done  chan struct{}
	err   error
	addrs map[string]string
}

// start starts a role and waits until its servers listen and it is ready.
func (c *cluster) start(name string, args []string, extraEnv ...string) *process {
	c.t.Helper()
	logs, err := os.Create(filepath.Join(c.dir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano())))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(pickupBin, args...)
	cmd.Env = append(c.env(), extraEnv...)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &process{name: name, cmd: cmd, logs: logs, done: make(chan struct{}), addrs: map[string]string{}}
	listening := make(chan struct{}, 8)
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			logs.Write(append(line, '\n'))
			var l struct{ Msg, Server, Addr string }
			if json.Unmarshal(line, &l) == nil && l.Msg == "listening" {
				mu.Lock()
				p.addrs[l.Server] = l.Addr
				mu.Unlock()
				listening <- struct{}{}
			}
		}
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	c.t.Cleanup(func() { p.stop(c.t) })

	want := 1 // admin
	switch name {
	case "gateway", "serve":
		want = 2
	case "run":
		want = 3 // api, serve, admin
	}
	for range want {
		select {
		case <-listening:
		case <-p.done:
			c.t.Fatalf("%s exited at start: %v; logs in %s:\n%s", name, p.err, logs.Name(), tail(logs.Name()))
		case <-time.After(60 * time.Second):
			c.t.Fatalf("%s did not listen within 60s; logs:\n%s", name, tail(logs.Name()))
		}
	}
	mu.Lock()
	admin := p.addrs["admin"]
	mu.Unlock()
	var why string
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
			why = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			why = err.Error()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not ready within 60s (/readyz: %s); logs:\n%s", name, why, tail(logs.Name()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// api is the address of a gateway process's API.
func (p *process) api() string { return "http://" + p.addrs["api"] }

// kill kills the process with SIGKILL, as a crash would.
func (p *process) kill(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop stops the process with SIGTERM and returns its exit status.
func (p *process) stop(t testing.TB) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(45 * time.Second):
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		t.Errorf("%s did not stop within 45s of SIGTERM", p.name)
	}
	return p.err
}

func waitUntil(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// file adds a UnixFS file DAG to what the origin serves.
func (c *cluster) file(size int64, seed uint64) cid.Cid {
	c.t.Helper()
	root, err := ipfstest.File(context.Background(), c.bs, ipfstest.FileOptions{Size: size, Seed: seed, CIDv1: true})
	if err != nil {
		c.t.Fatal(err)
	}
	return root
}

// export is the CAR `ipfs dag export` writes for a DAG of the origin.
func (c *cluster) export(root cid.Cid) []byte {
	c.t.Helper()
	var buf bytes.Buffer
	if _, err := ipfstest.Export(context.Background(), c.bs, root, &buf); err != nil {
		c.t.Fatal(err)
	}
	return buf.Bytes()
}

// carparkKeys lists the CARs in the carpark bucket (not their indexes,
// <key>.idx, nor the roots' mappings, <rootCid>/<carCid>).
func (c *cluster) carparkKeys() []string {
	c.t.Helper()
	var cars []string
	for _, k := range c.keys(c.carpark) {
		if strings.HasSuffix(k, ".car") {
			cars = append(cars, k)
		}
	}
	return cars
}

// keys lists every key of a bucket, page after page.
func (c *cluster) keys(bucket string) []string {
	c.t.Helper()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(c.s3.Client, &s3.ListObjectsV2Input{Bucket: &bucket})
	for pages.HasMorePages() {
		out, err := pages.NextPage(context.Background())
		if err != nil {
			c.t.Fatal(err)
		}
		for _, o := range out.Contents {
			keys = append(keys, *o.Key)
		}
	}
	return keys
}

// openUploads counts multipart uploads still open in both buckets.
func (c *cluster) openUploads() int {
	c.t.Helper()
	n := 0
	for _, b := range []string{c.staging, c.carpark} {
		out, err := c.s3.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &b})
		if err != nil {
			c.t.Fatal(err)
		}
		n += len(out.Uploads)
	}
	return n
}

// object returns an object's bytes.
func (c *cluster) object(bucket, key string) []byte {
	c.t.Helper()
	out, err := c.s3.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}
