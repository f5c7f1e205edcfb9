package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/api/client"
	"github.com/pickup-ipfs/pickup/fetcher"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/internal/caruploadtest"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/s3test"
)

// uploadStack is `pickup run` in this process with its CARs in dir/cars;
// its only network source is a trustless gateway nobody listens at, so
// whatever is pinned came from the uploads.
type uploadStack struct {
	pinStack
	cars string
	c    *client.Client
}

func startUploadStack(t *testing.T, extra map[string]string) uploadStack {
	t.Helper()
	cars := filepath.Join(t.TempDir(), "cars")
	vars := map[string]string{"PICKUP_CAR_DIR": cars}
	for k, v := range extra {
		vars[k] = v
	}
	s := startPinStack(t, "http://127.0.0.1:9", vars)
	token, err := os.ReadFile(s.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{BaseURL: s.api, Token: strings.TrimSpace(string(token)), Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return uploadStack{pinStack: s, cars: vars["PICKUP_CAR_DIR"], c: c}
}

// final waits for the pin to be pinned or failed.
func (s uploadStack) final(t *testing.T, ps api.PinStatus) api.PinStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := s.c.Wait(ctx, ps, nil)
	if err != nil {
		t.Fatalf("waiting for %s: %v", ps.RequestID, err)
	}
	return out
}

// entries lists a directory of the CAR store.
func (s uploadStack) entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(s.cars, dir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// carOf reads the carpark's CAR of a pinned pin.
func (s uploadStack) carOf(t *testing.T, ps api.PinStatus) []byte {
	t.Helper()
	c := ps.Info[api.InfoCarCID]
	b, err := os.ReadFile(filepath.Join(s.cars, "carpark", c, c+".car"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A CAR uploaded in canonical order and one in another order both end
// pinned, the carpark's CAR byte for byte `ipfs dag export`'s, and their
// uploads are gone.
func TestCARUploadPins(t *testing.T) {
	s := startUploadStack(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		seed uint64
		body func(caruploadtest.DAG) []byte
	}{
		{"canonical", 1, func(d caruploadtest.DAG) []byte { return d.Canonical }},
		{"reversed", 2, func(d caruploadtest.DAG) []byte { return d.Reversed(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := caruploadtest.NewDAG(t, 2<<20, tc.seed)
			ps, err := s.c.AddCAR(ctx, api.Pin{CID: d.Root.String(), Name: tc.name, Meta: map[string]string{"k": "v"}}, bytes.NewReader(tc.body(d)), "")
			if err != nil {
				t.Fatal(err)
			}
			if ps.Status != api.StatusQueued || ps.Pin.Name != tc.name || ps.Pin.Meta["k"] != "v" {
				t.Fatalf("answered %+v", ps)
			}
			out := s.final(t, ps)
			if out.Status != api.StatusPinned {
				t.Fatalf("ended %s: %v", out.Status, out.Info)
			}
			if got := s.carOf(t, out); !bytes.Equal(got, d.Canonical) {
				t.Fatalf("the carpark's CAR (%d bytes) is not the canonical one (%d bytes)", len(got), len(d.Canonical))
			}
			if left := s.entries(t, "received"); len(left) != 0 {
				t.Fatalf("uploads left after pinned: %v", left)
			}
		})
	}
}

// Bad uploads get a clear error, at once or as the pin's failure, and
// leave nothing: no upload, no carpark object, nothing staged.
func TestCARUploadRefusals(t *testing.T) {
	s := startUploadStack(t, map[string]string{"PICKUP_MAX_CAR_BYTES": "1MiB"})
	ctx := context.Background()
	d := caruploadtest.NewDAG(t, 512<<10, 3)
	other := caruploadtest.NewDAG(t, 64<<10, 4)
	big := caruploadtest.NewDAG(t, 1200<<10, 5)
	for _, tc := range []struct {
		name   string
		root   string
		body   []byte
		status int
		says   string
	}{
		{"truncated", d.Root.String(), d.Canonical[:len(d.Canonical)-1000], http.StatusBadRequest, "truncated"},
		{"wrong root", other.Root.String(), d.Canonical, http.StatusBadRequest, "not the requested " + other.Root.String()},
		{"over the limit", big.Root.String(), big.Canonical, http.StatusRequestEntityTooLarge, "MAX_CAR_BYTES"},
		{"not a CAR", d.Root.String(), []byte(`{"cid":"x"}`), http.StatusBadRequest, "CAR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.c.AddCAR(ctx, api.Pin{CID: tc.root}, bytes.NewReader(tc.body), "")
			var ae *client.Error
			if !errors.As(err, &ae) || ae.Status != tc.status || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err %v, want %d saying %q", err, tc.status, tc.says)
			}
		})
	}
	// The CLI says why, and exits 1.
	truncated := filepath.Join(t.TempDir(), "truncated.car")
	if err := os.WriteFile(truncated, d.Canonical[:len(d.Canonical)-1000], 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := s.pinCLI(t, nil, "add", d.Root.String(), "--car", truncated); code != 1 || !strings.Contains(errs, "truncated") {
		t.Fatalf("pin add --car of a truncated CAR: exit %d, %q %q; want 1 saying truncated", code, out, errs)
	}
	if code, _, errs := s.pinCLI(t, nil, "add", d.Root.String(), "--car", filepath.Join(t.TempDir(), "none.car")); code != 2 || !strings.Contains(errs, "none.car") {
		t.Fatalf("pin add --car of no file: exit %d, %q; want a usage error naming it", code, errs)
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		reason string
	}{
		{"corrupted block", d.Corrupted(t, 2), "block_mismatch"},
		{"missing block", d.Without(t, 4), "missing_block"},
		{"missing root", d.Without(t, 0), "root_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := s.c.AddCAR(ctx, api.Pin{CID: d.Root.String()}, bytes.NewReader(tc.body), "")
			if err != nil {
				t.Fatal(err)
			}
			out := s.final(t, ps)
			if out.Status != api.StatusFailed || out.Info[api.InfoFailureReason] != tc.reason || !strings.Contains(out.Info[api.InfoFailureMessage], "upload") {
				t.Fatalf("ended %s: %v; want failed with %s", out.Status, out.Info, tc.reason)
			}
			if out.Info[api.InfoFailures] != "1" {
				t.Fatalf("a bad upload was tried %s times, want once", out.Info[api.InfoFailures])
			}
		})
	}
	// The dead letter is recorded before the attempt's cleanup runs.
	deadline := time.Now().Add(10 * time.Second)
	for len(s.entries(t, "received")) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, dir := range []string{"received", "carpark", "staging/" + "", "uploads"} {
		if left := s.entries(t, dir); len(left) != 0 {
			t.Errorf("%s holds %v after bad uploads", dir, left)
		}
	}
}

// A keyed upload retried gets the same pin, answered from the log without
// its body being read; an upload of a root already pinned completes at
// once, its body unread.
func TestCARUploadIdempotentAndReused(t *testing.T) {
	s := startUploadStack(t, nil)
	ctx := context.Background()
	d := caruploadtest.NewDAG(t, 1<<20, 6)
	first, err := s.c.AddCAR(ctx, api.Pin{CID: d.Root.String(), Name: "a"}, bytes.NewReader(d.Canonical), "key-1")
	if err != nil {
		t.Fatal(err)
	}
	// Not a CAR at all: were it read, it would be refused.
	again, err := s.c.AddCAR(ctx, api.Pin{CID: d.Root.String(), Name: "a"}, strings.NewReader("not a CAR"), "key-1")
	if err != nil {
		t.Fatal(err)
	}
	if again.RequestID != first.RequestID {
		t.Fatalf("retry made request %s, want %s", again.RequestID, first.RequestID)
	}
	if _, err := s.c.AddCAR(ctx, api.Pin{CID: d.Root.String(), Name: "b"}, strings.NewReader("not a CAR"), "key-1"); !errors.Is(err, client.ErrKeyReused) {
		t.Fatalf("key reused for another pin: %v", err)
	}
	if out := s.final(t, first); out.Status != api.StatusPinned {
		t.Fatalf("ended %s: %v", out.Status, out.Info)
	}
	// Keyed twins sent at once: one request, each body kept apart until
	// one is recorded, the other deleted.
	twin := caruploadtest.NewDAG(t, 1<<20, 10)
	ids := make(chan string, 2)
	var wg sync.WaitGroup
	for _, body := range [][]byte{twin.Canonical, twin.Reversed(t)} {
		wg.Go(func() {
			ps, err := s.c.AddCAR(ctx, api.Pin{CID: twin.Root.String()}, bytes.NewReader(body), "key-2")
			if err != nil {
				t.Error(err)
			}
			ids <- ps.RequestID
		})
	}
	wg.Wait()
	if a, b := <-ids, <-ids; a != b || a == "" {
		t.Fatalf("keyed twins made requests %q and %q", a, b)
	}
	if out := s.final(t, api.PinStatus{RequestID: gateway.KeyedRequestID(defaultTenant, "key-2").String()}); out.Status != api.StatusPinned || !bytes.Equal(s.carOf(t, out), twin.Canonical) {
		t.Fatalf("keyed twins ended %s: %v", out.Status, out.Info)
	}
	reused, err := s.c.AddCAR(ctx, api.Pin{CID: d.Root.String(), Name: "c"}, strings.NewReader("not a CAR"), "")
	if err != nil {
		t.Fatal(err)
	}
	out := s.final(t, reused)
	if out.Status != api.StatusPinned || !bytes.Equal(s.carOf(t, out), d.Canonical) {
		t.Fatalf("an upload of a pinned root ended %s: %v", out.Status, out.Info)
	}
	if left := s.entries(t, "received"); len(left) != 0 {
		t.Fatalf("uploads left: %v", left)
	}
}

// A sender whose bytes stop coming is refused (408) once the upload's idle
// timeout passes, and nothing of its upload is kept.
func TestCARUploadSlowSender(t *testing.T) {
	s := startUploadStack(t, map[string]string{"PICKUP_UPLOAD_IDLE_TIMEOUT": "300ms"})
	d := caruploadtest.NewDAG(t, 512<<10, 7)
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		// Some of the CAR, then nothing until the answer has come.
		pw.Write(d.Canonical[:100<<10])
	}()
	token, _ := os.ReadFile(s.tokenFile)
	req, err := http.NewRequest(http.MethodPost, s.api+"/pins?cid="+d.Root.String(), pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.ipld.car")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "sent nothing for 300ms") {
		t.Fatalf("answered %d %s, want 408 naming the idle timeout", resp.StatusCode, body)
	}
	if left := s.entries(t, "received"); len(left) != 0 {
		t.Fatalf("uploads left: %v", left)
	}
}

// What kubo's `ipfs dag export` writes, sent with `pickup pin add --car`
// (a CIDv0 root, dag-pb leaves: `ipfs add`'s defaults), ends pinned with
// the carpark's CAR byte for byte kubo's.
func TestCARUploadFromKubo(t *testing.T) {
	ipfs, err := filepath.Abs("../../.tools/bin/ipfs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ipfs); err != nil {
		t.Skipf("kubo is not built here (%v): make tools builds it", err)
	}
	dir := t.TempDir()
	kubo := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(ipfs, args...)
		cmd.Env = append(os.Environ(), "IPFS_PATH="+filepath.Join(dir, "repo"))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ipfs %v: %v", args, err)
		}
		return out
	}
	kubo("init", "--profile=test", "--empty-repo")
	add := func(seed uint64) string {
		file := filepath.Join(dir, fmt.Sprint("file", seed))
		data := make([]byte, 3<<20)
		if _, err := io.ReadFull(ipfstest.Random(seed), data); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(kubo("add", "-Q", "--offline", file)))
	}
	root := add(8)
	car := kubo("dag", "export", "--offline", root)
	carFile := filepath.Join(dir, "dag.car")
	if err := os.WriteFile(carFile, car, 0o644); err != nil {
		t.Fatal(err)
	}

	s := startUploadStack(t, nil)
	code, out, errs := s.pinCLI(t, nil, "add", root, "--car", carFile, "--wait")
	if code != 0 {
		t.Fatalf("pin add --car exited %d: %s %s", code, out, errs)
	}
	ps, err := s.c.Get(context.Background(), field(out, "request"))
	if err != nil {
		t.Fatalf("%v (output %q)", err, out)
	}
	if ps.Status != api.StatusPinned || !bytes.Equal(s.carOf(t, ps), car) {
		t.Fatalf("ended %s, or its CAR is not kubo's export", ps.Status)
	}

	// The README's pipelines: curl --data-binary @- (which reads the
	// whole CAR before it sends it) and curl -T - (which streams it).
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skipf("no curl here: %v", err)
	}
	token, _ := os.ReadFile(s.tokenFile)
	for i, send := range []string{"--data-binary @-", "-X POST -T -"} {
		root := add(uint64(20 + i))
		script := fmt.Sprintf(`%q dag export --offline %s | %q -sS %s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/vnd.ipld.car' "$API/pins?cid=%s&name=curl"`,
			ipfs, root, curl, send, root)
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "IPFS_PATH="+filepath.Join(dir, "repo"), "TOKEN="+strings.TrimSpace(string(token)), "API="+s.api)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", send, err)
		}
		var ps api.PinStatus
		if err := json.Unmarshal(out, &ps); err != nil || ps.Status != api.StatusQueued || ps.Pin.Name != "curl" {
			t.Fatalf("%s answered %s (%v)", send, out, err)
		}
		if ps = s.final(t, ps); ps.Status != api.StatusPinned || !bytes.Equal(s.carOf(t, ps), kubo("dag", "export", "--offline", root)) {
			t.Fatalf("%s: ended %s, or its CAR is not kubo's export", send, ps.Status)
		}
	}
}

