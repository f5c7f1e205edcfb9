package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/gateway"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"

	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

// serveURL is the base URL of a serving role's trustless gateway.
func (p *process) serveURL() string { return "http://" + p.addrs["serve"] }

// startServe starts the serving role with its lookup beside the test's
// files, deserialized responses on.
func (c *cluster) startServe(extraEnv ...string) *process {
	c.t.Helper()
	env := append([]string{"PICKUP_SERVE_ADDR=127.0.0.1:0", "PICKUP_SERVE_DESERIALIZED=true"}, extraEnv...)
	return c.start("serve", []string{"serve"}, env...)
}

// get GETs url with an Accept header, and returns the answer and its body.
func get(t *testing.T, url, accept string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp, body
}

// waitServed waits until the serving role answers 200 for a root's CAR:
// its lookup has loaded the root's index.
func waitServed(t *testing.T, base string, root cid.Cid, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		req, _ := http.NewRequest(http.MethodHead, base+"/ipfs/"+root.String()+"?format=raw", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not served within %v (last: %v %v)", root, within, resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// blocksOf returns the blocks of a CAR in order.
func blocksOf(t testing.TB, car []byte) []carBlock {
	t.Helper()
	br, err := carv2.NewBlockReader(bytes.NewReader(car))
	if err != nil {
		t.Fatal(err)
	}
	var out []carBlock
	for {
		b, err := br.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, carBlock{cid: b.Cid(), data: b.RawData()})
	}
}

type carBlock struct {
	cid  cid.Cid
	data []byte
}

// fileBytes is the content of a file DAG made by cluster.file.
func fileBytes(t *testing.T, size int64, seed uint64) []byte {
	t.Helper()
	b, err := io.ReadAll(io.LimitReader(ipfstest.Random(seed), size))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestServeWhatIsPinned: what pickup pins, its serving role serves back
// from the carpark as the Trustless Gateway spec says: the whole DAG as
// the stored CAR, byte for byte `ipfs dag export`'s, with the spec's
// headers; every block raw; the file deserialized, with Range; and boxo's
// own trustless-gateway clients (its remote CAR fetcher and CAR backend)
// read it back. What is not pinned, or no longer, is 404.
func TestServeWhatIsPinned(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	// A short grace, so that the removed root's objects go within the test.
	c.start("projector", []string{"projector"}, "PICKUP_GC_GRACE=2s", "PICKUP_GC_PERIOD=300ms")
	c.start("fetcher", []string{"fetcher"})
	srv := c.startServe()
	cl := c.client(gw.api())
	base := srv.serveURL()

	const size = 3<<20 + 12345
	root := c.file(size, 7)
	ps := cl.add(root.String(), "served.bin")
	if _, final := cl.waitStatus(ps.RequestID, 90*time.Second); final.Status != "pinned" {
		t.Fatalf("pin ended %s: %v", final.Status, final.Info)
	}
	waitServed(t, base, root, 30*time.Second)
	want := c.export(root)

	t.Run("whole DAG is the stored CAR", func(t *testing.T) {
		for _, u := range []struct{ url, accept string }{
			{base + "/ipfs/" + root.String() + "?format=car", ""},
			{base + "/ipfs/" + root.String(), "application/vnd.ipld.car"},
			{base + "/ipfs/" + root.String() + "?dag-scope=all&dups=n", "application/vnd.ipld.car; version=1; order=dfs; dups=n"},
		} {
			resp, body := get(t, u.url, u.accept)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
				t.Fatalf("GET %s (Accept %q): %d, %d bytes; want 200 and the %d bytes of `ipfs dag export`", u.url, u.accept, resp.StatusCode, len(body), len(want))
			}
			h := resp.Header
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.ipld.car; version=1") {
				t.Errorf("Content-Type %q", ct)
			}
			if r := h.Get("X-Ipfs-Roots"); r != root.String() {
				t.Errorf("X-Ipfs-Roots %q, want %s", r, root)
			}
			if h.Get("Etag") == "" || !strings.Contains(h.Get("Cache-Control"), "immutable") {
				t.Errorf("Etag %q, Cache-Control %q: want an Etag and immutable", h.Get("Etag"), h.Get("Cache-Control"))
			}
			if cd := h.Get("Content-Disposition"); !strings.Contains(cd, "attachment") || !strings.Contains(cd, root.String()+".car") {
				t.Errorf("Content-Disposition %q", cd)
			}
		}
		stored := c.object(c.carpark, root.String()+"/"+root.String()+".car")
		if !bytes.Equal(stored, want) {
			t.Fatalf("the carpark's CAR differs from `ipfs dag export`'s")
		}
	})

	t.Run("every block raw", func(t *testing.T) {
		for _, b := range blocksOf(t, want) {
			resp, body := get(t, base+"/ipfs/"+b.cid.String()+"?format=raw", "")
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, b.data) {
				t.Fatalf("raw %s: %d, %d bytes, want 200 and its %d bytes", b.cid, resp.StatusCode, len(body), len(b.data))
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.ipld.raw" {
				t.Fatalf("raw %s: Content-Type %q", b.cid, ct)
			}
		}
	})

	t.Run("deserialized, with Range", func(t *testing.T) {
		content := fileBytes(t, size, 7)
		resp, body := get(t, base+"/ipfs/"+root.String(), "")
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
			t.Fatalf("GET the file: %d, %d bytes, want 200 and %d bytes", resp.StatusCode, len(body), len(content))
		}
		resp, body = get(t, base+"/ipfs/"+root.String(), "", "Range", "bytes=1048570-1048600")
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, content[1048570:1048601]) {
			t.Fatalf("Range: %d, %q", resp.StatusCode, body)
		}
	})

	t.Run("dag-scope and entity-bytes", func(t *testing.T) {
		resp, body := get(t, base+"/ipfs/"+root.String()+"?format=car&dag-scope=block", "")
		blks := blocksOf(t, body)
		if resp.StatusCode != http.StatusOK || len(blks) != 1 || !blks[0].cid.Equals(root) {
			t.Fatalf("dag-scope=block: %d, %d blocks", resp.StatusCode, len(blks))
		}
		resp, body = get(t, base+"/ipfs/"+root.String()+"?format=car&dag-scope=entity&entity-bytes=0:1000", "")
		if resp.StatusCode != http.StatusOK || len(blocksOf(t, body)) < 2 || len(body) >= len(want) {
			t.Fatalf("entity-bytes=0:1000: %d, %d bytes of %d", resp.StatusCode, len(body), len(want))
		}
	})

	t.Run("boxo's trustless clients read it back", func(t *testing.T) {
		ctx := context.Background()
		fetcher, err := gateway.NewRemoteCarFetcher([]string{base}, http.DefaultClient)
		if err != nil {
			t.Fatal(err)
		}
		p, err := path.NewPath("/ipfs/" + root.String())
		if err != nil {
			t.Fatal(err)
		}
		ip, err := path.NewImmutablePath(p)
		if err != nil {
			t.Fatal(err)
		}
		var got int
		err = fetcher.Fetch(ctx, ip, gateway.CarParams{Scope: gateway.DagScopeAll}, func(_ path.ImmutablePath, r io.Reader) error {
			car, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			got = len(blocksOf(t, car))
			return nil
		})
		if err != nil || got != len(blocksOf(t, want)) {
			t.Fatalf("remote CAR fetcher: %v, %d blocks, want %d", err, got, len(blocksOf(t, want)))
		}
		backend, err := gateway.NewRemoteCarBackend([]string{base}, http.DefaultClient)
		if err != nil {
			t.Fatal(err)
		}
		_, node, err := backend.GetAll(ctx, ip)
		if err != nil {
			t.Fatal(err)
		}
		file, ok := node.(files.File)
		if !ok {
			t.Fatalf("remote CAR backend: %T, want a file", node)
		}
		content, err := io.ReadAll(file)
		if err != nil || !bytes.Equal(content, fileBytes(t, size, 7)) {
			t.Fatalf("remote CAR backend: %v, %d bytes", err, len(content))
		}
	})

	t.Run("not pinned is 404", func(t *testing.T) {
		other := c.file(1000, 99) // the origin has it; pickup never pinned it
		for _, q := range []string{"?format=raw", "?format=car", ""} {
			if resp, _ := get(t, base+"/ipfs/"+other.String()+q, ""); resp.StatusCode != http.StatusNotFound {
				t.Errorf("unpinned %s%s: %d, want 404", other, q, resp.StatusCode)
			}
		}
	})

	t.Run("removed is 404", func(t *testing.T) {
		cl.remove(ps.RequestID)
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, _ := get(t, base+"/ipfs/"+root.String()+"?format=raw", "")
			if resp.StatusCode == http.StatusNotFound {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("removed root still answers %d", resp.StatusCode)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, b := range blocksOf(t, want)[1:3] {
			if resp, _ := get(t, base+"/ipfs/"+b.cid.String()+"?format=raw", ""); resp.StatusCode != http.StatusNotFound {
				t.Errorf("block %s of a removed root: %d, want 404", b.cid, resp.StatusCode)
			}
		}
		if resp, _ := get(t, base+"/ipfs/"+root.String()+"?format=car", ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("CAR of a removed root: %d, want 404", resp.StatusCode)
		}
		// After the grace period the garbage collector deletes the CAR, its
		// index and the root's mapping, and the pin's audit tells it.
		deadline = time.Now().Add(30 * time.Second)
		for {
			var left []string
			for _, k := range c.keys(c.carpark) {
				if strings.HasPrefix(k, root.String()+"/") {
					left = append(left, k)
				}
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the removed root's objects are still there: %v", left)
			}
			time.Sleep(200 * time.Millisecond)
		}
		out, err := c.pickup("audit", ps.RequestID)
		if err != nil || !strings.Contains(out, "RootDeleting") || !strings.Contains(out, "RootDeleted") {
			t.Errorf("the audit does not tell the root's deletion: %v\n%s", err, out)
		}
	})
}

