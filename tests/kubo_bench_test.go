package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/s3test"
)

// BenchmarkAgainstKubo measures pickup end to end beside the path it
// replaces, in one run on one machine: a random file of 256 MiB (1 GiB with
// PICKUP_BENCH_LONG) added to a real kubo (.tools/bin/ipfs, built by `make
// bench`), offline, and versitygw on loopback. Rounds alternate
//
//   - original: web3-storage/pickup's path, `ipfs dag export CID` piped into
//     a multipart upload (the SDK's transfer manager, its defaults);
//   - pickup: `pickup run` with the S3 store on versitygw and kubo's
//     trustless gateway as its only source, POST /pins until the pin's
//     CarValidated, split into the claim wait, the fetch and the validation
//     by the pin's events (FetchStarted, CarUploaded, CarValidated);
//   - upload: the same CAR uploaded from a file the same way, with no fetch
//     at all, for scale;
//   - gateway: the CAR read from kubo's trustless gateway and dropped, the
//     origin's own pace, for scale;
//
// for PICKUP_BENCH_ROUNDS rounds (5); the figures are the medians. Each
// round deletes the CARs it stored and syncs the disk, so that no round
// finds another's CAR or its write-back.
//
// Beside the seconds, each run reports the processor time of every process
// in it (kubo's daemon and its `ipfs dag export` client, pickup, the S3
// server, this process's uploads) and how busy that kept the machine's
// cores: on two cores shared by all of them, processor time sets the pace.
//
//	make bench   # or: make tools kubo && go test -run '^$' -bench AgainstKubo -benchtime 1x ./tests
func BenchmarkAgainstKubo(b *testing.B) {
	ipfs := kuboBinary(b)
	size := int64(256 << 20)
	if os.Getenv("PICKUP_BENCH_LONG") != "" {
		size = 1 << 30
	}
	k := startKubo(b, ipfs, size)
	srv := s3test.Start(b)
	original := srv.CreateBucket(b, "original")
	p := startPickupRun(b, srv, k.gateway)
	car := filepath.Join(b.TempDir(), "dag.car")
	k.export(b, car)
	tm := transfermanager.New(srv.NewClient())

	for b.Loop() {
		var origs, picks, ups, gws []map[string]float64
		runs := map[string]func(int) map[string]float64{
			"original": func(i int) map[string]float64 {
				c := cpus(k, p, srv)
				start := time.Now()
				export := k.exportUpload(b, tm, original, fmt.Sprintf("original/%d.car", i))
				m := map[string]float64{"seconds": time.Since(start).Seconds()}
				c.report(m, export)
				deleteObjects(b, srv.Client, original)
				return m
			},
			"pickup": func(int) map[string]float64 {
				c := cpus(k, p, srv)
				m := p.pin(b, k.root)
				c.report(m, 0)
				deleteObjects(b, srv.Client, p.carpark)
				return m
			},
			"gateway": func(int) map[string]float64 {
				start := time.Now()
				k.readGateway(b)
				return map[string]float64{"seconds": time.Since(start).Seconds()}
			},
			"upload": func(i int) map[string]float64 {
				c := cpus(k, p, srv)
				start := time.Now()
				uploadFile(b, tm, original, fmt.Sprintf("upload/%d.car", i), car)
				m := map[string]float64{"seconds": time.Since(start).Seconds()}
				c.report(m, 0)
				deleteObjects(b, srv.Client, original)
				return m
			},
		}
		orders := [][]string{{"original", "pickup", "upload", "gateway"}, {"pickup", "gateway", "original", "upload"}, {"upload", "original", "gateway", "pickup"}}
		for round := range ipfstest.BenchRounds() {
			for _, name := range orders[round%len(orders)] {
				m := runs[name](round)
				syscall.Sync()
				switch name {
				case "original":
					origs = append(origs, m)
				case "pickup":
					picks = append(picks, m)
				case "upload":
					ups = append(ups, m)
				case "gateway":
					gws = append(gws, m)
				}
			}
			b.Logf("round %d: original %.2f s, pickup %.2f s (claim %.2f, fetch %.2f, validate %.2f), upload alone %.2f s, gateway alone %.2f s",
				round, origs[round]["seconds"], picks[round]["seconds"], picks[round]["claim-s"], picks[round]["fetch-s"],
				picks[round]["validate-s"], ups[round]["seconds"], gws[round]["seconds"])
		}
		orig, pick, up, gw := ipfstest.Medians(origs), ipfstest.Medians(picks), ipfstest.Medians(ups), ipfstest.Medians(gws)
		b.ReportMetric(orig["seconds"], "original-s")
		b.ReportMetric(pick["seconds"], "pickup-s")
		b.ReportMetric(orig["seconds"]/pick["seconds"], "speedup")
		b.ReportMetric(pick["claim-s"], "claim-s")
		b.ReportMetric(pick["fetch-s"], "fetch-s")
		b.ReportMetric(pick["validate-s"], "validate-s")
		b.ReportMetric(100*pick["validate-s"]/pick["fetch-s"], "validate-%-of-fetch")
		b.ReportMetric(up["seconds"], "upload-only-s")
		b.ReportMetric(gw["seconds"], "gateway-only-s")
		for _, run := range []struct {
			name string
			m    map[string]float64
		}{{"original", orig}, {"pickup", pick}, {"upload", up}} {
			for _, f := range []string{"kubo-CPU-s", "pickup-CPU-s", "server-CPU-s", "client-CPU-s", "cores-busy-%"} {
				if v, ok := run.m[f]; ok && (v > 0 || f == "cores-busy-%") {
					b.ReportMetric(v, run.name+"-"+f)
				}
			}
		}
		b.ReportMetric(float64(k.carBytes)/1e6/orig["seconds"], "original-MB/s")
		b.ReportMetric(float64(k.carBytes)/1e6/pick["seconds"], "pickup-MB/s")
		b.ReportMetric(0, "ns/op")
	}
}