// A fetcher pool that starts sweeps the uploads area: an upload whose pin
// the log does not hold, and what a gateway killed mid-body left, go once
// older than fetcher.StrayUploadAge; younger ones (a body being received,
// its request not recorded yet) stay.
func TestCARUploadSweep(t *testing.T) {
	cars := filepath.Join(t.TempDir(), "cars")
	received := filepath.Join(cars, "received")
	if err := os.MkdirAll(received, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-fetcher.StrayUploadAge - time.Hour)
	plant := func(name string, modified time.Time) {
		path := filepath.Join(received, name)
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, modified, modified); err != nil {
			t.Fatal(err)
		}
	}
	strayID, freshID := uuid.NewString(), uuid.NewString()
	stray, fresh := strayID+".0badcafe", freshID+".0badcafe"
	plant(stray+".car", old)
	plant(stray+".idx", old)
	plant("."+stray+".car-123", old)
	plant(fresh+".car", time.Now())
	plant(fresh+".idx", time.Now())
	plant("."+fresh+".car-456", time.Now())

	s := startUploadStack(t, map[string]string{"PICKUP_CAR_DIR": cars})
	want := []string{"." + fresh + ".car-456", fresh + ".car", fresh + ".idx"}
	var left []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if left = s.entries(t, "received"); slices.Equal(left, want) {
			return
		}
	}
	t.Fatalf("the uploads area holds %v after the sweep, want %v", left, want)
}

