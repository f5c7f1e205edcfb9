package dag_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

// dagCase is a DAG to fetch, made in a fresh blockstore.
type dagCase struct {
	name string
	make func(ctx context.Context, bs blockstore.Blockstore) (cid.Cid, error)
}

func dagCases() []dagCase {
	file := func(opts ipfstest.FileOptions) func(context.Context, blockstore.Blockstore) (cid.Cid, error) {
		return func(ctx context.Context, bs blockstore.Blockstore) (cid.Cid, error) {
			return ipfstest.File(ctx, bs, opts)
		}
	}
	return []dagCase{
		{"unixfs one block", file(ipfstest.FileOptions{Size: 1000, Seed: 1})},
		{"unixfs cidv0 three levels", file(ipfstest.FileOptions{Size: 200 << 10, Seed: 2, ChunkSize: 1 << 10})},
		{"unixfs cidv1 raw leaves", file(ipfstest.FileOptions{Size: 300 << 10, Seed: 3, ChunkSize: 1 << 10, CIDv1: true})},
		{"unixfs of one repeated chunk", file(ipfstest.FileOptions{Size: 400 << 10, Seed: 6, ChunkSize: 1 << 10, CIDv1: true, Repeat: true})},
		{"unixfs empty file", file(ipfstest.FileOptions{Size: 0, Seed: 4})},
		{"mixed codecs, hashes, duplicates and identity links", func(ctx context.Context, bs blockstore.Blockstore) (cid.Cid, error) {
			return ipfstest.Mixed(ctx, bs, 5)
		}},
		{"identity root linking stored blocks", func(ctx context.Context, bs blockstore.Blockstore) (cid.Cid, error) {
			leaf, err := ipfstest.PutRaw(ctx, bs, uint64(multicodec.Raw), multihash.SHA2_256, []byte("stored leaf"))
			if err != nil {
				return cid.Undef, err
			}
			n, err := qp.BuildMap(basicnode.Prototype.Any, -1, func(ma datamodel.MapAssembler) {
				qp.MapEntry(ma, "leaf", qp.Link(cidlink.Link{Cid: leaf}))
			})
			if err != nil {
				return cid.Undef, err
			}
			return ipfstest.Put(ctx, bs, multicodec.DagCbor, multihash.IDENTITY, n)
		}},
		{"identity root, nothing stored", func(ctx context.Context, bs blockstore.Blockstore) (cid.Cid, error) {
			return ipfstest.PutRaw(ctx, bs, uint64(multicodec.Raw), multihash.IDENTITY, nil)
		}},
		{"raw block root", func(ctx context.Context, bs blockstore.Blockstore) (cid.Cid, error) {
			return ipfstest.PutRaw(ctx, bs, uint64(multicodec.Raw), multihash.SHA2_256, []byte("just one raw block"))
		}},
	}
}

// TestMatchesDagExport proves the promise of the CAR pickup stores: from
// every source, for every shape of DAG, it is byte for byte the CAR that
// `ipfs dag export` writes (go-car's traversal writer over the same
// blocks), and the CAR CID and counts describe exactly those bytes.
func TestMatchesDagExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, dc := range dagCases() {
		bs := ipfstest.NewMemBlockstore()
		root, err := dc.make(ctx, bs)
		if err != nil {
			t.Fatal(err)
		}
		want := export(t, bs, root)
		sources := map[string]func(t *testing.T) dag.Source{
			"memory CAR": func(*testing.T) dag.Source { return carSource{name: "memory", car: want} },
			"boxo gateway": func(t *testing.T) dag.Source {
				return gatewaySource(t, ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{}).URL())
			},
			"kubo rpc": func(t *testing.T) dag.Source {
				return kuboSource(t, ipfstest.NewKuboRPC(t, bs, ipfstest.Tamper{}).URL())
			},
		}
		for sname, src := range sources {
			t.Run(dc.name+"/"+sname, func(t *testing.T) {
				t.Parallel()
				var s sinks
				var calls int
				f := newFetcher(t, dag.Limits{}, src(t))
				res, sink, err := f.Fetch(ctx, dag.Request{Root: root}, s.open, func(dag.Progress) { calls++ })
				if err != nil {
					t.Fatalf("fetch: %v", err)
				}
				got := sink.(*memorySink).buf.Bytes()
				if !bytes.Equal(got, want) {
					t.Fatalf("CAR differs from dag export: got %d bytes, want %d", len(got), len(want))
				}
				if res.CarCID != carCID(t, want) || res.Bytes != int64(len(want)) {
					t.Errorf("result %+v does not describe the CAR (CID %s, %d bytes)", res, carCID(t, want), len(want))
				}
				if res.Blocks != countBlocks(t, want) {
					t.Errorf("result counts %d blocks, the CAR has %d", res.Blocks, countBlocks(t, want))
				}
				if calls == 0 {
					t.Error("progress was never called")
				}
				if len(s.opened) != 1 || s.opened[0].aborted {
					t.Fatalf("want one sink, not aborted; got %d", len(s.opened))
				}
				if err := s.opened[0].ctx.Err(); err != nil {
					t.Errorf("the sink's context ended with Fetch (%v): its upload could not complete", err)
				}
			})
		}
	}
}

