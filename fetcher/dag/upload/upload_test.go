package upload_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"os"
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
	want := caruploadtest.FileSHA256(t, fx.CAR)
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
