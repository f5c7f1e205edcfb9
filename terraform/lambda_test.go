package terraform

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// lambdaZipEnv names a Lambda zip already built by scripts/build-lambda.sh
// (make test builds bin/lambda.zip once, before the tests, and sets it), so
// that the test checks that file instead of building its own.
const lambdaZipEnv = "PICKUP_LAMBDA_ZIP"

// buildLambda returns the zip PICKUP_LAMBDA_ZIP names or, without it, runs
// scripts/build-lambda.sh, as `make lambda` does, into a temporary
// directory and returns the zip's path.
func buildLambda(t *testing.T) string {
	t.Helper()
	if zip := os.Getenv(lambdaZipEnv); zip != "" {
		if _, err := os.Stat(zip); err != nil {
			t.Fatalf("%s=%s: %v (make bin/lambda.zip builds it)", lambdaZipEnv, zip, err)
		}
		t.Logf("checking %s (%s)", zip, lambdaZipEnv)
		return zip
	}
	need(t, "bash", "scripts/build-lambda.sh is a bash script")
	need(t, "go", "the Lambda package is built with the Go toolchain")
	out := filepath.Join(t.TempDir(), "lambda.zip")
	// A cold cross-build for arm64 took 5 min 21 s on a loaded 2-core
	// machine: room for twice that and more.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot(t), "scripts", "build-lambda.sh"), out)
	cmd.Dir = t.TempDir() // the script must not depend on where it is run from
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-lambda.sh: %v\n%s", err, b)
	}
	return out
}

// TestLambdaPackage checks that the Lambda zip holds one executable
// `bootstrap`: a static, stripped ELF executable for linux/arm64, which is
// what the provided.al2023 runtime on arm64 runs.
func TestLambdaPackage(t *testing.T) {
	path := buildLambda(t)
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" {
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		t.Fatalf("zip holds %q, want just bootstrap", names)
	}
	f := zr.File[0]
	if mode := f.Mode(); !mode.IsRegular() || mode.Perm()&0o111 != 0o111 {
		t.Errorf("bootstrap has mode %v, want a regular file executable by all", mode)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("bootstrap is not an ELF file: %v", err)
	}
	defer exe.Close()
	if exe.Machine != elf.EM_AARCH64 || exe.Class != elf.ELFCLASS64 || exe.Data != elf.ELFDATA2LSB {
		t.Errorf("bootstrap is for %v %v %v, want EM_AARCH64, 64-bit, little-endian", exe.Machine, exe.Class, exe.Data)
	}
	if exe.Type != elf.ET_EXEC {
		t.Errorf("bootstrap is of type %v, want an executable (ET_EXEC)", exe.Type)
	}
	for _, p := range exe.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("bootstrap asks for a dynamic loader: it must be static (CGO_ENABLED=0)")
		}
	}
	if libs, _ := exe.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("bootstrap links %q: it must be static", libs)
	}
	if exe.Section(".symtab") != nil {
		t.Errorf("bootstrap has a symbol table: build with -ldflags \"-s -w\"")
	}

	// The zip depends on the binary alone (Go builds with -trimpath are
	// reproducible): zipping the same bootstrap again gives the same bytes,
	// so Terraform redeploys the function only when the code changed.
	bootstrap := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(bootstrap, b, 0o755); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "again.zip")
	cmd := exec.Command("go", "run", "./terraform/cmd/lambdazip", "-o", again, bootstrap)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lambdazip: %v\n%s", err, out)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("zipping the same bootstrap twice gave different zips")
	}
}
