package upload_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/carupload"
	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/upload"
	"github.com/pickup-ipfs/pickup/internal/caruploadtest"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
)

type memSink struct {
	bytes.Buffer
	aborted bool
}

func (s *memSink) Abort(context.Context) error { s.aborted = true; return nil }

// fetch receives body as an upload in a real uploads area and fetches
// root from it through the real pipeline.
func fetch(t *testing.T, root cid.Cid, body []byte) ([]byte, *memSink, error) {
	t.Helper()
	ctx := context.Background()
	area, err := carupload.NewDir(t.TempDir(), carupload.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := area.Receive(ctx, "u1", root, bytes.NewReader(body)); err != nil {
		t.Fatalf("receive: %v", err)
	}
	src, err := upload.New(area)
	if err != nil {
		t.Fatal(err)
	}
	f, err := dag.New([]dag.Source{src}, dag.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sink *memSink
	open := func(context.Context) (dag.Sink, error) { sink = &memSink{}; return sink, nil }
	_, _, err = f.Fetch(ctx, dag.Request{Root: root, Upload: "u1"}, open, nil)
	if sink == nil {
		return nil, nil, err
	}
	return sink.Bytes(), sink, err
}

func TestUploadSourceWritesTheCanonicalCARWhateverTheOrder(t *testing.T) {
	d := caruploadtest.NewDAG(t, 3<<20, 1)
	for name, body := range map[string][]byte{"canonical": d.Canonical, "reversed": d.Reversed(t)} {
		t.Run(name, func(t *testing.T) {
			got, _, err := fetch(t, d.Root, body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, d.Canonical) {
				t.Fatalf("CAR of %d bytes is not the canonical one of %d", len(got), len(d.Canonical))
			}
		})
	}
}

func TestUploadSourceFailsABadUploadWithItsReason(t *testing.T) {
	d := caruploadtest.NewDAG(t, 1<<20, 2)
	for _, tc := range []struct {
		name string
		body []byte
		want pin.Reason
	}{
		{"corrupted block", d.Corrupted(t, 3), pin.ReasonBlockMismatch},
		{"corrupted root", d.Corrupted(t, 0), pin.ReasonBlockMismatch},
		{"missing block", d.Without(t, 5), pin.ReasonMissingBlock},
		{"missing root", d.Without(t, 0), pin.ReasonRootNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, sink, err := fetch(t, d.Root, tc.body)
			if got := dag.ReasonOf(err); err == nil || got != tc.want {
				t.Fatalf("err %v (reason %s), want reason %s", err, got, tc.want)
			}
			if sink != nil && !sink.aborted {
				t.Fatal("the sink of a failed fetch was not aborted")
			}
		})
	}
}

func TestUploadSourceOfAnUploadGone(t *testing.T) {
	area, err := carupload.NewDir(t.TempDir(), carupload.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := upload.New(area)
	_, err = src.Fetch(context.Background(), dag.Request{Upload: "nothing"}, dag.Limits{})
	if dag.ReasonOf(err) != pin.ReasonRootNotFound {
		t.Fatalf("err %v, want root_not_found", err)
	}
}

func TestReceiveRefusesBadUploadsAndLeavesNothing(t *testing.T) {
	d := caruploadtest.NewDAG(t, 1<<20, 3)
	other := caruploadtest.NewDAG(t, 64<<10, 4)
	for _, tc := range []struct {
		name   string
		body   []byte
		limits carupload.Limits
		want   error
	}{
		{"truncated", d.Canonical[:len(d.Canonical)-100], carupload.Limits{}, carupload.ErrBadCAR},
		{"truncated in a section length", d.Canonical[:len(d.Canonical)-len(d.Blocks[len(d.Blocks)-1].Data)-37], carupload.Limits{}, carupload.ErrBadCAR},
		{"wrong root", caruploadtest.CAR(t, []cid.Cid{other.Root}, d.Blocks), carupload.Limits{}, carupload.ErrBadCAR},
		{"over the limit", d.Canonical, carupload.Limits{MaxCARBytes: 512 << 10}, carupload.ErrTooBig},
		{"empty", nil, carupload.Limits{}, carupload.ErrBadCAR},
		{"not a CAR", []byte("{\"cid\":\"bafy\"}"), carupload.Limits{}, carupload.ErrBadCAR},
		{"header only", caruploadtest.CAR(t, []cid.Cid{d.Root}, nil), carupload.Limits{}, carupload.ErrBadCAR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			area, err := carupload.NewDir(dir, tc.limits, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = area.Receive(context.Background(), "u1", d.Root, bytes.NewReader(tc.body))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			left, _ := filepath.Glob(filepath.Join(dir, "*"))
			hidden, _ := filepath.Glob(filepath.Join(dir, ".*"))
			if len(left)+len(hidden) > 0 {
				t.Fatalf("left behind: %v %v", left, hidden)
			}
		})
	}
}

func TestReceiveStopsReadingAtTheLimit(t *testing.T) {
	d := caruploadtest.NewDAG(t, 1<<20, 5)
	r := bytes.NewReader(d.Canonical)
	area, err := carupload.NewDir(t.TempDir(), carupload.Limits{MaxCARBytes: 200 << 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := area.Receive(context.Background(), "u1", d.Root, r); !errors.Is(err, carupload.ErrTooBig) {
		t.Fatalf("err %v, want too big", err)
	}
	// One read buffer past the limit at most.
	if read := int64(len(d.Canonical)) - int64(r.Len()); read > 200<<10+64<<10+70<<10 {
		t.Fatalf("read %d bytes of a body refused at %d", read, 200<<10)
	}
}

func TestDeleteRemovesTheUpload(t *testing.T) {
	d := caruploadtest.NewDAG(t, 256<<10, 6)
	dir := t.TempDir()
	area, _ := carupload.NewDir(dir, carupload.Limits{}, nil)
	res, err := area.Receive(context.Background(), "u1", d.Root, bytes.NewReader(d.Canonical))
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != int64(len(d.Canonical)) || res.Blocks != int64(len(d.Blocks)) {
		t.Fatalf("received %+v, want %d bytes, %d blocks", res, len(d.Canonical), len(d.Blocks))
	}
	if err := area.Delete(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
	if _, err := area.Open(context.Background(), "u1"); !errors.Is(err, carupload.ErrNotFound) {
		t.Fatalf("open after delete: %v", err)
	}
}

// hashSink keeps only the SHA-256 and length of what it is given.
type hashSink struct {
	h hash.Hash
	n int64
}

func (s *hashSink) Write(p []byte) (int, error) { s.n += int64(len(p)); return s.h.Write(p) }
func (s *hashSink) Abort(context.Context) error { return nil }

// A 256 MiB upload is received and fetched in memory that does not grow
// with it: the body streams to a file, its index to another, and the
// fetch reuses its block buffers. The CAR written is `ipfs dag export`'s,
// byte for byte.
func TestUploadMemoryDoesNotGrowWithTheDAG(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 256 MiB DAG")
	}
	const size = 256 << 20
	fx := ipfstest.NewFixture(t, size)
	want := fileSHA256(t, fx.CAR)
	ctx := context.Background()
	area, err := carupload.NewDir(t.TempDir(), carupload.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.Open(fx.CAR)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	src, _ := upload.New(area)
	f, err := dag.New([]dag.Source{src}, dag.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &hashSink{h: sha256.New()}
	open := func(context.Context) (dag.Sink, error) { return sink, nil }

	var before, received, fetched runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := area.Receive(ctx, "big", fx.Root, bodyOnly{body})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&received)
	if _, _, err := f.Fetch(ctx, dag.Request{Root: fx.Root, Upload: "big"}, open, nil); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&fetched)
	if res.Bytes != fx.Size || sink.n != fx.Size || !bytes.Equal(sink.h.Sum(nil), want) {
		t.Fatalf("received %d bytes, wrote %d, of a CAR of %d; the same bytes: %v", res.Bytes, sink.n, fx.Size, bytes.Equal(sink.h.Sum(nil), want))
	}
	recvAlloc := received.TotalAlloc - before.TotalAlloc
	fetchAlloc := fetched.TotalAlloc - received.TotalAlloc
	t.Logf("a %d MiB upload of %d blocks: receiving allocated %.1f MiB, fetching %.1f MiB; heap in use after %.1f MiB (before %.1f MiB)",
		size>>20, res.Blocks, mib(recvAlloc), mib(fetchAlloc), mib(fetched.HeapInuse), mib(before.HeapInuse))
	// Receiving: its read and copy buffers and a few hundred bytes a
	// block. Fetching: the blocks in flight (24 of 256 KiB), the index and
	// the walk, about 100 bytes a block each.
	if recvAlloc > 8<<20 {
		t.Errorf("receiving %d MiB allocated %.1f MiB", size>>20, mib(recvAlloc))
	}
	if fetchAlloc > 24<<20 {
		t.Errorf("fetching %d MiB from the upload allocated %.1f MiB", size>>20, mib(fetchAlloc))
	}
}

// bodyOnly hides the file's WriterTo, as a request body has none.
type bodyOnly struct{ r io.Reader }

func (b bodyOnly) Read(p []byte) (int, error) { return b.r.Read(p) }

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

func fileSHA256(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}
