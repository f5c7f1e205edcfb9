package dag_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/fetcher/dag/bitswap"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
)

// keptCAR stands in for the resumable upload of carstore's S3 store (whose
// own tests hold it to the same contract against a real S3 server): bytes
// become durable in parts of partBytes, notes are kept with their points,
// and a suspended sink keeps what its last checkpoint describes. Here it
// isolates what this package decides: the notes, the walk's position and
// the sub-DAGs asked for.
type keptCAR struct {
	partBytes int

	mu    sync.Mutex
	buf   []byte
	point int64
	notes [][]byte
	// resumes counts the sinks given back; suspended and aborted what
	// became of the last one.
	resumes   int
	suspended bool
	aborted   bool
}

// resumableSink is one try's sink into a keptCAR.
type resumableSink struct{ k *keptCAR }

func (s resumableSink) Write(p []byte) (int, error) {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	s.k.buf = append(s.k.buf, p...)
	return len(p), nil
}

func (s resumableSink) Durable() int64 {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return int64(len(s.k.buf) / s.k.partBytes * s.k.partBytes)
}

func (s resumableSink) Checkpoint(_ context.Context, at int64, note []byte) error {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	if at%int64(s.k.partBytes) != 0 || at > int64(len(s.k.buf)) {
		return fmt.Errorf("checkpoint at %d: not a durable point", at)
	}
	s.k.point = at
	s.k.notes = append(s.k.notes, bytes.Clone(note))
	return nil
}

func (s resumableSink) Settle(context.Context) error { return nil }

func (s resumableSink) Suspend(context.Context) error {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	s.k.buf = s.k.buf[:s.k.point]
	s.k.suspended = true
	return nil
}

func (s resumableSink) Abort(context.Context) error {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	s.k.buf, s.k.point, s.k.notes, s.k.aborted = nil, 0, nil, true
	return nil
}

func (resumableSink) HashesCAR()     {}
func (resumableSink) BuffersWrites() {}

func (k *keptCAR) open(context.Context) (dag.Sink, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.buf, k.point, k.notes = nil, 0, nil
	return resumableSink{k}, nil
}

func (k *keptCAR) resume(context.Context) (dag.Kept, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.point == 0 {
		return dag.Kept{}, false, nil
	}
	k.resumes++
	k.suspended = false
	return dag.Kept{Sink: resumableSink{k}, Bytes: k.point, Notes: k.notes}, true, nil
}

// cutSource is a source that breaks off after sending its first blocks:
// a gateway that goes away mid-fetch.
type cutSource struct {
	dag.Source
	after int
}

func (s cutSource) Fetch(ctx context.Context, req dag.Request, l dag.Limits) (dag.Blocks, error) {
	b, err := s.Source.Fetch(ctx, req, l)
	if err != nil {
		return nil, err
	}
	return &cutBlocks{Blocks: b, left: s.after}, nil
}

type cutBlocks struct {
	dag.Blocks
	left int
}

func (b *cutBlocks) Next() (dag.Block, error) {
	if b.left == 0 {
		return dag.Block{}, errors.New("connection reset")
	}
	b.left--
	return b.Blocks.Next()
}

// countingSource counts the blocks it sends and the sub-DAGs it is asked
// for.
type countingSource struct {
	dag.Source
	roots, blocks, bytes atomic.Int64

	mu    sync.Mutex
	asked []cid.Cid
}

func (s *countingSource) askedRoot(root cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.asked, root)
}

func (s *countingSource) Fetch(ctx context.Context, req dag.Request, l dag.Limits) (dag.Blocks, error) {
	if req.Resume != nil {
		return nil, errors.New("a source was given Request.Resume")
	}
	s.roots.Add(1)
	s.mu.Lock()
	s.asked = append(s.asked, req.Root)
	s.mu.Unlock()
	b, err := s.Source.Fetch(ctx, req, l)
	if err != nil {
		return nil, err
	}
	return countingBlocks{Blocks: b, s: s}, nil
}

type countingBlocks struct {
	dag.Blocks
	s *countingSource
}

func (b countingBlocks) Next() (dag.Block, error) {
	blk, err := b.Blocks.Next()
	if err == nil {
		b.s.blocks.Add(1)
		b.s.bytes.Add(int64(len(blk.Data)))
	}
	return blk, err
}