// pinAndServe starts every role of c, pins a file DAG of size bytes and
// waits until the serving role serves it.
func (c *cluster) pinAndServe(t *testing.T, cl *client, base string, size int64, seed uint64) (cid.Cid, string) {
	t.Helper()
	root := c.file(size, seed)
	ps := cl.add(root.String(), fmt.Sprintf("file-%d", seed))
	if _, final := cl.waitStatus(ps.RequestID, 90*time.Second); final.Status != "pinned" {
		t.Fatalf("pin of %s ended %s: %v", root, final.Status, final.Info)
	}
	waitServed(t, base, root, 30*time.Second)
	return root, ps.RequestID
}

// TestServeOriginForAnotherPickup: a second pickup pins a DAG with the
// first's serving role as its only origin (a trustless gateway), and
// stores the same CAR; kubo imports the CAR the first serves and exports
// it back the same.
func TestServeOriginForAnotherPickup(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"})
	c.start("fetcher", []string{"fetcher"})
	base := c.startServe().serveURL()
	root, _ := c.pinAndServe(t, c.client(gw.api()), base, 2<<20+99, 11)
	want := c.export(root)

	other := newCluster(t, clusterOptions{})
	other.originURL = base
	ogw := other.start("gateway", []string{"gateway"})
	other.start("projector", []string{"projector"})
	other.start("fetcher", []string{"fetcher"})
	ps := other.client(ogw.api()).add(root.String(), "from pickup")
	if _, final := other.client(ogw.api()).waitStatus(ps.RequestID, 90*time.Second); final.Status != "pinned" {
		t.Fatalf("the second pickup's pin ended %s: %v", final.Status, final.Info)
	}
	if got := other.object(other.carpark, root.String()+"/"+root.String()+".car"); !bytes.Equal(got, want) {
		t.Fatalf("the second pickup stored %d bytes, not the first's CAR (%d)", len(got), len(want))
	}

	t.Run("kubo imports it", func(t *testing.T) {
		ipfs := kuboBin(t)
		repo := t.TempDir()
		kubo := func(stdin io.Reader, args ...string) []byte {
			t.Helper()
			cmd := exec.Command(ipfs, args...)
			cmd.Env = append(os.Environ(), "IPFS_PATH="+repo)
			cmd.Stdin = stdin
			var out, errs bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errs
			if err := cmd.Run(); err != nil {
				t.Fatalf("ipfs %s: %v: %s", strings.Join(args, " "), err, errs.String())
			}
			return out.Bytes()
		}
		kubo(nil, "init", "--profile=test", "--empty-repo")
		_, car := get(t, base+"/ipfs/"+root.String()+"?format=car", "")
		out := kubo(bytes.NewReader(car), "dag", "import", "--stats")
		if !strings.Contains(string(out), root.String()) {
			t.Fatalf("ipfs dag import: %s", out)
		}
		if exported := kubo(nil, "dag", "export", root.String()); !bytes.Equal(exported, want) {
			t.Fatalf("kubo exports %d bytes back, not the CAR pickup served (%d)", len(exported), len(want))
		}
		for _, b := range blocksOf(t, want) {
			if data := kubo(nil, "block", "get", b.cid.String()); !bytes.Equal(data, b.data) {
				t.Fatalf("kubo's block %s differs", b.cid)
			}
		}
	})
}

