package terraform

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pickup-ipfs/pickup/terraform/internal/cdkschema"
)

// The npm package whose generated code carries the AWS provider's schema,
// pinned by version and by the integrity npm publishes for it.
const (
	cdktnPackage   = "@cdktn/provider-aws"
	cdktnVersion   = "25.7.0"
	cdktnTarball   = "cdktn-provider-aws-25.7.0.tgz"
	cdktnIntegrity = "sha512-E/nhu0yVZE4mXMgIPuI8tEFt1BExLkA7ARjihdG+/HmfDfzLr+OEF3dkFRvI6glRt30lrrBWQLwXqCJBxcmyUg=="

	// awsVersion is the provider version that package carries, and the one
	// the environments' lock files select.
	awsVersion = "6.66.0"
)

// inCI tells whether a missing tool must fail the test rather than skip it.
func inCI() bool { return os.Getenv("CI") == "true" }

// need finds a tool on PATH, or skips the test (fails it in CI).
func need(t *testing.T, tool, why string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		msg := fmt.Sprintf("%s is not on PATH: %s", tool, why)
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// repoRoot is the repository's root: tests run in terraform/.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(wd)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above %s", wd)
	}
	return root
}

var (
	stubOnce sync.Once
	stubDir  string
	stubErr  error
)

// stubPlugins returns a Terraform plugin directory holding the schema-only
// AWS provider, building it into .tools/tfstub/<key>/ the first time: key
// hashes what the stub is made of, so that a change to the extraction or the
// server builds a new one.
func stubPlugins(t *testing.T) string {
	t.Helper()
	need(t, "go", "the stub provider is built with the Go toolchain")
	root := repoRoot(t)
	stubOnce.Do(func() { stubDir, stubErr = buildStub(t, root) })
	if stubErr != nil {
		t.Fatal(stubErr)
	}
	return stubDir
}

func buildStub(t *testing.T, root string) (string, error) {
	key, err := stubKey(root)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".tools", "tfstub", key)
	plugins := filepath.Join(dir, "plugins")
	if _, err := os.Stat(filepath.Join(dir, "ok")); err == nil {
		t.Logf("stub provider: reusing %s", dir)
		return plugins, nil
	}
	t.Logf("stub provider: building %s", dir)
	tgz, err := cdktnPackageFile(t, root)
	if err != nil {
		return "", err
	}
	f, err := os.Open(tgz)
	if err != nil {
		return "", err
	}
	defer f.Close()
	schema, err := cdkschema.FromPackage(f)
	if err != nil {
		return "", fmt.Errorf("extract schema from %s: %w", tgz, err)
	}
	if schema.Version != awsVersion {
		return "", fmt.Errorf("%s carries the AWS provider %s, not %s", cdktnTarball, schema.Version, awsVersion)
	}
	t.Logf("stub provider: %d resource types, %d data sources of the AWS provider %s", len(schema.ResourceSchemas), len(schema.DataSourceSchemas), schema.Version)

	// Built in a scratch folder and renamed into place, so that a run that
	// dies half-way, or runs beside another, never leaves a broken stub.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := schema.WriteFile(filepath.Join(tmp, "schema.json")); err != nil {
		return "", err
	}
	platform := runtime.GOOS + "_" + runtime.GOARCH
	bin := filepath.Join(tmp, "plugins", "registry.terraform.io", "hashicorp", "aws", awsVersion, platform, "terraform-provider-aws_v"+awsVersion+"_x5")
	cmd := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.schemaFile="+filepath.Join(dir, "schema.json"),
		"-o", bin, "./terraform/cmd/awsstub")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build stub provider: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, "ok"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "ok")); statErr == nil {
			return plugins, nil // another run got there first
		}
		return "", err
	}
	// Stubs built from older sources are of no more use.
	if old, err := filepath.Glob(filepath.Join(filepath.Dir(dir), "[0-9a-f]*")); err == nil {
		for _, o := range old {
			if o != dir {
				os.RemoveAll(o)
			}
		}
	}
	return plugins, nil
}

// stubKey hashes the sources of the stub and of the schema extraction, the
// pinned package, the Go version and terraform-plugin-go's.
func stubKey(root string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, cdktnIntegrity, awsVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	var files []string
	for _, d := range []string{"terraform/internal", "terraform/cmd/awsstub"} {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	sort.Strings(files)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, strings.TrimPrefix(p, root), len(b))
		h.Write(b)
	}
	// The version of terraform-plugin-go, not all of go.sum, which changes
	// with every dependency of pickup's.
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(sum), "\n") {
		if strings.HasPrefix(line, "github.com/hashicorp/terraform-plugin-go ") {
			fmt.Fprintln(h, line)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// cdktnPackageFile returns the pinned npm package, downloading it into
// .tools/npm with `npm pack` the first time and checking its integrity.
func cdktnPackageFile(t *testing.T, root string) (string, error) {
	dir := filepath.Join(root, ".tools", "npm")
	path := filepath.Join(dir, cdktnTarball)
	if err := checkIntegrity(path); err == nil {
		return path, nil
	}
	need(t, "npm", "the AWS provider's schema comes from the npm package "+cdktnPackage+"@"+cdktnVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".pack-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	t.Logf("npm pack %s@%s", cdktnPackage, cdktnVersion)
	cmd := exec.Command("npm", "pack", "--silent", "--pack-destination", tmp, cdktnPackage+"@"+cdktnVersion)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm pack %s@%s: %v\n%s", cdktnPackage, cdktnVersion, err, out)
	}
	got := filepath.Join(tmp, cdktnTarball)
	if err := checkIntegrity(got); err != nil {
		return "", err
	}
	if err := os.Rename(got, path); err != nil {
		return "", err
	}
	return path, nil
}

func checkIntegrity(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil)); got != cdktnIntegrity {
		return fmt.Errorf("%s: integrity %s, want %s", path, got, cdktnIntegrity)
	}
	return nil
}