func countBlocks(t testing.TB, car []byte) int64 {
	t.Helper()
	r := dag.NewCARReader(bytes.NewReader(car), dag.DefaultMaxBlockBytes)
	var n int64
	for {
		_, err := r.Next()
		if err != nil {
			return n
		}
		n++
	}
}

// memoryFile makes a 600 KiB UnixFS file from seed and returns its root,
// its CAR as `ipfs dag export` writes it, and a Fetcher whose one source
// serves that CAR from memory.
func memoryFile(t *testing.T, seed uint64) (cid.Cid, []byte, *dag.Fetcher) {
	t.Helper()
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(context.Background(), bs, ipfstest.FileOptions{Size: 600 << 10, Seed: seed, CIDv1: true})
	if err != nil {
		t.Fatal(err)
	}
	car := export(t, bs, root)
	return root, car, newFetcher(t, dag.Limits{}, carSource{name: "memory", car: car})
}

// hashingSink is a memorySink that says it hashes the CAR itself.
type hashingSink struct{ memorySink }

func (*hashingSink) HashesCAR() {}

// A sink that hashes the CAR itself gets the same bytes, and the Fetcher
// does not hash them again: the Result leaves the CAR CID to the sink.
func TestHashingSinkIsNotHashedTwice(t *testing.T) {
	ctx := context.Background()
	root, want, f := memoryFile(t, 3)
	var opened *hashingSink
	res, sink, err := f.Fetch(ctx, dag.Request{Root: root}, func(context.Context) (dag.Sink, error) {
		opened = &hashingSink{}
		return opened, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sink != dag.Sink(opened) || !bytes.Equal(opened.buf.Bytes(), want) {
		t.Fatalf("the hashing sink got %d bytes, want the %d of dag export", opened.buf.Len(), len(want))
	}
	if res.CarCID.Defined() || res.Bytes != int64(len(want)) {
		t.Errorf("result %+v: want no CAR CID (the sink's to compute) and %d bytes", res, len(want))
	}
	// An ordinary sink gets the CAR CID from the Fetcher.
	res, _, err = f.Fetch(ctx, dag.Request{Root: root}, func(context.Context) (dag.Sink, error) { return &memorySink{}, nil }, nil)
	if err != nil || !res.CarCID.Defined() {
		t.Errorf("ordinary sink: CAR CID %v, %v; want one", res.CarCID, err)
	}
}

// bufferingSink is a memorySink that says it buffers writes itself, and
// counts them.
type bufferingSink struct {
	memorySink
	writes int
}

func (*bufferingSink) BuffersWrites() {}

func (s *bufferingSink) Write(p []byte) (int, error) {
	s.writes++
	return s.memorySink.Write(p)
}

// A sink that buffers writes itself gets the same bytes, each section in
// two writes (length and CID, then the block) straight from the Fetcher,
// with no buffer of the Fetcher's in between.
func TestBufferingSinkGetsSectionsUnbuffered(t *testing.T) {
	ctx := context.Background()
	root, want, f := memoryFile(t, 4)
	opened := &bufferingSink{}
	var progressed int64
	res, _, err := f.Fetch(ctx, dag.Request{Root: root}, func(context.Context) (dag.Sink, error) { return opened, nil },
		func(p dag.Progress) { progressed = p.Bytes })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(opened.buf.Bytes(), want) {
		t.Fatalf("the buffering sink got %d bytes, want the %d of dag export", opened.buf.Len(), len(want))
	}
	if wantWrites := 1 + 2*int(res.Blocks); opened.writes != wantWrites {
		t.Errorf("%d writes for a header and %d blocks, want %d", opened.writes, res.Blocks, wantWrites)
	}
	if progressed != int64(len(want)) || res.Bytes != int64(len(want)) {
		t.Errorf("progress ended at %d bytes, result %d; want %d", progressed, res.Bytes, len(want))
	}
}
