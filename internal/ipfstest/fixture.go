package ipfstest

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
)

// BenchSizes are the DAG sizes the fetch benchmarks measure: 256 MiB, and
// 1 GiB as well when PICKUP_BENCH_LONG is 1 (`make bench LONG=1`).
func BenchSizes() []int64 {
	sizes := []int64{256 << 20}
	if os.Getenv("PICKUP_BENCH_LONG") == "1" {
		sizes = append(sizes, 1<<30)
	}
	return sizes
}

// Fixture is a UnixFS file DAG (CIDv1, 256 KiB raw leaves, as `ipfs add
// --cid-version=1` makes it) in a blockstore on disk, so that a gigabyte
// DAG needs no gigabyte of memory, and its CAR as `ipfs dag export` writes
// it, in a file.
type Fixture struct {
	Blocks *FileBlockstore
	Root   cid.Cid
	// CAR is the path of the CAR file; Size its length.
	CAR  string
	Size int64
}

// NewFixture builds a fixture of a DAG of size bytes in a temporary
// directory of tb's, removed with it.
func NewFixture(tb testing.TB, size int64) Fixture {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	bs, err := NewFileBlockstore(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = bs.Close() })
	root, err := File(ctx, bs, FileOptions{Size: size, Seed: uint64(size), CIDv1: true})
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "dag.car")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	n, err := Export(ctx, bs, root, w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
	return Fixture{Blocks: bs, Root: root, CAR: path, Size: n}
}
