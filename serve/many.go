package serve

import (
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/serve/locate"
)

// How GetMany joins reads: sections of one CAR at most manyGap bytes
// apart are read with one range read of at most manySpan bytes. A range
// read of the carpark costs about a millisecond of the machine's processor
// (the S3 client and server) whatever its length; reading a section's
// neighbours with it costs their bytes only (BenchmarkServe in
// serve/bitswap).
const (
	manyGap  = 64 << 10
	manySpan = 4 << 20
	// manyAtOnce bounds the lookups, and the range reads, under way for
	// one GetMany.
	manyAtOnce = 8
)

// GetMany returns the blocks of cids that a pin holds, each checked
// against its CID as Get does, reading the sections that lie close
// together in one CAR with one range read. A CID missing from the answer
// is not found; a block whose joined read fails or does not check is read
// again on its own (Get: other copies, the damage report).
func (b *Blockstore) GetMany(ctx context.Context, cids []cid.Cid) (map[cid.Cid]blocks.Block, error) {
	type want struct {
		c   cid.Cid
		loc locate.Location
	}
	var (
		mu    sync.Mutex
		wants []want
		errs  []error
		sem   = make(chan struct{}, manyAtOnce)
		wg    sync.WaitGroup
	)
	for _, c := range cids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			locs, err := b.held(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if len(locs) > 0 {
				wants = append(wants, want{c, locs[0]})
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(wants, func(x, y want) int {
		return cmp.Or(cmp.Compare(x.loc.Key, y.loc.Key), cmp.Compare(x.loc.Offset, y.loc.Offset))
	})
	var runs [][]want
	for i, w := range wants {
		if i > 0 {
			run := runs[len(runs)-1]
			first, last := run[0].loc, run[len(run)-1].loc
			if w.loc.Key == last.Key && w.loc.Offset <= last.Offset+last.Length+manyGap && w.loc.Offset+w.loc.Length-first.Offset <= manySpan {
				runs[len(runs)-1] = append(run, w)
				continue
			}
		}
		runs = append(runs, []want{w})
	}
	out := make(map[cid.Cid]blocks.Block, len(wants))
	for _, run := range runs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			got := b.readRun(ctx, run[0].loc, run[len(run)-1].loc, func(yield func(cid.Cid, locate.Location) bool) {
				for _, w := range run {
					if !yield(w.c, w.loc) {
						return
					}
				}
			})
			mu.Lock()
			defer mu.Unlock()
			for _, w := range run {
				if blk, ok := got[w.c]; ok {
					out[w.c] = blk
				}
			}
		})
	}
	wg.Wait()
	// Whatever the joined reads did not give is read on its own.
	for _, w := range wants {
		if _, ok := out[w.c]; ok {
			continue
		}
		blk, err := b.Get(ctx, w.c)
		if err == nil {
			out[w.c] = blk
		} else if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// readRun reads one CAR from first's section to last's with one range
// read and returns the blocks of sections that check; the rest are left
// out.
func (b *Blockstore) readRun(ctx context.Context, first, last locate.Location, sections func(func(cid.Cid, locate.Location) bool)) map[cid.Cid]blocks.Block {
	span := last.Offset + last.Length - first.Offset
	if first.Offset < 0 || span <= 0 || span > manySpan+maxSectionBytes {
		return nil
	}
	rc, err := b.carpark.ReadRange(ctx, first.Key, first.Offset, span)
	if err != nil {
		return nil
	}
	defer rc.Close()
	buf := make([]byte, span)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil
	}
	out := map[cid.Cid]blocks.Block{}
	for c, loc := range sections {
		at := loc.Offset - first.Offset
		if loc.Length <= 0 || loc.Length > maxSectionBytes || at < 0 || at+loc.Length > span {
			continue
		}
		_, data, err := locate.Block(buf[at:at+loc.Length], c.Hash())
		if err != nil {
			continue
		}
		if blk, err := blocks.NewBlockWithCid(data, c); err == nil {
			out[c] = blk
		}
	}
	return out
}
