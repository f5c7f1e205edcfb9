package dag_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
)

// hostileDAG is a UnixFS file of three levels: root, two inner nodes, 200
// raw leaves of 1 KiB.
func hostileDAG(t testing.TB) (blockstore.Blockstore, cid.Cid) {
	t.Helper()
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(context.Background(), bs, ipfstest.FileOptions{Size: 200 << 10, Seed: 42, ChunkSize: 1 << 10, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	return bs, root
}

// nthBlock returns the CID of the nth block (from 1) of the DAG's CAR.
func nthBlock(t testing.TB, bs blockstore.Blockstore, root cid.Cid, n int) cid.Cid {
	t.Helper()
	r := dag.NewCARReader(bytes.NewReader(export(t, bs, root)), dag.DefaultMaxBlockBytes)
	for i := 1; ; i++ {
		blk, err := r.Next()
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		if i == n {
			return blk.CID
		}
	}
}

// refusedURL is the URL of a server that is gone: connections are refused.
func refusedURL(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(nil)
	u := srv.URL
	srv.Close()
	return u
}

// TestHostileSources proves that a source that breaks a rule is caught, as
// the bytes stream, with the precise reason the worker records, and that
// the bytes it sent never reach a sink that is kept.
func TestHostileSources(t *testing.T) {
	t.Parallel()
	bs, root := hostileDAG(t)
	other, err := ipfstest.File(context.Background(), bs, ipfstest.FileOptions{Size: 5000, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	fast := dag.Limits{ChunkTimeout: 2 * time.Second}
	gw := func(opts ipfstest.GatewayOptions) func(t *testing.T) dag.Source {
		return func(t *testing.T) dag.Source { return gatewaySource(t, ipfstest.NewGateway(t, bs, opts).URL()) }
	}
	gwOver := func(store blockstore.Blockstore) func(t *testing.T) dag.Source {
		return func(t *testing.T) dag.Source {
			return gatewaySource(t, ipfstest.NewGateway(t, store, ipfstest.GatewayOptions{}).URL())
		}
	}
	kuboOver := func(store blockstore.Blockstore, tamper ipfstest.Tamper) func(t *testing.T) dag.Source {
		return func(t *testing.T) dag.Source { return kuboSource(t, ipfstest.NewKuboRPC(t, store, tamper).URL()) }
	}
	tests := []struct {
		name   string
		source func(t *testing.T) dag.Source
		limits dag.Limits
		want   pin.Reason
	}{
		{"corrupted leaf", gw(ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Corrupt: 50}}), dag.Limits{}, pin.ReasonBlockMismatch},
		{"corrupted root", gw(ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Corrupt: 1}}), dag.Limits{}, pin.ReasonBlockMismatch},
		{"corrupted inner node", gw(ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Corrupt: 2}}), dag.Limits{}, pin.ReasonBlockMismatch},
		{"block left out", gw(ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Drop: 50}}), dag.Limits{}, pin.ReasonMissingBlock},
		{"last block left out", gw(ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Drop: 203}}), dag.Limits{}, pin.ReasonMissingBlock},
		{"block sent twice", gw(ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Duplicate: 50}}), dag.Limits{}, pin.ReasonUnrequestedBlock},
		{"block nobody asked for", gw(ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Extra: true}}), dag.Limits{}, pin.ReasonUnrequestedBlock},
		{"oversized block", gw(ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Oversize: 50, OversizeBytes: dag.DefaultMaxBlockBytes + 1}}), dag.Limits{}, pin.ReasonBlockTooBig},
		{"wrong root", gw(ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Root: other}}), dag.Limits{}, pin.ReasonWrongRoot},
		{"stall mid-DAG", gw(ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{StallAt: 100}}), fast, pin.ReasonStalled},
		{"stall before the root", gw(ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{StallAt: 1}}), fast, pin.ReasonRootNotFound},
		{"gateway lacks a block", gwOver(ipfstest.Holes(bs, nthBlock(t, bs, root, 120))), dag.Limits{}, pin.ReasonMissingBlock},
		{"gateway lacks the root", gwOver(ipfstest.Holes(bs, root)), dag.Limits{}, pin.ReasonRootNotFound},
		{"gateway always rate limited", gw(ipfstest.GatewayOptions{RateLimited: 100}), dag.Limits{}, pin.ReasonSourcesFailed},
		{"gateway refuses connections", func(t *testing.T) dag.Source { return gatewaySource(t, refusedURL(t)) }, dag.Limits{}, pin.ReasonSourcesFailed},
		{"DAG over MAX_CAR_BYTES", gw(ipfstest.GatewayOptions{}), dag.Limits{MaxCARBytes: 100 << 10}, pin.ReasonTooBig},
		{"block over the block limit", gw(ipfstest.GatewayOptions{}), dag.Limits{MaxBlockBytes: 512}, pin.ReasonBlockTooBig},
		{"kubo sends a corrupted block", kuboOver(bs, ipfstest.Tamper{Corrupt: 50}), dag.Limits{}, pin.ReasonBlockMismatch},
		{"kubo lacks a block", kuboOver(ipfstest.Holes(bs, nthBlock(t, bs, root, 120)), ipfstest.Tamper{}), dag.Limits{}, pin.ReasonMissingBlock},
		{"kubo lacks the root", kuboOver(ipfstest.Holes(bs, root), ipfstest.Tamper{}), dag.Limits{}, pin.ReasonRootNotFound},
		{"kubo serves another DAG", kuboOver(bs, ipfstest.Tamper{Root: other}), dag.Limits{}, pin.ReasonWrongRoot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s sinks
			f := newFetcher(t, tt.limits, tt.source(t))
			_, sink, err := f.Fetch(context.Background(), dag.Request{Root: root}, s.open, nil)
			if err == nil {
				t.Fatal("fetch succeeded")
			}
			if sink != nil {
				t.Error("a failed fetch returned a sink")
			}
			if got := reasonOf(t, err); got != tt.want {
				t.Errorf("reason %s, want %s (%v)", got, tt.want, err)
			}
			for i, sk := range s.opened {
				if !sk.aborted {
					t.Errorf("sink %d was not aborted", i)
				}
			}
		})
	}
}