// cpuSnapshot is the processor time of every process of a run, at its
// start.
type cpuSnapshot struct {
	k                  *kubo
	p                  *pickupRun
	srv                *s3test.Server
	kubo, pickup, self time.Duration
	server             time.Duration
}

func cpus(k *kubo, p *pickupRun, srv *s3test.Server) cpuSnapshot {
	return cpuSnapshot{
		k: k, p: p, srv: srv,
		kubo: s3test.ProcessCPU(k.pid), pickup: s3test.ProcessCPU(p.pid), server: srv.CPUTime(), self: ipfstest.CPUTime(),
	}
}

// report adds each process's processor time since the snapshot to m (with
// extra, a child's, to kubo's), and how busy they kept the cores.
func (c cpuSnapshot) report(m map[string]float64, extraKubo time.Duration) {
	kubo := s3test.ProcessCPU(c.k.pid) - c.kubo + extraKubo
	pickup := s3test.ProcessCPU(c.p.pid) - c.pickup
	server := c.srv.CPUTime() - c.server
	self := ipfstest.CPUTime() - c.self
	m["kubo-CPU-s"], m["pickup-CPU-s"] = kubo.Seconds(), pickup.Seconds()
	m["server-CPU-s"], m["client-CPU-s"] = server.Seconds(), self.Seconds()
	m["cores-busy-%"] = 100 * (kubo + pickup + server + self).Seconds() / (m["seconds"] * float64(runtime.NumCPU()))
}

// kuboBinary is .tools/bin/ipfs at the module's root; the benchmark is
// skipped without it.
func kuboBinary(b *testing.B) string {
	dir, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			b.Skip("no go.mod above the working directory, so no .tools/bin/ipfs")
		}
		dir = parent
	}
	bin := filepath.Join(dir, ".tools", "bin", "ipfs")
	if _, err := os.Stat(bin); err != nil {
		b.Skipf("kubo is not built at %s: run `make kubo` (or `make bench`, which builds it once, in 4-11 minutes)", bin)
	}
	return bin
}

// kubo is an offline kubo daemon holding one DAG.
type kubo struct {
	pid       int // the daemon's
	bin, repo string
	root      string
	gateway   string // trustless gateway base URL
	carBytes  int64
}