// With an S3 carpark (versitygw) and an uploads directory the gateway and
// the fetcher share (PICKUP_UPLOADS_DIR), an upload in another order ends
// pinned with the carpark object byte for byte the canonical CAR; a bad
// one leaves no object, nothing staged, and no upload. Without
// PICKUP_UPLOADS_DIR an S3 carpark takes no uploads (413).
func TestCARUploadToS3(t *testing.T) {
	srv := s3test.Start(t)
	staging, carpark := srv.CreateBucket(t, "staging"), srv.CreateBucket(t, "carpark")
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey, "AWS_SESSION_TOKEN": "", "AWS_PROFILE": ""} {
		t.Setenv(k, v)
	}
	s3vars := map[string]string{"PICKUP_STAGING_BUCKET": staging, "PICKUP_CARPARK_BUCKET": carpark, "PICKUP_S3_ENDPOINT": srv.Endpoint, "PICKUP_S3_REGION": srv.Region}
	ctx := context.Background()
	d := caruploadtest.NewDAG(t, 2<<20, 9)

	t.Run("no uploads area", func(t *testing.T) {
		s := startUploadStack(t, s3vars)
		_, err := s.c.AddCAR(ctx, api.Pin{CID: d.Root.String()}, bytes.NewReader(d.Canonical), "")
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("err %v, want 413", err)
		}
	})

	uploads := filepath.Join(t.TempDir(), "uploads")
	vars := map[string]string{"PICKUP_UPLOADS_DIR": uploads}
	for k, v := range s3vars {
		vars[k] = v
	}
	s := startUploadStack(t, vars)
	objects := func(bucket string) []string {
		t.Helper()
		out, err := srv.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		return keys
	}
	bad, err := s.c.AddCAR(ctx, api.Pin{CID: d.Root.String()}, bytes.NewReader(d.Corrupted(t, 1)), "")
	if err != nil {
		t.Fatal(err)
	}
	if out := s.final(t, bad); out.Status != api.StatusFailed || out.Info[api.InfoFailureReason] != "block_mismatch" {
		t.Fatalf("a corrupted upload ended %s: %v", out.Status, out.Info)
	}
	if keys := objects(carpark); len(keys) != 0 {
		t.Fatalf("a failed upload left %v in the carpark", keys)
	}
	ps, err := s.c.AddCAR(ctx, api.Pin{CID: d.Root.String()}, bytes.NewReader(d.Reversed(t)), "")
	if err != nil {
		t.Fatal(err)
	}
	if out := s.final(t, ps); out.Status != api.StatusPinned {
		t.Fatalf("ended %s: %v", out.Status, out.Info)
	}
	obj, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(carpark), Key: aws.String(carstore.RootKey(d.Root))})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil || !bytes.Equal(got, d.Canonical) {
		t.Fatalf("the carpark object (%d bytes, %v) is not the canonical CAR (%d bytes)", len(got), err, len(d.Canonical))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		es, _ := os.ReadDir(uploads)
		staged := objects(staging)
		if len(es) == 0 && len(staged) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uploads left: %v; staged: %v", es, staged)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A 256 MiB CAR sent to `pickup run` over HTTP is pinned, the carpark's
// CAR byte for byte the file sent, with the process's heap in use never
// more than a few part buffers above where it started: the body streams
// to the uploads area, the fetch reads it back block by block.
func TestCARUploadMemoryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 256 MiB DAG")
	}
	fx := ipfstest.NewFixture(t, 256<<20)
	s := startUploadStack(t, nil)
	f, err := os.Open(fx.CAR)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	ps, err := s.c.AddCAR(context.Background(), api.Pin{CID: fx.Root.String()}, struct{ io.Reader }{f}, "")
	if err != nil {
		t.Fatal(err)
	}
	out := s.final(t, ps)
	close(stop)
	<-sampled
	if out.Status != api.StatusPinned {
		t.Fatalf("ended %s: %v", out.Status, out.Info)
	}
	if got, want := caruploadtest.FileSHA256(t, filepath.Join(s.cars, "carpark", out.Info[api.InfoCarCID], out.Info[api.InfoCarCID]+".car")), caruploadtest.FileSHA256(t, fx.CAR); !bytes.Equal(got, want) {
		t.Fatal("the carpark's CAR is not the CAR sent")
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("a %d MiB CAR uploaded and pinned: heap in use %.1f MiB at the start, at most %.1f MiB (+%.1f MiB)",
		fx.Size>>20, float64(base.HeapInuse)/(1<<20), float64(peak.Load())/(1<<20), float64(grew)/(1<<20))
	if grew > 64<<20 {
		t.Errorf("the heap grew by %d MiB for a %d MiB upload", grew>>20, fx.Size>>20)
	}
}

