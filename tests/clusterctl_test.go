package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/api"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

// clusterCtlBin finds ipfs-cluster-ctl v1.1.6, which `make tools` builds
// into .tools/bin (scripts/build-ipfs-cluster-ctl.sh), or one on PATH, or
// skips the test.
func clusterCtlBin(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs(filepath.Join("..", ".tools", "bin", "ipfs-cluster-ctl")); err == nil {
		if _, err = os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("ipfs-cluster-ctl"); err == nil {
		return p
	}
	t.Skip("ipfs-cluster-ctl is not built: `make tools` (or `make cluster-ctl`) builds it into .tools/bin")
	return ""
}

// clusterCtl runs ipfs-cluster-ctl against one pickup API as one user.
type clusterCtl struct {
	t          *testing.T
	bin, host  string
	user, pass string
}

// ctlResult is what a run of ipfs-cluster-ctl printed, and how it exited.
type ctlResult struct {
	stdout, stderr string
	code           int
}

func (r ctlResult) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "stderr:\n" + r.stderr
}

// run runs one command. ipfs-cluster-ctl wants --force-http with
// --basic-auth (it assumes https otherwise).
func (x clusterCtl) run(args ...string) ctlResult {
	x.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := append([]string{"--host", x.host, "--force-http", "--basic-auth", x.user + ":" + x.pass}, args...)
	cmd := exec.CommandContext(ctx, x.bin, full...)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	r := ctlResult{stdout: out.String(), stderr: errs.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		x.t.Fatalf("ipfs-cluster-ctl %s: %v", strings.Join(args, " "), err)
	}
	x.t.Logf("$ ipfs-cluster-ctl %s\n%s", strings.Join(args, " "), r)
	return r
}