// startKubo makes a repository (no routing, API and gateway on loopback),
// adds a random file of size bytes to it, and runs the daemon offline until
// the benchmark ends.
func startKubo(b *testing.B, bin string, size int64) *kubo {
	k := &kubo{bin: bin, repo: filepath.Join(b.TempDir(), "ipfs")}
	k.run(b, "init", "--profile=test", "--empty-repo")
	api, gw := freePort(b), freePort(b)
	k.run(b, "config", "Routing.Type", "none")
	k.run(b, "config", "Addresses.API", "/ip4/127.0.0.1/tcp/"+api)
	k.run(b, "config", "Addresses.Gateway", "/ip4/127.0.0.1/tcp/"+gw)
	k.gateway = "http://127.0.0.1:" + gw

	file := filepath.Join(b.TempDir(), "random.bin")
	writeRandom(b, file, size)
	k.root = strings.TrimSpace(k.run(b, "add", "-Q", "--cid-version=1", file))
	os.Remove(file)

	k.pid = startKuboDaemon(b, bin, k.env(), "--offline")
	return k
}

func (k *kubo) env() []string { return append(os.Environ(), "IPFS_PATH="+k.repo) }

// run runs an ipfs command to its end and returns its output.
func (k *kubo) run(b *testing.B, args ...string) string {
	b.Helper()
	cmd := exec.Command(k.bin, args...)
	cmd.Env = k.env()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		b.Fatalf("ipfs %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// export writes the DAG's CAR, as `ipfs dag export` writes it, to path.
func (k *kubo) export(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(k.bin, "dag", "export", k.root)
	var stderr strings.Builder
	cmd.Env, cmd.Stdout, cmd.Stderr = k.env(), f, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("ipfs dag export: %v\n%s", err, stderr.String())
	}
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	k.carBytes = st.Size()
}

// readGateway reads the DAG's CAR from kubo's trustless gateway, as
// pickup asks for it, and drops it.
func (k *kubo) readGateway(b *testing.B) {
	req, _ := http.NewRequest(http.MethodGet, k.gateway+"/ipfs/"+k.root, nil)
	req.Header.Set("Accept", "application/vnd.ipld.car;version=1;order=dfs;dups=n")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || n != k.carBytes {
		b.Fatalf("gateway CAR: %d, %d bytes of %d, %v", resp.StatusCode, n, k.carBytes, err)
	}
}

// exportUpload is web3-storage/pickup's path: `ipfs dag export` piped into
// a multipart upload. It returns the processor time of the export's client
// process.
func (k *kubo) exportUpload(b *testing.B, tm *transfermanager.Client, bucket, key string) time.Duration {
	cmd := exec.Command(k.bin, "dag", "export", k.root)
	cmd.Env = k.env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// A plain reader: the pipe is an *os.File, which the transfer manager
	// would try to seek.
	_, uerr := tm.UploadObject(context.Background(), &transfermanager.UploadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: struct{ io.Reader }{out},
	})
	if uerr != nil {
		cmd.Process.Kill() // blocked writing to a pipe no one reads
	}
	if err := cmd.Wait(); err != nil || uerr != nil {
		b.Fatalf("dag export | upload: export %v, upload %v\n%s", err, uerr, stderr.String())
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

func uploadFile(b *testing.B, tm *transfermanager.Client, bucket, key, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// Hidden behind a plain reader, as a stream from a fetch would be.
	if _, err := tm.UploadObject(context.Background(), &transfermanager.UploadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: struct{ io.Reader }{f},
	}); err != nil {
		b.Fatal(err)
	}
}

// writeRandom writes size random bytes to path.
func writeRandom(b *testing.B, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{'k', 'u', 'b', 'o'})
	if _, err := io.CopyN(f, r, size); err != nil {
		b.Fatal(err)
	}
}

