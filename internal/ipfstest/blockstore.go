// Package ipfstest provides real IPFS parts for tests: DAG builders (UnixFS
// files made by boxo's importer from seeded random data, dag-cbor and
// dag-json DAGs with every kind of link), and peers on loopback that serve
// them: a libp2p host with a boxo bitswap server, boxo's trustless gateway
// handler, and a kubo-RPC-shaped dag/export handler. Hostile variants
// tamper with what the honest parts send (corrupted, dropped, duplicated,
// oversized and unrequested blocks, a wrong root, an endless stall, rate
// limiting), so that tests can prove what a fetcher does about each.
//
// Every server is started with a Start function that returns it with a
// Close method, or with the New function of the same name, which fails the
// test on error and registers Close with t.Cleanup.
package ipfstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
)

// NewMemBlockstore returns boxo's blockstore over an in-memory datastore.
func NewMemBlockstore() blockstore.Blockstore {
	return blockstore.NewBlockstore(dssync.MutexWrap(datastore.NewMapDatastore()))
}

// FileBlockstore keeps blocks in one append-only file and their places in
// memory, so that a DAG of gigabytes costs the page cache, not the heap: a
// 1 GiB UnixFS DAG is about 4,100 index entries. It is safe for concurrent
// use. Deleting forgets a block without reclaiming its space.
type FileBlockstore struct {
	mu    sync.RWMutex
	f     *os.File
	end   int64
	index map[cid.Cid]span
	keys  []cid.Cid
}

type span struct {
	off int64
	len int
}

var _ blockstore.Blockstore = (*FileBlockstore)(nil)

// NewFileBlockstore creates a blockstore in a new file in dir.
func NewFileBlockstore(dir string) (*FileBlockstore, error) {
	f, err := os.CreateTemp(dir, "blocks-*.bin")
	if err != nil {
		return nil, fmt.Errorf("create block file: %w", err)
	}
	return &FileBlockstore{f: f, index: make(map[cid.Cid]span)}, nil
}

// Close removes the file.
func (b *FileBlockstore) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return errors.Join(b.f.Close(), os.Remove(filepath.Clean(b.f.Name())))
}

// Len returns the number of blocks stored.
func (b *FileBlockstore) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.index)
}

func (b *FileBlockstore) DeleteBlock(_ context.Context, c cid.Cid) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.index, c)
	return nil
}

func (b *FileBlockstore) Has(_ context.Context, c cid.Cid) (bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.index[c]
	return ok, nil
}

func (b *FileBlockstore) Get(_ context.Context, c cid.Cid) (blocks.Block, error) {
	b.mu.RLock()
	s, ok := b.index[c]
	b.mu.RUnlock()
	if !ok {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	data := make([]byte, s.len)
	if _, err := b.f.ReadAt(data, s.off); err != nil {
		return nil, fmt.Errorf("read block %s: %w", c, err)
	}
	return blocks.NewBlockWithCid(data, c)
}

func (b *FileBlockstore) GetSize(_ context.Context, c cid.Cid) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	s, ok := b.index[c]
	if !ok {
		return -1, ipld.ErrNotFound{Cid: c}
	}
	return s.len, nil
}

func (b *FileBlockstore) Put(ctx context.Context, blk blocks.Block) error {
	return b.PutMany(ctx, []blocks.Block{blk})
}

func (b *FileBlockstore) PutMany(_ context.Context, blks []blocks.Block) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, blk := range blks {
		if _, ok := b.index[blk.Cid()]; ok {
			continue
		}
		data := blk.RawData()
		if _, err := b.f.WriteAt(data, b.end); err != nil {
			return fmt.Errorf("write block %s: %w", blk.Cid(), err)
		}
		b.index[blk.Cid()] = span{off: b.end, len: len(data)}
		b.keys = append(b.keys, blk.Cid())
		b.end += int64(len(data))
	}
	return nil
}

func (b *FileBlockstore) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	b.mu.RLock()
	keys := make([]cid.Cid, 0, len(b.index))
	for _, k := range b.keys {
		if _, ok := b.index[k]; ok {
			keys = append(keys, k)
		}
	}
	b.mu.RUnlock()
	out := make(chan cid.Cid)
	go func() {
		defer close(out)
		for _, k := range keys {
			select {
			case out <- k:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Holes wraps a blockstore so that it lacks the given blocks: a peer
// serving it has only part of the DAG.
func Holes(bs blockstore.Blockstore, missing ...cid.Cid) blockstore.Blockstore {
	set := make(map[cid.Cid]bool, len(missing))
	for _, c := range missing {
		set[c] = true
	}
	return &tampered{Blockstore: bs, missing: set}
}

// Corrupt wraps a blockstore so that the given blocks come back with one
// byte flipped, under their own CIDs.
func Corrupt(bs blockstore.Blockstore, bad ...cid.Cid) blockstore.Blockstore {
	set := make(map[cid.Cid]bool, len(bad))
	for _, c := range bad {
		set[c] = true
	}
	return &tampered{Blockstore: bs, corrupt: set}
}

// Counted is a blockstore that counts the blocks read from it (Get): what
// a peer or gateway serving it has served, whatever it was asked. Delay,
// if set, is taken over each read, so that a gateway streams no faster
// than a block per Delay and what it served when its client hung up is
// what the client had taken, not what socket buffers let it push ahead.
type Counted struct {
	blockstore.Blockstore
	Delay time.Duration
	gets  atomic.Int64
}

// Count wraps bs to count the blocks read from it.
func Count(bs blockstore.Blockstore, delay time.Duration) *Counted {
	return &Counted{Blockstore: bs, Delay: delay}
}

// Get reads a block, counted, after Delay.
func (c *Counted) Get(ctx context.Context, k cid.Cid) (blocks.Block, error) {
	c.gets.Add(1)
	if c.Delay > 0 {
		select {
		case <-time.After(c.Delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.Blockstore.Get(ctx, k)
}

// Served is how many blocks have been read.
func (c *Counted) Served() int64 { return c.gets.Load() }

type tampered struct {
	blockstore.Blockstore
	missing, corrupt map[cid.Cid]bool
}

func (t *tampered) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if t.missing[c] {
		return false, nil
	}
	return t.Blockstore.Has(ctx, c)
}

func (t *tampered) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if t.missing[c] {
		return -1, ipld.ErrNotFound{Cid: c}
	}
	return t.Blockstore.GetSize(ctx, c)
}

func (t *tampered) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if t.missing[c] {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	blk, err := t.Blockstore.Get(ctx, c)
	if err != nil || !t.corrupt[c] {
		return blk, err
	}
	data := append([]byte(nil), blk.RawData()...)
	if len(data) == 0 {
		data = append(data, 0)
	}
	data[len(data)/2] ^= 0xff
	return blocks.NewBlockWithCid(data, c)
}