// TestRateLimitedThenServed proves that 429 with Retry-After is waited
// out and the DAG then fetched.
func TestRateLimitedThenServed(t *testing.T) {
	t.Parallel()
	bs, root := hostileDAG(t)
	for _, retryAfter := range []time.Duration{0, time.Second} {
		g := ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{RateLimited: 2, RetryAfter: retryAfter})
		var s sinks
		f := newFetcher(t, dag.Limits{}, gatewaySource(t, g.URL()))
		_, sink, err := f.Fetch(context.Background(), dag.Request{Root: root}, s.open, nil)
		if err != nil {
			t.Fatalf("Retry-After %s: %v", retryAfter, err)
		}
		if !bytes.Equal(sink.(*memorySink).buf.Bytes(), export(t, bs, root)) {
			t.Errorf("Retry-After %s: CAR differs from dag export", retryAfter)
		}
		if g.Requests() != 3 {
			t.Errorf("Retry-After %s: %d requests, want 3 (two refused, one served)", retryAfter, g.Requests())
		}
	}
}

// TestFallsBackToNextSource proves that a failing source is dropped for
// the attempt, its sink aborted, and the next source serves the DAG.
func TestFallsBackToNextSource(t *testing.T) {
	t.Parallel()
	bs, root := hostileDAG(t)
	hostile := gatewaySource(t, ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Corrupt: 150}}).URL())
	refused := gatewaySource(t, refusedURL(t))
	honest := kuboSource(t, ipfstest.NewKuboRPC(t, bs, ipfstest.Tamper{}).URL())
	var s sinks
	f := newFetcher(t, dag.Limits{}, refused, hostile, honest)
	res, sink, err := f.Fetch(context.Background(), dag.Request{Root: root}, s.open, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != honest.Name() {
		t.Errorf("served by %q, want %q", res.Source, honest.Name())
	}
	if !bytes.Equal(sink.(*memorySink).buf.Bytes(), export(t, bs, root)) {
		t.Error("CAR differs from dag export")
	}
	// The refused source never sent a block, so no sink was opened for it.
	if len(s.opened) != 2 || !s.opened[0].aborted || s.opened[1].aborted {
		t.Errorf("want the hostile source's sink aborted and the honest one's kept; got %d sinks", len(s.opened))
	}
}

