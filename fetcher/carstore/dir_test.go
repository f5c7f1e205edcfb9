package carstore_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/fetcher/carstore/carstoretest"
)

var dirBackend = carstoretest.Backend{
	New: func(t *testing.T, _ carstoretest.Tuning) carstoretest.Instance {
		root := t.TempDir()
		store, err := carstore.NewDir(root, nil)
		if err != nil {
			t.Fatal(err)
		}
		return carstoretest.Instance{
			Store: store,
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
// carpark, only the CARs (not their metadata files).
func fileKeys(t *testing.T, dir string, carsOnly bool) []string {
	t.Helper()
	var keys []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if carsOnly && filepath.Ext(path) != ".car" {
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