// kuboBin is kubo's ipfs built into .tools/ (make kubo).
func kuboBin(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", ".tools", "bin", "ipfs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kubo is not built at %s: make test builds it (make kubo)", bin)
	}
	return bin
}

// TestServeDamage: a stored CAR with a byte changed is never served where
// the change is (a 5xx for the block, the CAR cut short before it), the
// damage is logged and reported as an event of the CAR's stream; a
// truncated index object is refused by the lookup's loader, so the blocks
// it would have named are not found rather than served wrong, while
// everything else is still served.
func TestServeDamage(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"})
	c.start("fetcher", []string{"fetcher"})
	srv := c.startServe()
	base := srv.serveURL()
	cl := c.client(gw.api())
	root, _ := c.pinAndServe(t, cl, base, 1<<20+5, 21)
	key := root.String() + "/" + root.String() + ".car"
	car := c.object(c.carpark, key)
	blks := blocksOf(t, car)
	bad := blks[2]
	at := bytes.Index(car, bad.data) + 100
	damaged := bytes.Clone(car)
	damaged[at] ^= 0x01
	c.put(c.carpark, key, damaged)

	resp, body := get(t, base+"/ipfs/"+bad.cid.String()+"?format=raw", "")
	if resp.StatusCode < 500 || bytes.Contains(body, bad.data[:64]) {
		t.Fatalf("a damaged block: %d, %d bytes; want a 5xx without its bytes", resp.StatusCode, len(body))
	}
	resp, body = get(t, base+"/ipfs/"+root.String()+"?format=car", "")
	if bytes.Equal(body, car) || bytes.Contains(body, bad.data[:64]) || !strings.Contains(string(body), "CAR stream truncated") {
		t.Fatalf("the CAR with a damaged block: %d, %d bytes; want it cut short before the block", resp.StatusCode, len(body))
	}
	if resp, _ := get(t, base+"/ipfs/"+blks[1].cid.String()+"?format=raw", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("a sound block of the damaged CAR: %d", resp.StatusCode)
	}
	carCID := carCID(t, car)
	out, err := c.pickup("events", "cat", "damage-"+carCID.String())
	if err != nil || !strings.Contains(out, `"BlockDamaged"`) || !strings.Contains(out, bad.cid.String()) || !strings.Contains(out, key) {
		t.Fatalf("damage report: %v\n%s", err, out)
	}
	if logs := srv.logText(t); !strings.Contains(logs, "damaged block in the carpark") {
		t.Errorf("no log line of the damage")
	}

	// A truncated index: a new serving role with an empty lookup loads
	// every index again, refuses this one, and serves the others.
	root2, _ := c.pinAndServe(t, cl, base, 300<<10, 22)
	key2 := root2.String() + "/" + root2.String() + ".car"
	idx := c.object(c.carpark, key2+".idx")
	c.put(c.carpark, key2+".idx", idx[:len(idx)/2])
	root3, _ := c.pinAndServe(t, cl, base, 200<<10, 23)
	srv.stop(t)
	fresh := c.startServe("PICKUP_LOCATE=" + filepath.Join(c.dir, "fresh-locate.db"))
	waitServed(t, fresh.serveURL(), root3, 30*time.Second)
	for _, b := range blocksOf(t, c.object(c.carpark, key2)) {
		if resp, _ := get(t, fresh.serveURL()+"/ipfs/"+b.cid.String()+"?format=raw", ""); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("a block whose index is truncated: %d, want 404", resp.StatusCode)
		}
	}
	if logs := fresh.logText(t); !strings.Contains(logs, key2+".idx") {
		t.Errorf("the loader did not log the truncated index %s", key2+".idx")
	}
}

