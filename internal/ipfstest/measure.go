package ipfstest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Benchmarks measure memory in a child process, so that the peak belongs
// to the code measured and not to the DAG builders and servers around it.
// The parent calls RunChild; the child is a test of the same binary that
// reads its parameters with ChildParams and reports with ReportToParent.

const (
	childEnv     = "IPFSTEST_CHILD_PARAMS"
	resultPrefix = "IPFSTEST_CHILD_RESULT "
)

// PeakRSS returns the peak resident set size of this process (VmHWM).
func PeakRSS() (int64, error) { return procStatus("VmHWM:") }

// RSS returns the resident set size of this process now (VmRSS).
func RSS() (int64, error) { return procStatus("VmRSS:") }

func procStatus(field string) (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read /proc/self/status: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, field) {
			continue
		}
		fields := strings.Fields(strings.TrimPrefix(line, field))
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("unexpected %q", line)
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		return kb << 10, err
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// CPUTime returns the CPU time (user and system) this process has used.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RunChild runs the test named test of this test binary in a child
// process, with params, and returns the metrics it reported.
func RunChild(ctx context.Context, test string, params map[string]string) (map[string]float64, error) {
	enc, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+string(enc))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("child %s: %w\n%s", test, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), resultPrefix); ok {
			var m map[string]float64
			if err := json.Unmarshal([]byte(rest), &m); err != nil {
				return nil, fmt.Errorf("child %s result: %w", test, err)
			}
			return m, nil
		}
	}
	return nil, fmt.Errorf("child %s reported nothing:\n%s", test, out)
}

// ChildParams returns the parameters RunChild gave this process, and
// whether it is such a child at all.
func ChildParams() (map[string]string, bool) {
	enc := os.Getenv(childEnv)
	if enc == "" {
		return nil, false
	}
	var params map[string]string
	if err := json.Unmarshal([]byte(enc), &params); err != nil {
		return nil, false
	}
	return params, true
}

// Fetch measures one fetch in a benchmark's child: the resident memory
// before it is set up, then the time, processor time and peak memory of
// the fetch itself.
type Fetch struct {
	startRSS int64
	began    time.Time
	cpu      time.Duration
}

// StartFetch notes the memory before the fetch is set up.
func StartFetch(t testing.TB) *Fetch {
	rss, err := RSS()
	if err != nil {
		t.Fatal(err)
	}
	return &Fetch{startRSS: rss}
}

// Begin starts the clocks, just before the fetch.
func (m *Fetch) Begin() { m.began, m.cpu = time.Now(), CPUTime() }

// Report tells the parent how the fetch of bytes went since Begin: MB/s,
// CPU-seconds and MB per CPU-second, seconds, bytes, and the peak and
// start RSS in MiB; and the figures in more, if any.
func (m *Fetch) Report(t testing.TB, bytes int64, more map[string]float64) {
	elapsed, cpu := time.Since(m.began), CPUTime()-m.cpu
	peak, err := PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	metrics := map[string]float64{
		"MB/s":          float64(bytes) / elapsed.Seconds() / 1e6,
		"CPU-s":         cpu.Seconds(),
		"MB/CPU-s":      float64(bytes) / cpu.Seconds() / 1e6,
		"seconds":       elapsed.Seconds(),
		"bytes":         float64(bytes),
		"peak-RSS-MiB":  float64(peak) / (1 << 20),
		"start-RSS-MiB": float64(m.startRSS) / (1 << 20),
	}
	maps.Copy(metrics, more)
	ReportToParent(metrics)
	t.Log("fetched", bytes, "bytes in", elapsed, "peak RSS", peak>>20, "MiB")
}

// ReportToParent prints metrics for RunChild to read.
func ReportToParent(metrics map[string]float64) {
	enc, _ := json.Marshal(metrics)
	fmt.Println(resultPrefix + string(enc))
}

// CARFileGateway serves a CAR file as a trustless gateway serves the CAR
// of its root (GET /ipfs/{cid}, dfs order, no duplicates): the cheapest
// honest origin there is, to measure a fetcher and nothing else.
type CARFileGateway struct {
	srv *httptest.Server
}

// StartCARFileGateway serves the CAR file at path for any /ipfs/ path.
func StartCARFileGateway(path string) *CARFileGateway {
	return &CARFileGateway{srv: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/ipfs/") {
			http.NotFound(w, r)
			return
		}
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.ipld.car; version=1; order=dfs; dups=n")
		// With a length, the file goes out by sendfile: the origin costs
		// next to nothing.
		w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		_, _ = io.Copy(w, f)
	}))}
}

// NewCARFileGateway starts one for a test and closes it when the test
// ends.
func NewCARFileGateway(t testing.TB, path string) *CARFileGateway {
	g := StartCARFileGateway(path)
	t.Cleanup(g.Close)
	return g
}

// URL is its base URL.
func (g *CARFileGateway) URL() string { return g.srv.URL }

// Close stops it.
func (g *CARFileGateway) Close() {
	g.srv.CloseClientConnections()
	g.srv.Close()
}

// BenchRounds is how many times a benchmark that compares two noisy runs
// repeats each: PICKUP_BENCH_ROUNDS, 5 by default.
func BenchRounds() int {
	if n, err := strconv.Atoi(os.Getenv("PICKUP_BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 5
}

// Medians returns, for every metric the runs reported, its median over
// them (of an even number, the mean of the middle two).
func Medians(runs []map[string]float64) map[string]float64 {
	values := map[string][]float64{}
	for _, run := range runs {
		for k, v := range run {
			values[k] = append(values[k], v)
		}
	}
	medians := make(map[string]float64, len(values))
	for k, vs := range values {
		slices.Sort(vs)
		mid := len(vs) / 2
		if len(vs)%2 == 1 {
			medians[k] = vs[mid]
		} else {
			medians[k] = (vs[mid-1] + vs[mid]) / 2
		}
	}
	return medians
}