func freePort(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// deleteObjects deletes every object in bucket.
func deleteObjects(b *testing.B, client *s3.Client, bucket string) {
	b.Helper()
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range page.Contents {
			if _, err := client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// pickupRun is `pickup run` on embedded defaults, its CARs in versitygw,
// kubo's gateway its only source.
type pickupRun struct {
	pid              int
	env              []string
	api, token       string
	staging, carpark string
}

func startPickupRun(b *testing.B, srv *s3test.Server, gateway string) *pickupRun {
	dir := b.TempDir()
	p := &pickupRun{staging: srv.CreateBucket(b, "staging"), carpark: srv.CreateBucket(b, "carpark")}
	p.env = append(os.Environ(),
		"PICKUP_EVENTLOG="+filepath.Join(dir, "events.db"),
		"PICKUP_VIEWS="+filepath.Join(dir, "views.db"),
		"PICKUP_TOKEN_FILE="+filepath.Join(dir, "token"),
		"PICKUP_LOG_LEVEL=info",
		"PICKUP_ADMIN_ADDR=127.0.0.1:0",
		"PICKUP_HTTP_ADDR=127.0.0.1:0",
		"PICKUP_SERVE_ADDR=127.0.0.1:0",
		"PICKUP_SERVE_LIBP2P_LISTEN=/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1",
		"PICKUP_LIBP2P_LISTEN=/ip4/127.0.0.1/tcp/0",
		"PICKUP_STAGING_BUCKET="+p.staging,
		"PICKUP_CARPARK_BUCKET="+p.carpark,
		"PICKUP_S3_ENDPOINT="+srv.Endpoint,
		"PICKUP_S3_REGION="+srv.Region,
		"AWS_ACCESS_KEY_ID="+srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+srv.SecretKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"PICKUP_SOURCES=gateway",
		"PICKUP_TRUSTLESS_GATEWAYS="+gateway,
		"PICKUP_DELEGATES=/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWR3DeCKahEqXtP8KvuG3XBeLZTU55yktXSmy8g4Phh6BV",
	)
	cmd := exec.Command(pickupBin, "run")
	cmd.Env = p.env
	logs, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		b.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p.pid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		logs.Close()
	})
	addrs := make(chan [2]string, 4)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var l struct{ Msg, Server, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				addrs <- [2]string{l.Server, l.Addr}
			}
		}
	}()
	var admin string
	for range 2 {
		select {
		case a := <-addrs:
			switch a[0] {
			case "api":
				p.api = "http://" + a[1]
			case "admin":
				admin = "http://" + a[1]
			}
		case <-exited:
			b.Fatalf("pickup run exited; logs:\n%s", tail(logs.Name()))
		case <-time.After(60 * time.Second):
			b.Fatalf("pickup run did not listen within 60s; logs:\n%s", tail(logs.Name()))
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("pickup run not ready within 60s; logs:\n%s", tail(logs.Name()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	token, err := os.ReadFile(filepath.Join(dir, "token"))
	if err != nil {
		b.Fatal(err)
	}
	p.token = strings.TrimSpace(string(token))
	return p
}

// pin asks for root, waits until it is pinned, and returns the seconds
// from the POST to CarValidated, and its split by the pin's events.
func (p *pickupRun) pin(b *testing.B, root string) map[string]float64 {
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, p.api+"/pins", strings.NewReader(`{"cid":"`+root+`"}`))
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var st struct {
		RequestID string            `json:"requestid"`
		Status    string            `json:"status"`
		Info      map[string]string `json:"info"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		b.Fatalf("POST /pins: %d, %v", resp.StatusCode, err)
	}
	id := st.RequestID
	deadline := time.Now().Add(10 * time.Minute)
	for st.Status != "pinned" {
		if st.Status == "failed" || time.Now().After(deadline) {
			b.Fatalf("pin %s: %s, %v", id, st.Status, st.Info)
		}
		time.Sleep(10 * time.Millisecond)
		req, _ := http.NewRequest(http.MethodGet, p.api+"/pins/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+p.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	seen := time.Since(start)

	cmd := exec.Command(pickupBin, "events", "cat", "pin-"+id)
	cmd.Env = p.env
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("pickup events cat: %v", err)
	}
	at := map[string]time.Time{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		var ev struct {
			Type string    `json:"type"`
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			b.Fatalf("event %q: %v", line, err)
		}
		if _, ok := at[ev.Type]; !ok || ev.Type == "CarValidated" {
			at[ev.Type] = ev.Time
		}
	}
	for _, t := range []string{"PinRequested", "FetchStarted", "CarUploaded", "CarValidated"} {
		if at[t].IsZero() {
			b.Fatalf("pin %s has no %s event:\n%s", id, t, out)
		}
	}
	// Leave nothing for the next round to complete from: the pin goes, and
	// the caller deletes its CAR.
	req, _ = http.NewRequest(http.MethodDelete, p.api+"/pins/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	return map[string]float64{
		"seconds":    at["CarValidated"].Sub(start).Seconds(),
		"seen-s":     seen.Seconds(),
		"claim-s":    at["FetchStarted"].Sub(at["PinRequested"]).Seconds(),
		"fetch-s":    at["CarUploaded"].Sub(at["FetchStarted"]).Seconds(),
		"validate-s": at["CarValidated"].Sub(at["CarUploaded"]).Seconds(),
	}
}