// Where CAR uploads go: pickup run's fetcher default, beside a directory
// carpark; none with an S3 carpark or for a gateway on its own (its
// fetchers may be on other machines), unless --uploads-dir says.
func TestUploadsDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fetcher bool
		vars    map[string]string
		want    string
	}{
		{"run", true, map[string]string{"PICKUP_CAR_DIR": "/cars"}, "/cars/received"},
		{"run, S3 carpark", true, map[string]string{"PICKUP_CAR_DIR": "/cars", "PICKUP_CARPARK_BUCKET": "b"}, ""},
		{"run, S3 carpark, uploads dir", true, map[string]string{"PICKUP_CARPARK_BUCKET": "b", "PICKUP_UPLOADS_DIR": "/up"}, "/up"},
		{"gateway", false, map[string]string{"PICKUP_CAR_DIR": "/cars"}, ""},
		{"gateway, uploads dir", false, map[string]string{"PICKUP_UPLOADS_DIR": "/up"}, "/up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _, _ := testEnv(tc.vars)
			f := newFlags(e, "test")
			g := addGatewayFlags(f)
			var ff *fetcherFlags
			if tc.fetcher {
				ff = addFetcherFlags(f)
			}
			if err := f.parse(nil); err != nil {
				t.Fatal(err)
			}
			if got := g.uploadsDir(); got != tc.want {
				t.Fatalf("the gateway's uploads dir is %q, want %q", got, tc.want)
			}
			if ff != nil {
				if got := uploadsDir(ff.carparkFlags, *ff.uploads); got != tc.want {
					t.Fatalf("the fetcher's uploads dir is %q, want the gateway's, %q", got, tc.want)
				}
			}
		})
	}
}