// put writes an object, replacing what is there.
func (c *cluster) put(bucket, key string, data []byte) {
	c.t.Helper()
	if _, err := c.s3.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
		c.t.Fatal(err)
	}
}

// logText is what the process has logged so far.
func (p *process) logText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(p.logs.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestServeAfterReindex: a CAR stored before indexes existed (no index, no
// mapping) is indexed by pickup reindex, and a serving role that starts
// with an empty lookup builds it from the carpark and serves the CAR.
func TestServeAfterReindex(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	gw := c.start("gateway", []string{"gateway"})
	c.start("projector", []string{"projector"})
	c.start("fetcher", []string{"fetcher"})
	srv := c.startServe()
	root, _ := c.pinAndServe(t, c.client(gw.api()), srv.serveURL(), 700<<10, 31)
	srv.stop(t)
	key := root.String() + "/" + root.String() + ".car"
	car := c.object(c.carpark, key)
	for _, k := range []string{key + ".idx", root.String() + "/" + carCID(t, car).String()} {
		if _, err := c.s3.Client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &c.carpark, Key: &k}); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := c.pickup("reindex", "--reindex-state", filepath.Join(c.dir, "reindex.state")); err != nil {
		t.Fatalf("pickup reindex: %v\n%s", err, out)
	}
	fresh := c.startServe("PICKUP_LOCATE=" + filepath.Join(c.dir, "after-reindex.db"))
	waitServed(t, fresh.serveURL(), root, 30*time.Second)
	if _, body := get(t, fresh.serveURL()+"/ipfs/"+root.String()+"?format=car", ""); !bytes.Equal(body, car) {
		t.Fatalf("after reindex the serving role answers %d bytes, not the stored CAR (%d)", len(body), len(car))
	}
}
