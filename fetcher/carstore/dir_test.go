package carstore_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/fetcher/carstore/carstoretest"
)

var dirBackend = carstoretest.Backend{
	Name: "dir",
	Open: func(_ context.Context, root string) (carstoretest.Store, error) { return carstore.NewDir(root, nil) },
	New: func(t *testing.T, _ carstoretest.Tuning) carstoretest.Instance {
		root := t.TempDir()
		store, err := carstore.NewDir(root, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		return carstoretest.Instance{
			Store:              store,
			Location:           root,
			RemovesDeadUploads: true,
			Keys: func(t *testing.T, area carstore.Area) []string {
				return fileKeys(t, filepath.Join(root, string(area)), area == carstore.AreaCarpark)
			},
			Overwrite: func(t *testing.T, key string, data []byte) {
				path := filepath.Join(root, "staging", filepath.FromSlash(key))
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			},
		}
	},
}

func TestDirConformance(t *testing.T) { carstoretest.Run(t, dirBackend) }

// fileKeys lists the files under dir as slash-separated keys; in the
// carpark, not the CARs' metadata files.
func fileKeys(t *testing.T, dir string, carpark bool) []string {
	t.Helper()
	var keys []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if carpark && filepath.Ext(path) == ".json" {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		keys = append(keys, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	slices.Sort(keys)
	return keys
}

// A store that stops mid-upload leaves its bytes in uploads/, never in
// staging/: a store opened on the directory beside it (another process
// sharing it) shows no staged CAR and names the unfinished upload, which
// is not its to remove while the writer's store lives; once that store is
// gone (Close, or its process's death: the suite's kill cases), a store
// opened again removes the upload.
func TestDirCrashLeavesNoPartialCAR(t *testing.T) {
	root := t.TempDir()
	store, err := carstore.NewDir(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, meta, _ := testCar(t, 3*carstore.MiB)
	key := carstore.StagingKey(meta.RequestID, 2)
	up, err := store.Stage(context.Background(), key, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	// The process dies here: no Complete, no Abort.

	again, err := carstore.NewDir(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if keys := fileKeys(t, filepath.Join(root, "staging"), false); len(keys) > 0 {
		t.Fatalf("staging holds %v", keys)
	}
	open, err := again.OpenUploads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Key != key {
		t.Fatalf("open uploads %+v, want %s", open, key)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := carstore.NewDir(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if open, err := again.OpenUploads(context.Background()); err != nil || len(open) > 0 {
		t.Fatalf("after the writer's store closed and another opened, open uploads %+v, %v", open, err)
	}
}

// A CAR put into the carpark by hand, without its metadata file, counts as
// present; promoting the same CAR writes the metadata.
func TestDirCarWithoutMetadata(t *testing.T) {
	root := t.TempDir()
	store, err := carstore.NewDir(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, meta, carCID := testCar(t, 1000)
	path := filepath.Join(root, "carpark", filepath.FromSlash(carstore.CarKey(carCID)))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	st, ok, err := store.Stat(context.Background(), meta.Root, carCID)
	if err != nil || !ok || st.Bytes != 1000 || st.Root.Defined() {
		t.Fatalf("stat: %+v, %v, %v; want present, 1000 bytes, no metadata", st, ok, err)
	}
	key := carstore.StagingKey(meta.RequestID, 1)
	up, err := store.Stage(context.Background(), key, meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(data); err != nil {
		t.Fatal(err)
	}
	staged, err := up.Complete(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Promote(context.Background(), key, carstore.Expected{Bytes: staged.Bytes, CarCID: carCID, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	st, ok, err = store.Stat(context.Background(), meta.Root, carCID)
	if err != nil || !ok || st.Root != meta.Root || st.RequestID != meta.RequestID || st.Structure != carstore.StructureComplete {
		t.Fatalf("stat after promote: %+v, %v, %v", st, ok, err)
	}
}
