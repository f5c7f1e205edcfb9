package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/x509"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

// TestImage checks the container image `make image` builds
// (scripts/build-image.sh): built twice, it has the same digest; it is an
// OCI index of linux/amd64 and linux/arm64 images, each a static pickup
// for its architecture at the entrypoint, run as nonroot (65532) on the
// base's files; and the linux/amd64 image's binary, unpacked, runs:
// `pickup run` on embedded defaults in the image's working directory (as
// the image's user when the test runs as root, as a container runtime
// would), then `pickup health` against its admin address, then SIGTERM
// and exit 0.
//
// With PICKUP_IMAGE naming a build's output (make test sets it to
// bin/image, which `make image` has just built), that build is the first
// and the test builds once more; without it, it builds twice. The image
// cannot be run as a container here (no engine), so its binary runs on the
// host, with the image's environment.
func TestImage(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	first := os.Getenv("PICKUP_IMAGE")
	if first == "" {
		first = buildImage(t, root, t.TempDir())
	}
	second := buildImage(t, root, t.TempDir())
	digest := readDigest(t, first)
	if again := readDigest(t, second); again != digest {
		t.Fatalf("two builds of the image differ: %s (%s) and %s (%s); did the sources change between them?", digest, first, again, second)
	}
	t.Logf("image %s, the same on two builds", digest)

	l := ociLayout{dir: filepath.Join(first, "oci")}
	var top ociIndex
	l.readJSON(t, "index.json", nil, &top)
	if len(top.Manifests) != 1 || top.Manifests[0].Digest != digest || top.Manifests[0].MediaType != mediaTypeIndex {
		t.Fatalf("index.json lists %+v, want one %s %s", top.Manifests, mediaTypeIndex, digest)
	}
	var idx ociIndex
	l.readJSON(t, "", &top.Manifests[0], &idx)
	var platforms []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			t.Fatalf("index entry %s has no platform", m.Digest)
		}
		platforms = append(platforms, m.Platform.OS+"/"+m.Platform.Architecture)
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Fatalf("index platforms %v, want %v", platforms, want)
	}

	for _, m := range idx.Manifests {
		t.Run(m.Platform.Architecture, func(t *testing.T) {
			img := l.unpack(t, m)
			img.checkBase(t)
			bin := img.checkBinary(t, m.Platform.Architecture)
			if m.Platform.Architecture != runtime.GOARCH || runtime.GOOS != "linux" {
				t.Logf("%s: checked, not run (this is %s/%s)", bin, runtime.GOOS, runtime.GOARCH)
				return
			}
			img.run(t)
		})
	}
}

// buildImage runs scripts/build-image.sh into out and returns out.
func buildImage(t *testing.T, root, out string) string {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(filepath.Join(root, "scripts", "build-image.sh"), out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-image.sh: %v\n%s", err, b)
	}
	t.Logf("built the image into %s in %v", out, time.Since(start).Round(100*time.Millisecond))
	return out
}

func readDigest(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "digest"))
	if err != nil {
		t.Fatalf("no image built at %s: %v", dir, err)
	}
	d := strings.TrimSpace(string(b))
	if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
		t.Fatalf("%s/digest holds %q, not a sha256 digest", dir, d)
	}
	return d
}

const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	// The base's name: a host that cannot resolve, so that an image built
	// on it was built from ko's cache.
	baseNamePrefix = "pickup-base.invalid/"
)

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type ociIndex struct {
	MediaType string          `json:"mediaType"`
	Manifests []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	MediaType   string            `json:"mediaType"`
	Config      ociDescriptor     `json:"config"`
	Layers      []ociDescriptor   `json:"layers"`
	Annotations map[string]string `json:"annotations"`
}

type ociConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		User       string   `json:"User"`
		Entrypoint []string `json:"Entrypoint"`
		Env        []string `json:"Env"`
		WorkingDir string   `json:"WorkingDir"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// ociLayout reads an OCI image layout, checking every blob against its
// descriptor's digest and size.
type ociLayout struct{ dir string }

func (l ociLayout) blob(t *testing.T, d ociDescriptor) []byte {
	t.Helper()
	hexDigest, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok || len(hexDigest) != 64 || strings.ContainsAny(hexDigest, "/.") {
		t.Fatalf("descriptor digest %q", d.Digest)
	}
	b, err := os.ReadFile(filepath.Join(l.dir, "blobs", "sha256", hexDigest))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hexDigest || int64(len(b)) != d.Size {
		t.Fatalf("blob %s: %d bytes hashing to %x, want %d bytes", d.Digest, len(b), sum, d.Size)
	}
	return b
}

// readJSON decodes the layout's file name, or the blob d when name is empty.
func (l ociLayout) readJSON(t *testing.T, name string, d *ociDescriptor, v any) {
	t.Helper()
	var b []byte
	var err error
	if name != "" {
		b, err = os.ReadFile(filepath.Join(l.dir, name))
	} else {
		b = l.blob(t, *d)
	}
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatalf("read %s%s: %v", name, d.digestOrEmpty(), err)
	}
}

func (d *ociDescriptor) digestOrEmpty() string {
	if d == nil {
		return ""
	}
	return d.Digest
}

// unpackedImage is one platform's image: its config and its layers
// applied in order into rootfs, with the tar header of every entry.
type unpackedImage struct {
	config  ociConfig
	rootfs  string
	headers map[string]*tar.Header
	asRoot  bool
}

func (l ociLayout) unpack(t *testing.T, d ociDescriptor) *unpackedImage {
	t.Helper()
	var m ociManifest
	l.readJSON(t, "", &d, &m)
	if m.MediaType != mediaTypeManifest {
		t.Fatalf("manifest media type %q", m.MediaType)
	}
	if base := m.Annotations["org.opencontainers.image.base.name"]; !strings.HasPrefix(base, baseNamePrefix) {
		t.Errorf("base image %q, want one named %s... (found in ko's cache, never pulled)", base, baseNamePrefix)
	}
	img := &unpackedImage{headers: map[string]*tar.Header{}, asRoot: os.Geteuid() == 0}
	l.readJSON(t, "", &m.Config, &img.config)
	if img.config.OS != d.Platform.OS || img.config.Architecture != d.Platform.Architecture {
		t.Fatalf("config is for %s/%s, the index says %s/%s", img.config.OS, img.config.Architecture, d.Platform.OS, d.Platform.Architecture)
	}
	if len(img.config.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("%d diff_ids for %d layers", len(img.config.RootFS.DiffIDs), len(m.Layers))
	}
	// Not t.TempDir: its parent is 0700, which nonroot could not cross.
	dir, err := os.MkdirTemp("", "pickup-image-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	img.rootfs = dir
	var total int64
	for i, ld := range m.Layers {
		if ld.MediaType != mediaTypeLayer {
			t.Fatalf("layer %s media type %q", ld.Digest, ld.MediaType)
		}
		diffID, err := img.applyLayer(l.blob(t, ld))
		if err != nil {
			t.Fatalf("layer %s: %v", ld.Digest, err)
		}
		if diffID != img.config.RootFS.DiffIDs[i] {
			t.Fatalf("layer %s unpacks to %s, the config says %s", ld.Digest, diffID, img.config.RootFS.DiffIDs[i])
		}
		total += ld.Size
	}
	t.Logf("%s/%s: %d layers, %.1f MB compressed", d.Platform.OS, d.Platform.Architecture, len(m.Layers), float64(total)/1e6)
	return img
}

// applyLayer unpacks a gzipped tar into the rootfs and returns the
// uncompressed tar's digest. Only what the image's layers hold is
// accepted: directories and regular files at local paths.
func (img *unpackedImage) applyLayer(gz []byte) (string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return "", err
	}
	h := sha256.New()
	tr := tar.NewReader(io.TeeReader(zr, h))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "/"), "/")
		if !filepath.IsLocal(name) || strings.HasPrefix(filepath.Base(name), ".wh.") {
			return "", fmt.Errorf("entry %q: not a plain local path", hdr.Name)
		}
		path := filepath.Join(img.rootfs, name)
		mode := os.FileMode(hdr.Mode & 0o777)
		if hdr.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
				_, err = io.Copy(f, tr)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		default:
			err = fmt.Errorf("type %q not expected", hdr.Typeflag)
		}
		if err == nil {
			err = os.Chmod(path, mode)
		}
		if err == nil && img.asRoot {
			err = os.Lchown(path, hdr.Uid, hdr.Gid)
		}
		if err != nil {
			return "", fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		img.headers[name] = hdr
	}
	// The gzip stream's end, and its checksum, come after the tar's.
	if _, err := io.Copy(h, zr); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func (img *unpackedImage) file(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(img.rootfs, name))
	if err != nil {
		t.Fatalf("the image has no %s: %v", name, err)
	}
	return b
}

// checkBase checks what the base gives: the user, its files, the CA
// bundle, /tmp.
func (img *unpackedImage) checkBase(t *testing.T) {
	t.Helper()
	if got := img.config.Config.User; got != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (nonroot)", got)
	}
	if !bytes.Contains(img.file(t, "etc/passwd"), []byte("\nnonroot:x:65532:65532:")) {
		t.Errorf("/etc/passwd has no nonroot 65532:\n%s", img.file(t, "etc/passwd"))
	}
	if !bytes.Contains(img.file(t, "etc/group"), []byte("\nnonroot:x:65532:\n")) {
		t.Errorf("/etc/group has no nonroot 65532:\n%s", img.file(t, "etc/group"))
	}
	ca := img.file(t, "etc/ssl/certs/ca-certificates.crt")
	if mine, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil && !bytes.Equal(ca, mine) {
		t.Errorf("the image's CA bundle is not this machine's /etc/ssl/certs/ca-certificates.crt")
	}
	if !x509.NewCertPool().AppendCertsFromPEM(ca) {
		t.Errorf("the image's CA bundle holds no certificate")
	}
	if h := img.headers["tmp"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode&0o7777 != 0o1777 {
		t.Errorf("/tmp: %+v, want a directory with mode 1777", h)
	}
	wd := strings.TrimPrefix(img.config.Config.WorkingDir, "/")
	if h := img.headers[wd]; h == nil || h.Typeflag != tar.TypeDir || h.Uid != 65532 || h.Gid != 65532 {
		t.Errorf("working directory %q: %+v, want a directory owned by 65532:65532", img.config.Config.WorkingDir, h)
	}
	for name, h := range img.headers {
		if !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: time stamp %v, want 0 (reproducible)", name, h.ModTime)
		}
	}
}

// checkBinary checks that the entrypoint is pickup, a static, stripped
// ELF executable for arch built by this module with -trimpath, and returns
// its path.
func (img *unpackedImage) checkBinary(t *testing.T, arch string) string {
	t.Helper()
	if ep := img.config.Config.Entrypoint; !slices.Equal(ep, []string{"/ko-app/pickup"}) {
		t.Fatalf("entrypoint %q, want [/ko-app/pickup]", ep)
	}
	bin := filepath.Join(img.rootfs, "ko-app", "pickup")
	if h := img.headers["ko-app/pickup"]; h == nil || h.Mode&0o111 == 0 {
		t.Fatalf("/ko-app/pickup: %+v, want an executable file", h)
	}
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("/ko-app/pickup is not ELF: %v", err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != machine || f.Type != elf.ET_EXEC {
		t.Errorf("/ko-app/pickup: %v %v %v, want ELFCLASS64 %v ET_EXEC", f.Class, f.Machine, f.Type, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("/ko-app/pickup asks for a dynamic loader: it must be static (the base has no libc)")
		}
	}
	// Go leaves -ldflags out of the build info under -trimpath: what -s
	// and -w strip is checked instead.
	if f.Section(".symtab") != nil {
		t.Errorf("/ko-app/pickup has a symbol table: not built with -ldflags -s")
	}
	if f.Section(".debug_info") != nil {
		t.Errorf("/ko-app/pickup has DWARF: not built with -ldflags -w")
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if bi.Path != "github.com/pickup-ipfs/pickup/cmd/pickup" || settings["GOOS"] != "linux" || settings["GOARCH"] != arch ||
		settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("/ko-app/pickup: %s built with %v; want cmd/pickup, linux/%s, CGO_ENABLED=0, -trimpath", bi.Path, settings, arch)
	}
	return bin
}

// run starts the image's pickup as its entrypoint would run in a
// container: the config's environment, its working directory, its user
// when the test may switch to it (as root); the servers on loopback ports
// of their choosing.
func (img *unpackedImage) run(t *testing.T) {
	t.Helper()
	bin := filepath.Join(img.rootfs, "ko-app", "pickup")
	wd := filepath.Join(img.rootfs, img.config.Config.WorkingDir)
	env := append(slices.Clone(img.config.Config.Env),
		"HOME="+wd,
		"PICKUP_HTTP_ADDR=127.0.0.1:0",
		"PICKUP_SERVE_ADDR=127.0.0.1:0",
		"PICKUP_SERVE_LIBP2P_LISTEN=/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1",
		"PICKUP_ADMIN_ADDR=127.0.0.1:0",
	)
	// The config's user, numeric as checkBase wants it.
	var uid, gid uint32
	if _, err := fmt.Sscanf(img.config.Config.User, "%d:%d", &uid, &gid); err != nil {
		t.Fatalf("user %q is not uid:gid: %v", img.config.Config.User, err)
	}
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = wd, env
		if img.asRoot {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		}
		return cmd
	}

	run := command("run")
	var stdout, stderr telemetrytest.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			run.Process.Kill()
			<-done
		}
	})

	// `pickup run` prints "admin:  http://ADDR/metrics, ..." once it listens.
	var admin string
	deadline := time.After(60 * time.Second)
	for admin == "" {
		for _, line := range strings.Split(stdout.String(), "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "admin:  http://"); ok {
				admin, _, _ = strings.Cut(rest, "/")
			}
		}
		if admin != "" {
			break
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("pickup run exited at start: %v\n%s%s", err, stdout.String(), stderr.String())
		case <-deadline:
			t.Fatalf("pickup run printed no admin address within 60s:\n%s%s", stdout.String(), stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}

	// Ready soon after it listens; health is asked until then.
	var out []byte
	var err error
	waitUntil(t, 60*time.Second, "pickup health "+admin, func() bool {
		out, err = command("health", admin).CombinedOutput()
		return err == nil
	})
	t.Logf("pickup health %s: %s", admin, bytes.TrimSpace(out))
	if fi, err := os.Stat(filepath.Join(wd, "data", "events.db")); err != nil {
		t.Errorf("pickup run kept no event log in its working directory: %v", err)
	} else if st := fi.Sys().(*syscall.Stat_t); img.asRoot && st.Uid != uid {
		t.Errorf("pickup run wrote its event log as uid %d, want the image's %d", st.Uid, uid)
	}

	run.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("pickup run after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("pickup run did not stop within 45s of SIGTERM")
	}
}
