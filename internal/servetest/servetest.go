// Package servetest is a carpark holding pinned DAGs for the serving
// role's tests: real parts all through (a carstore.Dir, its CARs as `ipfs
// dag export` writes them, promoted; their indexes, as go-car writes them,
// in a real lookup, serve/locate/sqlite; serve.Blockstore over them). Only
// the views' one answer, which CAR a pin holds for a root, is a table the
// test sets: the end-to-end tests (tests/) ask the real views.
package servetest

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/index"
	"github.com/multiformats/go-multicodec"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/s3test"
	"github.com/pickup-ipfs/pickup/serve"
	"github.com/pickup-ipfs/pickup/serve/locate"
	locatesqlite "github.com/pickup-ipfs/pickup/serve/locate/sqlite"
)

// Store is a carpark store: carstore.Dir or carstore.S3.
type Store interface {
	Stage(ctx context.Context, key string, meta carstore.Metadata) (carstore.Upload, error)
	Promote(ctx context.Context, stagedKey string, want carstore.Expected) (carstore.Stored, error)
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
}

// Carpark is a carpark (a directory, or S3), its lookup, the pins held,
// and the serving blockstore over them.
type Carpark struct {
	dir    string
	store  Store
	lookup *locatesqlite.Store
	pins   *Held
	// Blocks is the serving blockstore (its hold answers kept 1 ns: a
	// release is seen at once); Damage records what it found damaged.
	Blocks *serve.Blockstore
	Damage *Damages
}

// New makes an empty carpark directory for tb.
func New(tb testing.TB) *Carpark {
	tb.Helper()
	dir := tb.TempDir()
	store, err := carstore.NewDir(dir, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	return NewIn(tb, dir, store)
}

// NewS3 makes an empty carpark in a bucket of versitygw (internal/s3test).
func NewS3(tb testing.TB) *Carpark {
	tb.Helper()
	srv := s3test.Start(tb)
	store, err := carstore.NewS3WithClient(srv.Client, carstore.S3Config{StagingBucket: srv.CreateBucket(tb, "staging"), CarparkBucket: srv.CreateBucket(tb, "carpark")}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return NewIn(tb, tb.TempDir(), store)
}

// NewIn makes a carpark of store, its lookup in dir (Corrupt works on a
// directory store of dir only).
func NewIn(tb testing.TB, dir string, store Store) *Carpark {
	tb.Helper()
	lookup, err := locatesqlite.Open(context.Background(), filepath.Join(dir, "locate.db"), locatesqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { lookup.Close() })
	c := &Carpark{dir: dir, store: store, lookup: lookup, pins: NewHeld(), Damage: &Damages{}}
	c.Blocks = serve.NewBlockstore(lookup, store, c.pins, serve.BlockstoreOptions{HoldTTL: time.Nanosecond, Reporter: c.Damage})
	return c
}

// Deps are the carpark as serve.New takes it (a blockstore of New's own,
// over the same lookup, store and pins).
func (c *Carpark) Deps() serve.Deps {
	return serve.Deps{Locator: c.lookup, Carpark: c.store, Pins: c.pins, Reporter: c.Damage}
}

// DAG is a DAG pinned into the carpark.
type DAG struct {
	Root   cid.Cid
	CAR    []byte
	Stored carstore.Stored
	// Blocks are the CAR's blocks in order, each with its data's offset
	// in the CAR.
	Blocks []Block
}

// Block is a block of a CAR.
type Block struct {
	CID    cid.Cid
	Data   []byte
	Offset int64
}

// Pin stores a random UnixFS file of size bytes (CIDv1) as a pinned DAG.
func (c *Carpark) Pin(tb testing.TB, size int64, seed uint64) DAG {
	tb.Helper()
	ctx := context.Background()
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: size, Seed: seed, CIDv1: true})
	if err != nil {
		tb.Fatal(err)
	}
	var car bytes.Buffer
	if _, err := ipfstest.Export(ctx, bs, root, &car); err != nil {
		tb.Fatal(err)
	}
	meta := carstore.Metadata{Root: root, RequestID: uuid.NewString()}
	staged := carstore.StagingKey(meta.RequestID, 1)
	up, err := c.store.Stage(ctx, staged, meta)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := up.Write(car.Bytes()); err != nil {
		tb.Fatal(err)
	}
	st, err := up.Complete(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	stored, err := c.store.Promote(ctx, staged, carstore.Expected{Bytes: st.Bytes, CarCID: st.CarCID, Metadata: meta, Checksum: st.Checksum})
	if err != nil {
		tb.Fatal(err)
	}
	idx, err := carv2.GenerateIndex(bytes.NewReader(car.Bytes()), carv2.UseIndexCodec(multicodec.CarMultihashIndexSorted))
	if err != nil {
		tb.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := index.WriteTo(idx, &raw); err != nil {
		tb.Fatal(err)
	}
	entries, err := locate.Entries(bytes.NewReader(raw.Bytes()), int64(car.Len()))
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.lookup.Add(ctx, locate.CAR{CarCID: stored.CarCID, Root: root, Key: stored.Key, Bytes: stored.Bytes}, entries); err != nil {
		tb.Fatal(err)
	}
	c.pins.Hold(root, stored.CarCID)
	return DAG{Root: root, CAR: car.Bytes(), Stored: stored, Blocks: blocksOf(tb, car.Bytes())}
}

// Release removes the DAG's pin: its blocks are no longer served.
func (c *Carpark) Release(d DAG) { c.pins.Release(d.Root) }

// Corrupt flips one byte of the stored CAR at offset.
func (c *Carpark) Corrupt(tb testing.TB, d DAG, offset int64) {
	tb.Helper()
	p := filepath.Join(c.dir, "carpark", filepath.FromSlash(d.Stored.Key))
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	b[offset] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

func blocksOf(tb testing.TB, car []byte) []Block {
	tb.Helper()
	br, err := carv2.NewBlockReader(bytes.NewReader(car))
	if err != nil {
		tb.Fatal(err)
	}
	var out []Block
	at := 0
	for {
		b, err := br.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		off := bytes.Index(car[at:], b.RawData()) + at
		at = off + len(b.RawData())
		out = append(out, Block{CID: b.Cid(), Data: b.RawData(), Offset: int64(off)})
	}
}

// Held stands in for the views' one answer the serving role asks (which
// CAR a pinned, not removed, pin holds for a root): the end-to-end tests
// (tests/) ask the real views.
type Held struct {
	mu   sync.Mutex
	cars map[string]string
}

// NewHeld returns a Held holding nothing.
func NewHeld() *Held { return &Held{cars: map[string]string{}} }

// CarForRoot implements serve.Pins.
func (h *Held) CarForRoot(_ context.Context, root string) (string, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	car, ok := h.cars[root]
	return car, ok, nil
}

// Hold makes car the CAR held for root.
func (h *Held) Hold(root, car cid.Cid) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cars[cid.NewCidV1(root.Type(), root.Hash()).String()] = car.String()
}

// Release holds nothing for root any more, as a removal does.
func (h *Held) Release(root cid.Cid) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.cars, cid.NewCidV1(root.Type(), root.Hash()).String())
}

// Damages records damage reports.
type Damages struct {
	mu  sync.Mutex
	got []serve.Damage
}

// Damaged implements serve.Reporter.
func (d *Damages) Damaged(_ context.Context, dmg serve.Damage) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, dmg)
}

// All returns the reports so far.
func (d *Damages) All() []serve.Damage {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]serve.Damage(nil), d.got...)
}