// TestMostTellingReason proves the reason an attempt that fails
// everywhere is recorded with (see Fetcher.Fetch), and that failures that
// no source can change end the attempt without asking the others.
func TestMostTellingReason(t *testing.T) {
	t.Parallel()
	bs, root := hostileDAG(t)
	fast := dag.Limits{ChunkTimeout: 2 * time.Second}
	corrupt := func(t *testing.T) dag.Source {
		return gatewaySource(t, ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{Corrupt: 9}}).URL())
	}
	refused := func(t *testing.T) dag.Source { return gatewaySource(t, refusedURL(t)) }
	noRoot := func(t *testing.T) dag.Source {
		return gatewaySource(t, ipfstest.NewGateway(t, ipfstest.Holes(bs, root), ipfstest.GatewayOptions{}).URL())
	}
	kuboNoRoot := func(t *testing.T) dag.Source {
		return kuboSource(t, ipfstest.NewKuboRPC(t, ipfstest.Holes(bs, root), ipfstest.Tamper{}).URL())
	}
	stall := func(t *testing.T) dag.Source {
		return gatewaySource(t, ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{StallAt: 30}}).URL())
	}
	partial := func(t *testing.T) dag.Source {
		return kuboSource(t, ipfstest.NewKuboRPC(t, ipfstest.Holes(bs, nthBlock(t, bs, root, 60)), ipfstest.Tamper{}).URL())
	}
	tests := []struct {
		name       string
		sources    []func(t *testing.T) dag.Source
		limits     dag.Limits
		want       pin.Reason
		wantSource int // index of the source the failure names
	}{
		{"a hostile source is not hidden by a later refusal", []func(*testing.T) dag.Source{corrupt, refused}, dag.Limits{}, pin.ReasonBlockMismatch, 0},
		{"nor by an earlier one", []func(*testing.T) dag.Source{refused, corrupt}, dag.Limits{}, pin.ReasonBlockMismatch, 1},
		{"root not found only when no source has it", []func(*testing.T) dag.Source{noRoot, kuboNoRoot}, dag.Limits{}, pin.ReasonRootNotFound, 0},
		{"a refusal may hide the root: not permanent", []func(*testing.T) dag.Source{noRoot, refused}, dag.Limits{}, pin.ReasonSourcesFailed, 1},
		{"a partial DAG tells more than a stall", []func(*testing.T) dag.Source{stall, partial}, fast, pin.ReasonMissingBlock, 1},
		{"a stall tells more than a refusal", []func(*testing.T) dag.Source{refused, stall}, fast, pin.ReasonStalled, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var sources []dag.Source
			for _, mk := range tt.sources {
				sources = append(sources, mk(t))
			}
			var s sinks
			_, _, err := newFetcher(t, tt.limits, sources...).Fetch(context.Background(), dag.Request{Root: root}, s.open, nil)
			if got := reasonOf(t, err); got != tt.want {
				t.Fatalf("reason %s, want %s (%v)", got, tt.want, err)
			}
			fl, _ := errors.AsType[*dag.Failure](err)
			if fl.Source != sources[tt.wantSource].Name() {
				t.Errorf("failure names %q, want %q", fl.Source, sources[tt.wantSource].Name())
			}
			if got, want := fl.Reason.Permanent(), tt.want == pin.ReasonRootNotFound; got != want {
				t.Errorf("permanent = %v, want %v", got, want)
			}
			for _, src := range sources {
				if !bytes.Contains([]byte(err.Error()), []byte(src.Name())) {
					t.Errorf("message %q does not name source %q", err, src.Name())
				}
			}
		})
	}
}

// TestFailuresThatEndTheAttempt proves that too_big, unsupported_codec,
// timeout and storage failures stop at once: asking another source could
// not help, and would cost another download.
func TestFailuresThatEndTheAttempt(t *testing.T) {
	t.Parallel()
	bs, root := hostileDAG(t)
	tests := []struct {
		name   string
		first  func(t *testing.T) dag.Source
		limits dag.Limits
		sinks  *sinks
		want   pin.Reason
	}{
		{"too big", func(t *testing.T) dag.Source {
			return gatewaySource(t, ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{}).URL())
		}, dag.Limits{MaxCARBytes: 50 << 10}, &sinks{}, pin.ReasonTooBig},
		{"fetch timeout", func(t *testing.T) dag.Source {
			return gatewaySource(t, ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{StallAt: 20}}).URL())
		}, dag.Limits{FetchTimeout: 300 * time.Millisecond}, &sinks{}, pin.ReasonTimeout},
		{"sink cannot open", func(t *testing.T) dag.Source {
			return gatewaySource(t, ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{}).URL())
		}, dag.Limits{}, &sinks{err: errors.New("bucket gone")}, pin.ReasonStorage},
		{"sink fails mid-way", func(t *testing.T) dag.Source {
			return gatewaySource(t, ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{}).URL())
		}, dag.Limits{}, &sinks{failAt: 100 << 10}, pin.ReasonStorage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			second := ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{})
			f := newFetcher(t, tt.limits, tt.first(t), gatewaySource(t, second.URL()))
			_, sink, err := f.Fetch(context.Background(), dag.Request{Root: root}, tt.sinks.open, nil)
			if got := reasonOf(t, err); got != tt.want {
				t.Fatalf("reason %s, want %s (%v)", got, tt.want, err)
			}
			if sink != nil {
				t.Error("a failed fetch returned a sink")
			}
			if second.Requests() != 0 {
				t.Errorf("the second source was asked %d times", second.Requests())
			}
			for i, sk := range tt.sinks.opened {
				if !sk.aborted {
					t.Errorf("sink %d was not aborted", i)
				}
			}
		})
	}
}

// TestCancelIsNotAFailure proves that a fetch abandoned by its caller (the
// fetcher shutting down) is not recorded as a failure of the pin.
func TestCancelIsNotAFailure(t *testing.T) {
	t.Parallel()
	bs, root := hostileDAG(t)
	g := ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{Tamper: ipfstest.Tamper{StallAt: 10}})
	ctx, cancel := context.WithCancel(context.Background())
	var s sinks
	f := newFetcher(t, dag.Limits{}, gatewaySource(t, g.URL()), gatewaySource(t, g.URL()))
	go func() {
		for g.Requests() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, _, err := f.Fetch(ctx, dag.Request{Root: root}, s.open, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, ok := errors.AsType[*dag.Failure](err); ok {
		t.Errorf("a cancelled fetch reported a failure: %v", err)
	}
	if g.Requests() != 1 {
		t.Errorf("%d requests: a cancelled fetch went on to the next source", g.Requests())
	}
}
