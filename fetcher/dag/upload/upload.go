// Package upload is the fetch source of a CAR a tenant sent (package
// carupload keeps it): it walks the DAG from the requested root itself,
// depth-first as `ipfs dag export` does, and reads each block by its
// offset in the upload, so that whatever order the upload's blocks came
// in, the Fetcher gets them in the canonical one and writes the canonical
// CAR. Nothing in the upload is trusted: the Fetcher checks every block
// against its CID, the DAG's completeness and the limits, as for any
// source. A block the walk needs that the upload lacks is missing_block.
//
// Memory: the upload's section index is loaded into a map (about 100
// bytes a block: some 12 MiB for a 31 GiB upload of 256 KiB blocks, as
// much as the Fetcher's own walk keeps), and one block is read at a time.
package upload

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/carupload"
	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/pin"
)

// Name is the source's name in results, failures and logs.
const Name = "upload"

// Area is where uploads are read from; carupload.Dir is one.
type Area interface {
	// Open opens an upload, or an error wrapping carupload.ErrNotFound.
	Open(ctx context.Context, key string) (carupload.Upload, error)
}

// Source reads DAGs from uploads. It is safe for concurrent use.
type Source struct {
	area Area
}

// New returns the source over area.
func New(area Area) (*Source, error) {
	if area == nil {
		return nil, errors.New("upload source: no uploads area")
	}
	return &Source{area: area}, nil
}

// Name implements dag.Source.
func (s *Source) Name() string { return Name }

// Fetch implements dag.Source: req.Upload names the upload.
func (s *Source) Fetch(ctx context.Context, req dag.Request, limits dag.Limits) (dag.Blocks, error) {
	if req.Upload == "" {
		return nil, dag.Fail(pin.ReasonRootNotFound, "the pin came with no upload")
	}
	u, err := s.area.Open(ctx, req.Upload)
	if errors.Is(err, carupload.ErrNotFound) {
		return nil, dag.Fail(pin.ReasonRootNotFound, "the uploaded CAR is gone from the uploads area")
	}
	if err != nil {
		return nil, err
	}
	sections := make(map[cid.Cid]carupload.Section)
	err = u.Sections(func(c cid.Cid, sec carupload.Section) error {
		if _, ok := sections[c]; !ok {
			sections[c] = sec
		}
		return nil
	})
	if err != nil {
		u.Close()
		return nil, err
	}
	return &stream{ctx: ctx, u: u, sections: sections, walk: dag.NewWalk(req.Root), root: req.Root, maxBlock: limits.MaxBlockBytes,
		free: make(chan []byte, freeBuffers)}, nil
}

// freeBuffers bounds the block buffers kept for reuse: about what the
// Fetcher's queues hold (its read-ahead and its pipeline, 8 each).
const freeBuffers = 24

// stream yields the upload's blocks in the order of the walk.
type stream struct {
	ctx      context.Context
	u        carupload.Upload
	sections map[cid.Cid]carupload.Section
	walk     *dag.Walk
	root     cid.Cid
	maxBlock int
	// free holds buffers of blocks the Fetcher has written (Recycle), so
	// that reading a DAG allocates no more than the blocks in flight.
	free chan []byte
}

// Next implements dag.Blocks.
func (s *stream) Next() (dag.Block, error) {
	if err := s.ctx.Err(); err != nil {
		return dag.Block{}, err
	}
	c, err := s.walk.NextToFetch()
	if err != nil {
		return dag.Block{}, err
	}
	sec, ok := s.sections[c]
	if !ok && c == s.root {
		return dag.Block{}, dag.Fail(pin.ReasonRootNotFound, "the uploaded CAR does not hold the root block %s", c)
	}
	if !ok {
		return dag.Block{}, dag.Fail(pin.ReasonMissingBlock, "the uploaded CAR has no block %s, which the DAG links to", c)
	}
	if sec.Length > int64(s.maxBlock) {
		return dag.Block{}, dag.Fail(pin.ReasonBlockTooBig, "block %s is %d bytes, over the %d byte limit", c, sec.Length, s.maxBlock)
	}
	data := s.buffer(int(sec.Length))
	if _, err := s.u.ReadAt(data, sec.Offset); err != nil {
		return dag.Block{}, fmt.Errorf("read block %s of the upload: %w", c, err)
	}
	// Links of a block whose bytes are wrong may be anything: the
	// Fetcher refuses the block (block_mismatch) before it asks for
	// what they name.
	links, err := dag.Links(c, data)
	if err != nil {
		links = nil
	}
	s.walk.Visit(links)
	return dag.Block{CID: c, Data: data}, nil
}

// buffer returns a slice of size bytes, reused if one is free.
func (s *stream) buffer(size int) []byte {
	select {
	case b := <-s.free:
		if cap(b) >= size {
			return b[:size]
		}
	default:
	}
	return make([]byte, size)
}

// Recycle implements dag.Recycler.
func (s *stream) Recycle(data []byte) {
	select {
	case s.free <- data:
	default:
	}
}

// Close implements dag.Blocks.
func (s *stream) Close() error { return s.u.Close() }