// A try cut off half way keeps its checkpointed CAR, and the next try
// goes on from it, from another source, asking only for the sub-DAGs the
// walk had still to visit: the CAR is byte for byte `ipfs dag export`'s,
// every shape of DAG (shared sub-DAGs, identity links, several codecs),
// from a trustless gateway, kubo's RPC and bitswap, and the second source is
// never asked for the whole DAG.
func TestResumedTryMatchesDagExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, dc := range dagCases() {
		bs := ipfstest.NewMemBlockstore()
		root, err := dc.make(ctx, bs)
		if err != nil {
			t.Fatal(err)
		}
		want := export(t, bs, root)
		blocks := countBlocks(t, want)
		if blocks < 8 {
			continue // too small to be cut and resumed
		}
		var origins []multiaddr.Multiaddr
		sources := map[string]func(t *testing.T) dag.Source{
			"boxo gateway": func(t *testing.T) dag.Source {
				return gatewaySource(t, ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{}).URL())
			},
			"kubo rpc": func(t *testing.T) dag.Source {
				return kuboSource(t, ipfstest.NewKuboRPC(t, bs, ipfstest.Tamper{}).URL())
			},
			"bitswap": func(t *testing.T) dag.Source {
				origins = ipfstest.NewBitswapPeer(t, bs).Addrs()
				return bitswapSource(t)
			},
		}
		for sname, src := range sources {
			t.Run(dc.name+"/"+sname, func(t *testing.T) {
				k := &keptCAR{partBytes: 4 << 10}
				second := &countingSource{Source: src(t)}
				first := cutSource{Source: src(t), after: int(blocks * 2 / 3)}
				f := newFetcher(t, dag.Limits{}, first, second)
				var last dag.Progress
				req := dag.Request{Root: root, Origins: origins, Resume: k.resume}
				res, sink, err := f.Fetch(ctx, req, k.open, func(p dag.Progress) { last = p })
				if err != nil {
					t.Fatalf("fetch: %v", err)
				}
				if _, ok := sink.(dag.ResumableSink); !ok {
					t.Fatalf("the fetch returned a %T", sink)
				}
				if k.resumes != 1 || res.ResumedFrom == 0 || last.ResumedFrom != res.ResumedFrom {
					t.Fatalf("resumed %d times from %d bytes (progress says %d): the second try started over", k.resumes, res.ResumedFrom, last.ResumedFrom)
				}
				if got := k.buf; !bytes.Equal(got, want) {
					t.Fatalf("CAR differs from dag export: got %d bytes, want %d", len(got), len(want))
				}
				if res.Bytes != int64(len(want)) || res.Blocks != blocks {
					t.Errorf("result says %d bytes, %d blocks; the CAR has %d, %d", res.Bytes, res.Blocks, len(want), blocks)
				}
				if second.askedRoot(root) {
					t.Errorf("the second source was asked for the whole DAG (it sent %d blocks of %d)", second.blocks.Load(), blocks)
				}
				if !bytes.Equal(res.Index, goCarIndex(t, want)) {
					t.Error("the resumed CAR's index is not go-car's index of its bytes")
				}
			})
		}
	}
}

// bitswapSource is a bitswap source on a loopback host of its own.
func bitswapSource(t testing.TB) dag.Source {
	t.Helper()
	s, err := bitswap.New(bitswap.Config{AllowPrivate: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A failure of the DAG itself (over the size limit) is one no later try
// can get past: nothing is kept for it.
func TestTooBigKeepsNothing(t *testing.T) {
	t.Parallel()
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(context.Background(), bs, ipfstest.FileOptions{Size: 300 << 10, Seed: 9, ChunkSize: 1 << 10, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	car := export(t, bs, root)
	k := &keptCAR{partBytes: 4 << 10}
	// The root declares the DAG's size, so the limit is set between what
	// it declares and what the CAR is, for the byte count to catch.
	f := newFetcher(t, dag.Limits{MaxCARBytes: int64(len(car)) - 1<<10}, carSource{name: "memory", car: car})
	_, _, err = f.Fetch(context.Background(), dag.Request{Root: root, Resume: k.resume}, k.open, nil)
	if reasonOf(t, err) != pin.ReasonTooBig {
		t.Fatalf("fetch: %v, want too_big", err)
	}
	if !k.aborted || k.suspended {
		t.Errorf("sink aborted %v, suspended %v: want aborted", k.aborted, k.suspended)
	}
	if fl, _ := errors.AsType[*dag.Failure](err); fl.Kept != 0 {
		t.Errorf("the failure says %d bytes are kept", fl.Kept)
	}
}

// Notes that do not add up to the kept bytes (the upload is not the one
// they describe) are never gone on from: the kept CAR is aborted and the
// try starts over, and the CAR is still right.
func TestNotesThatDoNotMatchStartOver(t *testing.T) {
	t.Parallel()
	root, car, _ := memoryFile(t, 11)
	k := &keptCAR{partBytes: 4 << 10}
	src := &countingSource{Source: carSource{name: "memory", car: car}}
	f := newFetcher(t, dag.Limits{}, src)
	lying := func(ctx context.Context) (dag.Kept, bool, error) {
		k.buf = append(k.buf[:0], car[:8<<10]...)
		return dag.Kept{Sink: resumableSink{k}, Bytes: 8 << 10, Notes: [][]byte{[]byte("not a note")}}, true, nil
	}
	_, _, err := f.Fetch(context.Background(), dag.Request{Root: root, Resume: lying}, k.open, nil)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if !k.aborted {
		t.Error("the kept CAR the notes do not describe was not aborted")
	}
	if !bytes.Equal(k.buf, car) {
		t.Errorf("CAR differs from dag export: got %d bytes, want %d", len(k.buf), len(car))
	}
	if src.roots.Load() != 1 {
		t.Errorf("the source was asked for %d DAGs, want the whole DAG once", src.roots.Load())
	}
}
