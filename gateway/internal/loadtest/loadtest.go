// Package loadtest drives a gateway over HTTP from another process and
// measures it: requests per second and latency percentiles, closed-loop (as
// fast as a number of clients can go) or open-loop (a fixed rate, latency
// counted from when each request was due, so that a stalled server cannot
// hide its queue). The benchmarks in this package start the gateway on the
// real embedded stores and run the load from a second process, the test
// binary re-executed in the role of the client.
package loadtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Plan is one load run.
type Plan struct {
	// Method and URLs: each request takes the next URL in turn.
	Method string
	URLs   []string
	// Body makes the body of request i; nil sends none.
	Body func(i uint64) []byte
	// Header is sent with every request.
	Header http.Header
	// Duration bounds the run.
	Duration time.Duration
	// Clients is the number of concurrent clients of a closed-loop run.
	Clients int
	// Rate, when set, makes the run open-loop at this many requests per
	// second instead.
	Rate int
	// Want is the status every answer should have.
	Want int
}

// Result is what a run measured.
type Result struct {
	Requests int           `json:"requests"`
	Errors   int           `json:"errors"`
	Elapsed  time.Duration `json:"elapsed"`
	PerSec   float64       `json:"per_sec"`
	P50      time.Duration `json:"p50"`
	P99      time.Duration `json:"p99"`
	Max      time.Duration `json:"max"`
	// FirstError describes the first failed request, if any.
	FirstError string `json:"first_error,omitempty"`
}

func (r Result) String() string {
	return fmt.Sprintf("%d requests (%d failed) in %v: %.0f/s, p50 %v, p99 %v, max %v",
		r.Requests, r.Errors, r.Elapsed.Round(time.Millisecond), r.PerSec, r.P50, r.P99, r.Max)
}

// Run runs a plan.
func Run(ctx context.Context, p Plan) (Result, error) {
	if len(p.URLs) == 0 || p.Duration <= 0 || (p.Clients <= 0 && p.Rate <= 0) {
		return Result{}, fmt.Errorf("loadtest: plan needs URLs, a duration, and clients or a rate")
	}
	workers := p.Clients
	if p.Rate > 0 {
		workers = 512
	}
	tr := &http.Transport{MaxIdleConns: workers, MaxIdleConnsPerHost: workers, MaxConnsPerHost: 0, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var (
		next      atomic.Uint64
		mu        sync.Mutex
		latencies []time.Duration
		errors    int
		firstErr  string
	)
	record := func(lat []time.Duration, errs int, first string) {
		mu.Lock()
		latencies = append(latencies, lat...)
		errors += errs
		if firstErr == "" {
			firstErr = first
		}
		mu.Unlock()
	}
	do := func(due time.Time) (time.Duration, string) {
		i := next.Add(1) - 1
		var body io.Reader
		if p.Body != nil {
			body = bytes.NewReader(p.Body(i))
		}
		req, err := http.NewRequestWithContext(ctx, p.Method, p.URLs[i%uint64(len(p.URLs))], body)
		if err != nil {
			return 0, err.Error()
		}
		req.Header = p.Header.Clone()
		res, err := client.Do(req)
		if err != nil {
			return time.Since(due), err.Error()
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != p.Want {
			return time.Since(due), fmt.Sprintf("status %d: %s", res.StatusCode, b)
		}
		return time.Since(due), ""
	}

	start := time.Now()
	deadline := start.Add(p.Duration)
	var wg sync.WaitGroup
	if p.Rate <= 0 {
		for range p.Clients {
			wg.Go(func() {
				var lat []time.Duration
				errs, first := 0, ""
				for time.Now().Before(deadline) && ctx.Err() == nil {
					d, fail := do(time.Now())
					if fail != "" {
						errs++
						if first == "" {
							first = fail
						}
						continue
					}
					lat = append(lat, d)
				}
				record(lat, errs, first)
			})
		}
	} else {
		due := make(chan time.Time, workers)
		for range workers {
			wg.Go(func() {
				var lat []time.Duration
				errs, first := 0, ""
				for t := range due {
					d, fail := do(t)
					if fail != "" {
						errs++
						if first == "" {
							first = fail
						}
						continue
					}
					lat = append(lat, d)
				}
				record(lat, errs, first)
			})
		}
		interval := time.Second / time.Duration(p.Rate)
		for t := start; t.Before(deadline) && ctx.Err() == nil; t = t.Add(interval) {
			if wait := time.Until(t); wait > 0 {
				time.Sleep(wait)
			}
			due <- t
		}
		close(due)
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	r := Result{Requests: len(latencies) + errors, Errors: errors, Elapsed: elapsed, FirstError: firstErr,
		PerSec: float64(len(latencies)) / elapsed.Seconds()}
	if n := len(latencies); n > 0 {
		r.P50, r.P99, r.Max = latencies[n/2], latencies[min(n-1, n*99/100)], latencies[n-1]
	}
	return r, nil
}

// CID returns the i-th of a sequence of distinct dag-pb CIDs, cheaply.
func CID(seed string, i uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	sum := sha256.Sum256(append([]byte(seed), b[:]...))
	h, _ := mh.Encode(sum[:], mh.SHA2_256)
	return cid.NewCidV1(cid.DagProtobuf, h).String()
}
