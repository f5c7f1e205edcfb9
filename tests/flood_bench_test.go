package tests

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/internal/telemetry/telemetrytest"
)

// BenchmarkFlood is issue 18's flood, bounded, on loopback: `pickup run`
// with its default caps, 20,000 idle connections (each GET /pins, read the
// 401, hold the connection; opened again a second after the server closes
// it) and 2,000 slow-body clients (a POST /pins body a byte a second) from
// four load processes and 1,100 loopback addresses, for 60 s, while 10 pins
// of 64 MiB are requested and fetched. It reports the pins pinned, the worst
// /readyz latency (asked every 250 ms), the peak of the process's open
// descriptors (from /proc/PID/fd) against its API cap, the 503s served, the
// idle connections evicted, and whether the process lived. The targets:
// every pin pinned, /readyz within 1 s throughout, the process alive, its
// descriptors never above the cap plus what the rest of it holds.
func BenchmarkFlood(b *testing.B) {
	const (
		idle, slow = 20_000, 2_000
		loaders    = 4
		pins       = 10
		pinSize    = 64 << 20
		floodFor   = 60 * time.Second
	)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	// Each load process holds (idle+slow)/loaders connections, and Go
	// raises its soft limit to the hard one.
	if per := (idle + slow) / loaders; lim.Max < uint64(per+256) {
		b.Skipf("RLIMIT_NOFILE hard limit %d: a load process needs %d", lim.Max, per+256)
	}
	b.ReportAllocs()
	for b.Loop() {
		c := newCluster(b, clusterOptions{})
		roots := make([]cid.Cid, pins)
		for i := range roots {
			roots[i] = c.file(pinSize, uint64(7000+i))
		}
		run := c.start("run", []string{"run"}, "PICKUP_LOG_LEVEL=info")
		apiCap := int(min(8192, lim.Cur/2))
		m0 := telemetrytest.Scrape(b, "http://"+run.addrs["admin"]+"/metrics")
		base := run.openFDs()
		w := watchProcess(run, 250*time.Millisecond, true)
		addr := strings.TrimPrefix(run.api(), "http://")
		start := time.Now()
		var floods []*flood
		for i := range loaders {
			floods = append(floods, startFlood(b, addr, "-idle", strconv.Itoa(idle/loaders), "-slow", strconv.Itoa(slow/loaders),
				"-per-source", "20", "-pause", "1s", "-rate", "1500", "-duration", floodFor.String(),
				"-sources", fmt.Sprintf("127.%d.0.1", 30+i)))
		}
		// Let the flood build up (about 4 s at 1,500 connections a second
		// per process), then ask for the pins from 127.0.0.1.
		time.Sleep(8 * time.Second)
		ids := make([]string, pins)
		tries := 0
		for i, root := range roots {
			id, n := postPin(b, run.api(), c.token, root, 30*time.Second)
			ids[i], tries = id, tries+n
		}
		posted := time.Since(start)
		var pinnedMu sync.Mutex
		pinned := map[string]time.Duration{}
		waitUntil(b, 5*time.Minute, "every pin pinned", func() bool {
			for _, id := range ids {
				pinnedMu.Lock()
				_, done := pinned[id]
				pinnedMu.Unlock()
				if !done {
					if s, _ := pinStatus(run.api(), c.token, id); s == "pinned" {
						pinnedMu.Lock()
						pinned[id] = time.Since(start)
						pinnedMu.Unlock()
					}
				}
			}
			return len(pinned) == pins || !run.alive()
		})
		allPinned := time.Since(start)
		var total floodResult
		for _, f := range floods {
			r := f.wait(b)
			b.Logf("load process: %+v", r)
			total.Connects += r.Connects
			total.Shed += r.Shed
			total.Closed += r.Closed
			total.DialErrors += r.DialErrors
			total.ResetOrLost += r.ResetOrLost
			total.PeakHeld += r.PeakHeld
		}
		w.end()
		alive := run.alive()
		m := telemetrytest.Scrape(b, "http://"+run.addrs["admin"]+"/metrics")
		hwm := vmHWM(run.cmd.Process.Pid)
		shed := m[`pickup_http_connections_shed_total{reason="max_conns",server="api"}`] + m[`pickup_http_connections_shed_total{reason="max_conns_per_client",server="api"}`] -
			m0[`pickup_http_connections_shed_total{reason="max_conns",server="api"}`] - m0[`pickup_http_connections_shed_total{reason="max_conns_per_client",server="api"}`]
		evicted := m[`pickup_http_connections_evicted_total{server="api"}`]
		var failures int
		for _, id := range ids {
			if _, info := pinStatus(run.api(), c.token, id); info["failures"] != "" && info["failures"] != "0" {
				failures++
			}
		}
		b.ReportMetric(float64(len(pinned)), "pins_pinned")
		b.ReportMetric(float64(failures), "pins_with_failed_attempts")
		b.ReportMetric(float64(w.worst.Milliseconds()), "readyz_worst_ms")
		b.ReportMetric(float64(w.unready+w.unanswer), "readyz_not_ok")
		b.ReportMetric(float64(w.peakFDs), "peak_fds")
		b.ReportMetric(float64(apiCap), "api_cap")
		b.ReportMetric(float64(w.peakAPI), "peak_api_conns")
		b.ReportMetric(shed, "shed_503")
		b.ReportMetric(evicted, "evicted_idle")
		b.ReportMetric(float64(total.Connects), "flood_connects")
		b.ReportMetric(float64(total.PeakHeld), "flood_peak_held")
		b.ReportMetric(float64(hwm>>20), "peak_rss_MiB")
		b.ReportMetric(allPinned.Seconds(), "all_pinned_s")
		alive01 := 0.0
		if alive {
			alive01 = 1
		}
		b.ReportMetric(alive01, "alive")
		b.Logf("flood: %d idle + %d slow-body clients from %d processes for %v: %d connections opened, %d answered 503 (client count %d), %d idle evicted, %d closed on a held client, %d dial errors, %d reset or lost; the flood held at most %d at once",
			idle, slow, loaders, floodFor, total.Connects, int(shed), total.Shed, int(evicted), total.Closed, total.DialErrors, total.ResetOrLost, total.PeakHeld)
		b.Logf("pins: %d of %d pinned (%d with a failed attempt), requested by %v in %d tries, all pinned %v after the flood began",
			len(pinned), pins, failures, posted.Round(time.Millisecond), tries, allPinned.Round(time.Millisecond))
		b.Logf("/readyz: asked %d times, %d not ready, %d unanswered within 5 s, worst %v; descriptors: %d at start, peak %d; API connections at most %d (cap %d, RLIMIT_NOFILE %d); peak RSS %d MiB; alive %v",
			w.asked, w.unready, w.unanswer, w.worst.Round(time.Millisecond), base, w.peakFDs, w.peakAPI, apiCap, lim.Cur, hwm>>20, alive)
		if w.peakAPI > apiCap {
			b.Errorf("the API held %d connections, over its cap of %d", w.peakAPI, apiCap)
		}
		if !alive {
			b.Errorf("pickup run exited: %v", run.err)
		}
		if len(pinned) != pins {
			b.Errorf("%d of %d pins pinned", len(pinned), pins)
		}
	}
}

// vmHWM is a process's peak resident set, in bytes, from /proc.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
