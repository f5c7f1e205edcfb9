// Package telemetrytest reads what pickup's parts report, for tests: log
// lines written by concurrent goroutines, and the samples of a metrics
// registry, so that a test can assert on the figures and lines a user of
// the logs and /metrics would see.
package telemetrytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Buffer collects what goroutines write (JSON log lines, EMF lines, a
// command's output); it is safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines decodes everything written so far as JSON lines, failing the test
// on a line that is not a JSON object.
func (b *Buffer) Lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// Samples returns every sample of the registry as `name{l1="v1",...}` →
// value, labels sorted (`name{}` when there are none), and histograms as
// their `name_count{...}` and `name_sum{...}`.
func Samples(t testing.TB, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return Flatten(families)
}

// Scrape reads the samples of a /metrics page at url, as Samples does a
// registry's.
func Scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	families := make([]*dto.MetricFamily, 0, len(byName))
	for _, f := range byName {
		families = append(families, f)
	}
	return Flatten(families)
}

// Flatten turns metric families into samples, as Samples returns them.
func Flatten(families []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			ls := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[f.GetName()+ls] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[f.GetName()+ls] = m.Gauge.GetValue()
			case m.Untyped != nil:
				out[f.GetName()+ls] = m.Untyped.GetValue()
			case m.Histogram != nil:
				out[f.GetName()+"_count"+ls] = float64(m.Histogram.GetSampleCount())
				out[f.GetName()+"_sum"+ls] = m.Histogram.GetSampleSum()
			}
		}
	}
	return out
}
