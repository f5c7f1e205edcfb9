package terraform

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The tasks' image: with PICKUP_IMAGE naming the output of `make image`
// (an OCI layout in bin/image/oci; make test sets it, as for
// tests/image_test.go), the tasks run the binary of that image's
// linux/<this machine's architecture> manifest, at its entrypoint, with the
// image's environment; without it, a host build of ./cmd/pickup with ko's
// flags stands in, at the entrypoint ko gives it.

// taskImage is what a container of the image runs.
type taskImage struct {
	binary     string   // the entrypoint's binary, unpacked
	entrypoint []string // the image's entrypoint (its first word is the binary's path in the image)
	env        []string // the image's environment
	from       string   // where it came from, for the logs
}

// koEntrypoint is where ko puts the binary, for a host build.
const koEntrypoint = "/ko-app/pickup"

// imageForTasks returns the image the tasks run.
func imageForTasks(t *testing.T, dir string) taskImage {
	t.Helper()
	layout := os.Getenv("PICKUP_IMAGE")
	if layout == "" {
		bin := filepath.Join(dir, "pickup")
		buildPickup(t, bin, "-trimpath", "-ldflags", "-s -w")
		return taskImage{binary: bin, entrypoint: []string{koEntrypoint}, from: "a host build of ./cmd/pickup (PICKUP_IMAGE unset)"}
	}
	oci := filepath.Join(layout, "oci")
	var top, idx struct {
		Manifests []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Platform  *struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	readJSONFile(t, filepath.Join(oci, "index.json"), &top)
	if len(top.Manifests) != 1 {
		t.Fatalf("%s/index.json lists %d manifests, want the image's one index", oci, len(top.Manifests))
	}
	readJSONBlob(t, oci, top.Manifests[0].Digest, &idx)
	var manifest struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"layers"`
	}
	found := false
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH {
			readJSONBlob(t, oci, m.Digest, &manifest)
			found = true
		}
	}
	if !found {
		t.Fatalf("%s has no linux/%s image", layout, runtime.GOARCH)
	}
	var cfg struct {
		Config struct {
			Entrypoint []string `json:"Entrypoint"`
			Env        []string `json:"Env"`
		} `json:"config"`
	}
	readJSONBlob(t, oci, manifest.Config.Digest, &cfg)
	if len(cfg.Config.Entrypoint) == 0 {
		t.Fatalf("%s: the image has no entrypoint", layout)
	}
	want := strings.TrimPrefix(path.Clean(cfg.Config.Entrypoint[0]), "/")
	bin := filepath.Join(dir, "pickup")
	// The last layer holding the file wins, as in a container's root.
	have := false
	for _, l := range manifest.Layers {
		gz, err := gzip.NewReader(bytes.NewReader(blob(t, oci, l.Digest)))
		if err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", l.Digest, err)
			}
			if strings.TrimPrefix(path.Clean(h.Name), "/") != want || h.Typeflag != tar.TypeReg {
				continue
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin, b, 0o755); err != nil {
				t.Fatal(err)
			}
			have = true
		}
	}
	if !have {
		t.Fatalf("%s: no layer holds the entrypoint %s", layout, cfg.Config.Entrypoint[0])
	}
	return taskImage{binary: bin, entrypoint: cfg.Config.Entrypoint, env: cfg.Config.Env, from: "the linux/" + runtime.GOARCH + " image of " + layout}
}

func readJSONFile(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
}

func readJSONBlob(t *testing.T, oci, digest string, v any) {
	t.Helper()
	if err := json.Unmarshal(blob(t, oci, digest), v); err != nil {
		t.Fatalf("blob %s: %v", digest, err)
	}
}

// blob reads a blob of the layout, checking its digest.
func blob(t *testing.T, oci, digest string) []byte {
	t.Helper()
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 || strings.ContainsAny(h, "/.") {
		t.Fatalf("digest %q", digest)
	}
	b, err := os.ReadFile(filepath.Join(oci, "blobs", "sha256", h))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != h {
		t.Fatalf("blob %s does not hash to its digest", digest)
	}
	return b
}
