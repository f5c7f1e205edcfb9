package carstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"

	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/index"
	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

// BuildIndex reads a CAR once into the index go-car builds of it, and
// refuses a CAR with a block that does not hash to its CID, or cut short.
func TestBuildIndex(t *testing.T) {
	ctx := context.Background()
	for _, mk := range []func() ([]byte, error){
		func() ([]byte, error) {
			bs := ipfstest.NewMemBlockstore()
			root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: 300 << 10, Seed: 3, ChunkSize: 1 << 10, CIDv1: true})
			if err != nil {
				return nil, err
			}
			var buf bytes.Buffer
			_, err = ipfstest.Export(ctx, bs, root, &buf)
			return buf.Bytes(), err
		},
		func() ([]byte, error) {
			bs := ipfstest.NewMemBlockstore()
			root, err := ipfstest.Mixed(ctx, bs, 5)
			if err != nil {
				return nil, err
			}
			var buf bytes.Buffer
			_, err = ipfstest.Export(ctx, bs, root, &buf)
			return buf.Bytes(), err
		},
	} {
		data, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		got, err := carstore.BuildIndex(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("build index: %v", err)
		}
		idx, err := car.GenerateIndex(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if _, err := index.WriteTo(idx, &want); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if got.CarCID != carstore.CarCID(sum[:]) || got.Bytes != int64(len(data)) || got.Blocks == 0 {
			t.Fatalf("built %+v for a CAR of %d bytes", got, len(data))
		}
		if err := carstore.CheckIndex(got.Index); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Index, want.Bytes()) {
			// go-car's order of equal digests is its sort's: then what
			// they index must be the same.
			if a, b := entries(t, got.Index), entries(t, want.Bytes()); !slices.Equal(a, b) {
				t.Fatalf("index of %d entries differs from go-car's of %d", len(a), len(b))
			}
		}

		corrupt := bytes.Clone(data)
		corrupt[len(corrupt)-3] ^= 1
		if _, err := carstore.BuildIndex(bytes.NewReader(corrupt)); !errors.Is(err, carstore.ErrCorrupt) {
			t.Errorf("a CAR with a corrupted byte: %v, want ErrCorrupt", err)
		}
		if _, err := carstore.BuildIndex(bytes.NewReader(data[:len(data)-5])); !errors.Is(err, carstore.ErrCorrupt) {
			t.Errorf("a truncated CAR: %v, want ErrCorrupt", err)
		}
		if _, err := carstore.BuildIndex(bytes.NewReader([]byte("not a CAR"))); !errors.Is(err, carstore.ErrCorrupt) {
			t.Errorf("not a CAR: %v, want ErrCorrupt", err)
		}
	}
}

func entries(t *testing.T, b []byte) []string {
	t.Helper()
	idx, err := index.ReadFrom(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	_ = idx.(index.IterableIndex).ForEach(func(h mh.Multihash, o uint64) error {
		out = append(out, fmt.Sprintf("%x@%d", []byte(h), o))
		return nil
	})
	slices.Sort(out)
	return out
}
