package ipfstest

import (
	"bytes"
	"context"
	"math"
	"testing"
)

// TestFileBlockstoreHoldsWhatMemoryHolds proves the on-disk blockstore the
// big benchmarks use against boxo's in-memory one: the same file makes the
// same DAG, and its dag export is the same bytes.
func TestFileBlockstoreHoldsWhatMemoryHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fbs, err := NewFileBlockstore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fbs.Close()
	mbs := NewMemBlockstore()
	opts := FileOptions{Size: 1 << 20, Seed: 3, ChunkSize: 16 << 10, CIDv1: true}
	froot, err := File(ctx, fbs, opts)
	if err != nil {
		t.Fatal(err)
	}
	mroot, err := File(ctx, mbs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if froot != mroot {
		t.Fatalf("roots differ: %s and %s", froot, mroot)
	}
	var fcar, mcar bytes.Buffer
	if _, err := Export(ctx, fbs, froot, &fcar); err != nil {
		t.Fatal(err)
	}
	if _, err := Export(ctx, mbs, mroot, &mcar); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fcar.Bytes(), mcar.Bytes()) {
		t.Fatal("exports differ")
	}
	if fbs.Len() != 1+64 {
		t.Errorf("%d blocks, want 65 (a root and 64 leaves)", fbs.Len())
	}
	other, err := File(ctx, NewMemBlockstore(), FileOptions{Size: 1 << 20, Seed: 4, ChunkSize: 16 << 10, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	if other == froot {
		t.Error("another seed made the same DAG")
	}
}

// TestTamperedBlockstores proves Holes and Corrupt, which the hostile
// peers are built on.
func TestTamperedBlockstores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bs := NewMemBlockstore()
	root, err := File(ctx, bs, FileOptions{Size: 1000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if has, _ := Holes(bs, root).Has(ctx, root); has {
		t.Error("a hole is still there")
	}
	blk, err := Corrupt(bs, root).Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if sum, _ := root.Prefix().Sum(blk.RawData()); sum == root {
		t.Error("a corrupted block still hashes to its CID")
	}
}

// Medians takes each metric's middle value over the runs that reported it,
// whatever the order the runs came in.
func TestMedians(t *testing.T) {
	got := Medians([]map[string]float64{
		{"MB/s": 300, "s": 0.9},
		{"MB/s": 100, "s": 0.7, "tail": 4},
		{"MB/s": 200, "s": 0.8},
		{"MB/s": 900, "s": 0.1, "tail": 2},
	})
	want := map[string]float64{"MB/s": 250, "s": 0.75, "tail": 3}
	if len(got) != len(want) {
		t.Fatalf("Medians = %v, want %v", got, want)
	}
	for k, v := range want {
		if math.Abs(got[k]-v) > 1e-9 {
			t.Errorf("median of %s = %v, want %v", k, got[k], v)
		}
	}
	odd := Medians([]map[string]float64{{"x": 5}, {"x": 1}, {"x": 3}})
	if odd["x"] != 3 {
		t.Errorf("median of 5, 1, 3 = %v, want 3", odd["x"])
	}
}
