package dag_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/kubo"
	"github.com/pickup-ipfs/pickup/fetcher/dag/trustless"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
)

// memorySink is a Sink into memory that remembers whether it was aborted.
type memorySink struct {
	buf     bytes.Buffer
	aborted bool
	failAt  int // fail writes once this many bytes are written (0: never)
	// ctx is the context the sink was opened with: an upload would run
	// on it after Fetch returns.
	ctx context.Context
}

func (s *memorySink) Write(p []byte) (int, error) {
	if s.failAt > 0 && s.buf.Len()+len(p) > s.failAt {
		return 0, errors.New("disk full")
	}
	return s.buf.Write(p)
}

func (s *memorySink) Abort(context.Context) error {
	s.aborted = true
	return nil
}

// sinks opens memorySinks and keeps them, so that a test can check what
// became of each try's.
type sinks struct {
	mu     sync.Mutex
	opened []*memorySink
	failAt int
	err    error
}

func (s *sinks) open(ctx context.Context) (dag.Sink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	sk := &memorySink{failAt: s.failAt, ctx: ctx}
	s.opened = append(s.opened, sk)
	return sk, nil
}

// carSource is a Source that serves a CAR held in memory, whatever is
// asked: the simplest honest (or, given bad bytes, hostile) source.
type carSource struct {
	name string
	car  []byte
}

func (s carSource) Name() string { return s.name }

func (s carSource) Fetch(_ context.Context, _ dag.Request, l dag.Limits) (dag.Blocks, error) {
	return dag.NewCARStream(func(func()) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(s.car)), nil
	}, l.MaxBlockBytes), nil
}

// export is the reference: the CAR `ipfs dag export` writes.
func export(t testing.TB, bs blockstore.Blockstore, root cid.Cid) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := ipfstest.Export(context.Background(), bs, root, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func carCID(t testing.TB, car []byte) cid.Cid {
	t.Helper()
	sum := sha256.Sum256(car)
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(uint64(multicodec.Car), mh)
}

func gatewaySource(t testing.TB, url string) dag.Source {
	t.Helper()
	s, err := trustless.New(trustless.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func kuboSource(t testing.TB, url string) dag.Source {
	t.Helper()
	s, err := kubo.New(kubo.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newFetcher(t testing.TB, limits dag.Limits, sources ...dag.Source) *dag.Fetcher {
	t.Helper()
	f, err := dag.New(sources, limits, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// reasonOf returns the reason of a Fetch error, failing the test if it is
// not a *Failure.
func reasonOf(t testing.TB, err error) pin.Reason {
	t.Helper()
	f, ok := errors.AsType[*dag.Failure](err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *dag.Failure", err, err)
	}
	return f.Reason
}