// ok runs a command that must succeed and returns its stdout.
func (x clusterCtl) ok(args ...string) string {
	x.t.Helper()
	r := x.run(args...)
	if r.code != 0 {
		x.t.Fatalf("ipfs-cluster-ctl %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// fails runs a command the server must refuse: ipfs-cluster-ctl exits 2
// ("call went fine, response has an error") and prints the code and the
// message, which must hold the reason.
func (x clusterCtl) fails(code int, message string, args ...string) {
	x.t.Helper()
	r := x.run(args...)
	want := "An error occurred:\n  Code: " + strconv.Itoa(code) + "\n  Message: "
	if r.code != 2 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, message) {
		x.t.Fatalf("ipfs-cluster-ctl %s: want exit 2 and %q ... %q; got %s", strings.Join(args, " "), want, message, r)
	}
}

// status is the status line `status CID` prints for pickup's one peer.
func (x clusterCtl) status(c cid.Cid) string {
	x.t.Helper()
	out := x.ok("status", c.String())
	_, line, _ := strings.Cut(out, "\n")
	return strings.TrimSuffix(line, "\n")
}

// waitStatus waits until `status CID` says want.
func (x clusterCtl) waitStatus(c cid.Cid, want string) string {
	x.t.Helper()
	var line string
	waitUntil(x.t, 90*time.Second, c.String()+" "+want, func() bool {
		line = x.status(c)
		return strings.Contains(line, ": "+want)
	})
	return line
}

// rootOf is the root of the DAG c.file(size, seed) would make, made
// elsewhere: the origin does not have it until c.file is called.
func rootOf(t *testing.T, size int64, seed uint64) cid.Cid {
	t.Helper()
	root, err := ipfstest.File(context.Background(), ipfstest.NewMemBlockstore(), ipfstest.FileOptions{Size: size, Seed: seed, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// peerPattern is how ipfs-cluster-ctl prints a GlobalPinInfo's entry for
// pickup's peer: name, status (and the error), time, attempts, priority.
func peerPattern(status string) string {
	return `    > pickup {15}: ` + status + ` \| \d{4}-\d\d-\d\dT[0-9:.]+Z \| Attempts: \d+ \| Priority: false`
}

// peerLine matches one such line.
func peerLine(status string) *regexp.Regexp {
	return regexp.MustCompile(`^` + peerPattern(status) + `$`)
}

// TestClusterCtl: ipfs-cluster's own CLI, ipfs-cluster-ctl v1.1.6, works
// against `pickup run` for every pin command: pin add (with a name,
// metadata, --wait, as a CID and as an /ipfs/ path), status of one,
// several and every pin (with a filter), pin ls, pin rm, recover of a pin
// that failed for good (one and all), and refusals, which it prints with
// their code and reason. The Go client's POST /pins/{cid} form, which the
// CLI does not send, is sent as it sends it.
func TestClusterCtl(t *testing.T) {
	bin := clusterCtlBin(t)
	c := newCluster(t, clusterOptions{})
	// Small enough that a 1 MiB DAG fails for good (too_big).
	run := c.start("run", []string{"run"}, "PICKUP_MAX_CAR_BYTES=262144")
	host, port, err := net.SplitHostPort(strings.TrimPrefix(run.api(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	ctl := clusterCtl{t: t, bin: bin, host: "/ip4/" + host + "/tcp/" + port, user: "alice", pass: c.token}

	small := c.file(20<<10, 21)
	other := c.file(30<<10, 22)
	viaGo := c.file(10<<10, 23)
	big := c.file(1<<20, 24)
	missing := rootOf(t, 40<<10, 25)
	missing2 := rootOf(t, 50<<10, 26)
	unknown := rootOf(t, 60<<10, 27)

	// pin add, with a name and metadata, waiting until pinned: the status
	// it prints at the end is pinned.
	out := ctl.ok("pin", "add", "--name", "hello", "--metadata", "app=photos", "--metadata", "team=a", "--wait", "--wait-timeout", "2m", small.String())
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || lines[0] != small.String()+" | hello:" || !peerLine("PINNED").MatchString(lines[1]) {
		t.Fatalf("pin add --wait printed %q", out)
	}
	// ... as an /ipfs/ path, with the options pickup accepts and ignores
	// (a replication factor, allocations to a peer, an expiry).
	out = ctl.ok("pin", "add", "--replication", "3", "--allocations", "12D3KooWR3DeCKahEqXtP8KvuG3XBeLZTU55yktXSmy8g4Phh6BV",
		"--expire-in", "1h", "--wait", "--wait-timeout", "2m", "/ipfs/"+other.String())
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 2 || lines[0] != other.String()+":" || !peerLine("PINNED").MatchString(lines[1]) {
		t.Fatalf("pin add /ipfs/ printed %q", out)
	}
	// The Go client's Pin: POST /pins/{cid} with PinOptions.ToQuery.
	req, _ := http.NewRequest(http.MethodPost, run.api()+"/pins/"+viaGo.String()+
		"?meta-k=v&mode=recursive&name=go&replication-max=0&replication-min=0&shard-size=0&user-allocations=", nil)
	req.SetBasicAuth("alice", c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	p := decodeBody[api.ClusterPin](t, resp)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || p.CID != viaGo.String() || p.Name != "go" || p.Metadata["k"] != "v" {
		t.Fatalf("POST /pins/{cid}: %d %+v", resp.StatusCode, p)
	}
	ctl.waitStatus(viaGo, "PINNED")

	// status of one, of several (in the order asked), of every pin.
	if line := ctl.status(small); !peerLine("PINNED").MatchString(line) {
		t.Errorf("status printed %q", line)
	}
	if out := ctl.ok("status", "--local", small.String()); !strings.HasPrefix(out, small.String()+" | hello:\n") || !strings.Contains(out, ": PINNED |") {
		t.Errorf("status --local printed %q", out)
	}
	out = ctl.ok("status", unknown.String(), small.String(), other.String())
	want := regexp.MustCompile(`^` + unknown.String() + `:\n` + peerPattern("UNPINNED") + `\n` +
		small.String() + ` \| hello:\n` + peerPattern("PINNED") + `\n` +
		other.String() + `:\n` + peerPattern("PINNED") + `\n$`)
	if !want.MatchString(out) {
		t.Errorf("status of three printed %q", out)
	}
	for _, args := range [][]string{{"status"}, {"status", "--filter", "pinned"}} {
		out = ctl.ok(args...)
		for _, root := range []cid.Cid{small, other, viaGo} {
			if !strings.Contains(out, root.String()) {
				t.Errorf("%v does not list %s: %q", args, root, out)
			}
		}
		if strings.Count(out, "    > pickup") != 3 {
			t.Errorf("%v printed %q, want 3 pins", args, out)
		}
	}
	// The metadata, as JSON.
	var gpi struct {
		CID      string            `json:"cid"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(ctl.ok("--enc", "json", "status", small.String())), &gpi); err != nil {
		t.Fatal(err)
	}
	if gpi.CID != small.String() || gpi.Metadata["app"] != "photos" || gpi.Metadata["team"] != "a" {
		t.Errorf("status --enc json: %+v", gpi)
	}

	// pin ls: the pinset, one line a pin.
	out = ctl.ok("pin", "ls")
	pinLine := func(root cid.Cid, name, meta string) string {
		return root.String() + " | " + name + " | PIN | Repl. Factor: -1 | Allocations: [everywhere] | Recursive | Metadata: " + meta + " | Exp: ∞ | Added: "
	}
	for _, l := range []string{pinLine(small, "hello", "yes"), pinLine(other, "", "no"), pinLine(viaGo, "go", "yes")} {
		if !strings.Contains(out, "\n"+l) && !strings.HasPrefix(out, l) {
			t.Errorf("pin ls lacks %q:\n%s", l, out)
		}
	}
	if filtered := ctl.ok("pin", "ls", "--filter", "pin"); filtered != out {
		t.Errorf("pin ls --filter pin printed %q, want what pin ls printed", filtered)
	}
	if out = ctl.ok("pin", "ls", small.String()); !strings.HasPrefix(out, pinLine(small, "hello", "yes")) {
		t.Errorf("pin ls CID printed %q", out)
	}

	// A DAG over the limit fails for good: --wait says so and exits 1; the
	// status tells why.
	r := ctl.run("pin", "add", "--wait", "--wait-timeout", "2m", big.String())
	if r.code != 1 || !strings.Contains(r.stderr, "error waiting for pin status: error has occurred while attempting to reach status: pinned") {
		t.Fatalf("pin add --wait of a DAG too big: %s", r)
	}
	if line := ctl.status(big); !peerLine(`PIN_ERROR: too_big: [^|]+`).MatchString(line) {
		t.Errorf("status of a pin too big printed %q", line)
	}
	if out = ctl.ok("status", "--filter", "pin_error"); strings.Count(out, "    > pickup") != 1 || !strings.HasPrefix(out, big.String()+":\n") {
		t.Errorf("status --filter pin_error printed %q", out)
	}

	// A root the origin does not have fails for good too; once the origin
	// has it, recover queues the pin again, and it is pinned.
	ctl.ok("pin", "add", "--no-status", missing.String())
	ctl.waitStatus(missing, "PIN_ERROR")
	c.file(40<<10, 25)
	out = ctl.ok("recover", missing.String())
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 2 || lines[0] != missing.String()+":" ||
		!peerLine(`(PIN_QUEUED|PINNING|PINNED)`).MatchString(lines[1]) {
		t.Fatalf("recover printed %q, want the pin queued again", out)
	}
	ctl.waitStatus(missing, "PINNED")
	// recover with no CID recovers every pin in error: here the other
	// missing root, and the DAG too big (which fails again).
	ctl.ok("pin", "add", "--no-status", missing2.String())
	ctl.waitStatus(missing2, "PIN_ERROR")
	c.file(50<<10, 26)
	out = ctl.ok("recover")
	if !regexp.MustCompile(`(?m)^`+missing2.String()+`:\n    > pickup {15}: (PIN_QUEUED|PINNING|PINNED) `).MatchString(out) ||
		!strings.Contains(out, big.String()+":\n") || strings.Count(out, "    > pickup") != 2 {
		t.Fatalf("recover of every pin printed %q", out)
	}
	ctl.waitStatus(missing2, "PINNED")
	ctl.waitStatus(big, "PIN_ERROR")

	// pin rm, as a CID and as a path: unpinned, and gone from pin ls; again
	// is 404 in ipfs-cluster's words.
	for _, arg := range []string{small.String(), "/ipfs/" + other.String()} {
		out = ctl.ok("pin", "rm", arg)
		if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 2 || !peerLine("UNPINNED").MatchString(lines[1]) {
			t.Errorf("pin rm %s printed %q", arg, out)
		}
		ctl.fails(404, "pin is not part of the pinset", "pin", "rm", arg)
	}
	if out = ctl.ok("pin", "ls"); strings.Contains(out, small.String()) || strings.Contains(out, other.String()) || !strings.Contains(out, viaGo.String()) {
		t.Errorf("pin ls after pin rm printed %q", out)
	}

	// Refusals come back with their code and reason.
	ctl.fails(400, "has hash md5", "pin", "add", "bafk5kaiqlvauakv4jmvhnolrtwiraf6fsi")
	ctl.fails(400, "does not resolve paths inside them", "pin", "add", "/ipfs/"+viaGo.String()+"/a.txt")
	ctl.fails(400, "mode direct", "pin", "add", "--mode", "direct", viaGo.String())
	ctl.fails(404, "pin is not part of the pinset", "pin", "ls", unknown.String())
	// The commands beyond pinning are not served, and say so.
	ctl.fails(404, "pickup does not serve ipfs-cluster's GET /version", "version")
	ctl.fails(404, "pickup does not serve ipfs-cluster's GET /peers", "peers", "ls")
	wrong := ctl
	wrong.pass = "pickup_wrong"
	wrong.fails(401, "unauthorized: access denied", "status")
	wrong.fails(401, "unauthorized: access denied", "pin", "add", unknown.String())
	bob := ctl
	bob.user = "bob"
	bob.fails(401, "Basic credentials are <tenant>:<token>", "pin", "ls")
}
