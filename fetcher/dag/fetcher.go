package dag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/pin"
)

const (
	// pipelineBlocks is how many verified blocks may wait for the sink, so
	// that verifying (one SHA-256 pass) and writing (the CAR's SHA-256 and
	// the upload) run on separate cores. At 2 MiB a block it bounds the
	// queue at 16 MiB.
	pipelineBlocks = 8
	// progressEvery spaces the progress callbacks.
	progressEvery = 250 * time.Millisecond
)

var (
	errStalled = errors.New("no progress within the chunk timeout")
	errTimeout = errors.New("attempt ran past the fetch timeout")
)

// storageError marks a failure of the sink, not of the source.
type storageError struct{ err error }

func (e *storageError) Error() string { return "storage: " + e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// Fetcher gets DAGs from its sources, in order, into verified CARs. It is
// safe for concurrent use: each Fetch is independent.
type Fetcher struct {
	sources []Source
	limits  Limits
	log     *slog.Logger
	// noIndex leaves Result.Index empty (for the benchmark of its cost).
	noIndex bool
}

// New returns a Fetcher that tries sources in the order given. Zero limits
// take their defaults; a nil logger discards.
func New(sources []Source, limits Limits, logger *slog.Logger) (*Fetcher, error) {
	if len(sources) == 0 {
		return nil, errors.New("dag fetcher: no sources")
	}
	limits = limits.WithDefaults()
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Fetcher{sources: sources, limits: limits, log: logger.With("component", "dag")}, nil
}

// Limits returns the limits in force, defaults filled in.
func (f *Fetcher) Limits() Limits { return f.limits }

// Fetch gets req's DAG as a verified CAR. It tries the sources in order;
// for each try it opens a sink (only once the source has sent a good
// block), streams the verified CAR into it, and on any failure aborts that
// sink and moves on to the next source. On success it returns the sink,
// complete but not closed or committed: that is the caller's to do. open
// is given ctx itself, not a context of the attempt's, so that what it
// starts lives on after Fetch returns; the attempt's limits do not
// interrupt a sink's Write.
// progress, if not nil, is called from Fetch's goroutines a few times a
// second with how far the try has come (from zero again for each source),
// and once at the end; it must not block.
//
// Once the root block is verified, its declared size (Estimate) is known:
// a root that declares more than MaxCARBytes fails the attempt as too_big
// at once, before anything else is fetched or anything is written; a DAG
// bigger than its root declares is failed by the CAR's byte count as it
// streams, as every DAG is.
//
// When ctx ends, Fetch returns ctx's error, not a *Failure: the attempt was
// abandoned, not failed. Otherwise every error is a *Failure:
//
//   - too_big and unsupported_codec (properties of the DAG, whichever source
//     serves it), timeout (FetchTimeout is for the whole attempt) and
//     storage_error (the sink failed) end the attempt at once;
//   - when every source has failed, the reason is the most telling one, for
//     an operator reading why a pin failed: first a source that broke the
//     rules (block_mismatch, wrong_root, unrequested_block, block_too_big:
//     a hostile or broken source must not hide behind another's refused
//     connection), then missing_block (the DAG exists but a source had only
//     part of it), then stalled, then root_not_found only if every source
//     said it lacks the root (it is permanent, so a source that merely
//     failed to answer must not turn it so), and otherwise sources_failed.
//
// The Failure's message lists every source's failure.
func (f *Fetcher) Fetch(ctx context.Context, req Request, open func(context.Context) (Sink, error), progress func(Progress)) (Result, Sink, error) {
	if err := CheckCID(req.Root); err != nil {
		return Result{}, nil, err
	}
	parent := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, f.limits.FetchTimeout, errTimeout)
	defer cancel()

	var failures []*Failure
	for _, src := range f.sources {
		// The sink outlives Fetch (the caller completes it), so it is
		// opened with the caller's context, not the attempt's.
		sinkOpen := func(context.Context) (Sink, error) { return open(parent) }
		kept := f.kept(parent, req)
		res, sink, err := f.try(ctx, src, req, sinkOpen, progress, kept)
		if err == nil {
			f.log.InfoContext(parent, "fetched", "root", req.Root, "source", src.Name(), "bytes", res.Bytes, "blocks", res.Blocks, "car", res.CarCID)
			return res, sink, nil
		}
		if parent.Err() != nil {
			return Result{}, nil, fmt.Errorf("fetch %s: %w", req.Root, context.Cause(parent))
		}
		fl := asFailure(err, src.Name())
		f.log.WarnContext(parent, "source failed", "root", req.Root, "source", src.Name(), "reason", fl.Reason, "err", fl.Err, "detail", details(err))
		failures = append(failures, fl)
		if endsAttempt(fl.Reason) {
			break
		}
	}
	return Result{}, nil, summarize(failures)
}

// resumed is a CAR an earlier try left, to go on with: its sink and what
// its checkpoints' notes say.
type resumed struct {
	Kept
	ck checkpoint
}

// kept returns the CAR an earlier try left for req, or nil when there is
// none to go on from (nothing kept, a CAR of an upload, which is read
// from local storage whole again, or notes that do not describe the kept
// bytes: that sink is aborted, and the try starts over).
func (f *Fetcher) kept(ctx context.Context, req Request) *resumed {
	if req.Resume == nil || req.Upload != "" {
		return nil
	}
	k, ok, err := req.Resume(ctx)
	if err != nil {
		f.log.WarnContext(ctx, "reading what an earlier try kept; starting over", "root", req.Root, "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	ck, err := decodeCheckpoint(req.Root, k.Bytes, k.Notes)
	if err != nil {
		f.log.WarnContext(ctx, "what an earlier try kept does not add up; starting over", "root", req.Root, "bytes", k.Bytes, "err", err)
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := k.Sink.Abort(actx); err != nil {
			f.log.WarnContext(ctx, "abort the kept CAR", "root", req.Root, "err", err)
		}
		return nil
	}
	f.log.InfoContext(ctx, "going on from what an earlier try kept", "root", req.Root, "bytes", k.Bytes, "blocks", len(ck.blocks), "pending_links", len(ck.links))
	return &resumed{Kept: k, ck: ck}
}

// endsAttempt reports the reasons no other source can change.
func endsAttempt(r pin.Reason) bool {
	switch r {
	case pin.ReasonTooBig, pin.ReasonUnsupportedCodec, pin.ReasonTimeout, pin.ReasonStorage:
		return true
	}
	return false
}

// summarize picks the most telling of the failures (see Fetch) and lists
// the others in its message.
func summarize(failures []*Failure) *Failure {
	pick := func() *Failure {
		last := failures[len(failures)-1]
		if endsAttempt(last.Reason) {
			return last
		}
		for _, group := range [][]pin.Reason{
			{pin.ReasonBlockMismatch, pin.ReasonWrongRoot, pin.ReasonUnrequestedBlock, pin.ReasonBlockTooBig},
			{pin.ReasonMissingBlock},
			{pin.ReasonStalled},
		} {
			for _, fl := range failures {
				for _, r := range group {
					if fl.Reason == r {
						return fl
					}
				}
			}
		}
		for _, fl := range failures {
			if fl.Reason != pin.ReasonRootNotFound {
				return &Failure{Reason: pin.ReasonSourcesFailed, Source: fl.Source, Err: fl.Err}
			}
		}
		return failures[0]
	}
	chosen := pick()
	if len(failures) == 1 {
		return chosen
	}
	var others []string
	for _, fl := range failures {
		if fl.Source != chosen.Source {
			others = append(others, fl.Error())
		}
	}
	out := *chosen
	if len(others) > 0 {
		out.Err = fmt.Errorf("%w (also: %s)", chosen.Err, strings.Join(others, "; "))
	}
	return &out
}

// try streams the DAG from one source into one sink: from the start, or
// from what an earlier try kept (kept, when not nil), asking the source
// only for the sub-DAGs the walk had still to visit.
func (f *Fetcher) try(ctx context.Context, src Source, req Request, open func(context.Context) (Sink, error), progress func(Progress), kept *resumed) (Result, Sink, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	wd := &watchdog{timeout: f.limits.ChunkTimeout, cancel: cancel}
	wd.waiting.Store(true)
	go wd.run(ctx)

	walk := NewWalk(req.Root)
	req.Resume = nil // the Fetcher's business, not the source's
	var blocks Blocks
	if kept != nil {
		walk = ResumeWalk(kept.ck.links, kept.ck.seen())
		blocks = newSubDAGs(ctx, src, req, f.limits, unvisited(walk, kept.ck.links), func(cid.Cid) bool { return false })
	} else {
		var err error
		if blocks, err = src.Fetch(ctx, req, f.limits); err != nil {
			return Result{}, nil, classify(ctx, err, 0)
		}
	}
	if p, ok := blocks.(Progressor); ok {
		wd.source.Store(&p)
	}
	ra := startReadAhead(ctx, blocks)
	defer func() {
		cancel(nil)
		<-ra.done
		blocks.Close()
	}()
	var recycle func([]byte)
	if r, ok := blocks.(Recycler); ok {
		recycle = r.Recycle
	}

	header, err := carHeader(req.Root)
	if err != nil {
		return Result{}, nil, err
	}
	out := make(chan Block, pipelineBlocks)
	done := make(chan writeResult, 1)
	w := &writer{root: req.Root, open: open, progress: progress, source: src.Name(), cancel: cancel, recycle: recycle, index: !f.noIndex, kept: kept}
	go func() { done <- w.run(ctx, out) }()

	v := newVerifier(req.Root, walk, ra, f.limits.MaxBlockBytes)
	carBytes := int64(len(header))
	rooted := false
	if kept != nil {
		// The root, and what it declares, are behind: the checkpoint
		// holds them.
		v.resumed, v.received = true, int64(len(kept.ck.blocks))
		carBytes, rooted = kept.ck.end, true
		w.expected.Store(kept.ck.expected)
	}
	var verr error
	for verr == nil {
		wd.waiting.Store(true)
		blk, err := v.next()
		wd.waiting.Store(false)
		wd.activity.Add(1)
		if err == io.EOF {
			break
		}
		if err != nil {
			verr = err
			break
		}
		carBytes += sectionBytes(blk.CID, blk.Data)
		if carBytes > f.limits.MaxCARBytes {
			verr = Fail(pin.ReasonTooBig, "the CAR passes %d bytes (MAX_CAR_BYTES)", f.limits.MaxCARBytes)
			break
		}
		if !rooted {
			// The root is the first block: what it declares is known before
			// anything is written, and the writer reports it from then on.
			rooted = true
			if est, ok := Estimate(blk.CID, blk.Data); ok {
				if est > f.limits.MaxCARBytes {
					verr = Fail(pin.ReasonTooBig, "the root declares a DAG of %d bytes (its own and its links' Tsize), over the %d byte limit (MAX_CAR_BYTES)", est, f.limits.MaxCARBytes)
					break
				}
				w.expected.Store(est)
			}
		}
		select {
		case out <- blk:
		case <-ctx.Done():
			verr = ctx.Err()
		}
	}
	close(out)
	wr := <-done
	if verr == nil {
		verr = wr.err
	}
	var res Result
	if verr == nil {
		res, verr = finish(wr, src.Name())
		res.Expected = w.expected.Load()
		if kept != nil {
			res.ResumedFrom = kept.Bytes
		}
	}
	if verr == nil && progress != nil {
		progress(Progress{Bytes: res.Bytes, Blocks: res.Blocks, BlockBytes: wr.blockBytes, Expected: res.Expected, Source: res.Source,
			Checkpoint: wr.checkpoint, ResumedFrom: res.ResumedFrom, ResumedBlocks: wr.resumedBlocks})
	}
	if verr != nil {
		verr = classify(ctx, verr, v.received)
		if wr.sink != nil {
			f.release(ctx, req, src, wr, verr)
		}
		return Result{}, nil, verr
	}
	return res, wr.sink, nil
}

// release ends the sink of a failed try: suspended, for a later try to go
// on from, when it is resumable, holds a checkpoint and the failure is not
// one of the DAG itself (too big, a codec pickup cannot walk), which any
// later try would meet too; aborted otherwise. A suspended sink's kept
// bytes are told in the Failure (Failure.Kept).
func (f *Fetcher) release(ctx context.Context, req Request, src Source, wr writeResult, verr error) {
	// The attempt's context may be over; the release must still run.
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer acancel()
	reason := ReasonOf(verr)
	rs, ok := wr.sink.(ResumableSink)
	keep := ok && reason != pin.ReasonTooBig && reason != pin.ReasonUnsupportedCodec
	if keep && wr.notes != nil {
		// What the sink was still storing when the try stopped is kept
		// too, once it is stored.
		if err := rs.Settle(actx); err != nil {
			f.log.WarnContext(actx, "settle sink", "root", req.Root, "source", src.Name(), "err", err)
		} else {
			wr.checkpoint = wr.notes.final(actx)
		}
	}
	if keep && wr.checkpoint > 0 {
		err := rs.Suspend(actx)
		if err == nil {
			if fl, ok := errors.AsType[*Failure](verr); ok {
				fl.Kept = wr.checkpoint
			}
			f.log.InfoContext(actx, "kept what the try wrote, for the next to go on from", "root", req.Root, "source", src.Name(), "bytes", wr.checkpoint)
			return
		}
		f.log.WarnContext(actx, "suspend sink; aborting it", "root", req.Root, "source", src.Name(), "err", err)
	}
	if err := wr.sink.Abort(actx); err != nil {
		f.log.WarnContext(actx, "abort sink", "root", req.Root, "source", src.Name(), "err", err)
	}
}

// unvisited is the links a resumed walk has still to ask a source for,
// in order, each once: those it has not visited yet.
func unvisited(walk *Walk, links []cid.Cid) []cid.Cid {
	out := make([]cid.Cid, 0, len(links))
	asked := make(map[cid.Cid]struct{}, len(links))
	for _, c := range links {
		if _, ok := asked[c]; ok || walk.Seen(c) {
			continue
		}
		asked[c] = struct{}{}
		out = append(out, c)
	}
	return out
}

// finish flushes the CAR of a try whose stream was whole.
func finish(wr writeResult, source string) (Result, error) {
	if wr.car == nil {
		// Every walk yields at least the root.
		return Result{}, errors.New("no blocks were written")
	}
	carCID, n, err := wr.car.finish()
	if err != nil {
		return Result{}, &storageError{err: fmt.Errorf("flush CAR: %w", err)}
	}
	idx, err := wr.car.index()
	if err != nil {
		return Result{}, err
	}
	return Result{CarCID: carCID, Bytes: n, Blocks: wr.blocks, Source: source, Index: idx}, nil
}

// classify turns what ended a try into a *Failure, looking first at why
// the try's context ended.
func classify(ctx context.Context, err error, received int64) error {
	cause := context.Cause(ctx)
	var se *storageError
	switch {
	case errors.Is(cause, errTimeout):
		return Fail(pin.ReasonTimeout, "%v", cause)
	case errors.Is(cause, errStalled) && received == 0:
		return Fail(pin.ReasonRootNotFound, "no root block within the chunk timeout%w", stallEnd(err))
	case errors.Is(cause, errStalled):
		return Fail(pin.ReasonStalled, "%v (after %d blocks)%w", cause, received, stallEnd(err))
	case errors.As(cause, &se), errors.As(err, &se):
		return &Failure{Reason: pin.ReasonStorage, Err: se.err}
	case ctx.Err() != nil && cause != nil && !errors.Is(cause, context.Canceled):
		return fmt.Errorf("%w: %w", cause, err)
	}
	if _, ok := errors.AsType[*Failure](err); ok {
		return err
	}
	return &Failure{Reason: pin.ReasonSourcesFailed, Err: tenantSafe(err)}
}

// stallEnd is what a stalled try's message says of how its stream ended:
// a source's own *Failure, or nothing (the stream was cut by the stall
// watchdog, and its error says only that), the error kept for the logs.
func stallEnd(err error) error {
	if _, ok := errors.AsType[*Failure](err); ok {
		return &phrased{phrase: ": " + err.Error(), err: err}
	}
	return &phrased{err: err}
}

type writeResult struct {
	sink   Sink
	car    *carWriter
	blocks int64
	// blockBytes is the blocks' own bytes written, without the framing.
	blockBytes int64
	// checkpoint is the point of the sink's last saved checkpoint (the
	// kept bytes of a resumed try, at first); 0: none.
	checkpoint int64
	// resumedBlocks is the blocks a resumed try found kept.
	resumedBlocks int64
	// notes saves the checkpoints of a resumable sink; nil for another.
	notes *checkpointer
	err   error
}

// writer is the second stage of a try: it opens the sink on the first
// block and writes the CAR into it, hashing as it goes. The try finishes
// the CAR, or aborts the sink, once the writer has returned.
type writer struct {
	root     cid.Cid
	open     func(context.Context) (Sink, error)
	progress func(Progress)
	source   string
	// expected is the DAG's size as its root declares it, once the try
	// has seen the root: 0 until then, and when it declares none.
	expected atomic.Int64
	cancel   context.CancelCauseFunc
	// recycle gives written blocks' buffers back to the source.
	recycle func([]byte)
	// index records the CAR's block index as it is written.
	index bool
	// kept, when not nil, is the CAR an earlier try left: the writer goes
	// on with its sink from its checkpoint.
	kept *resumed
}

func (w *writer) run(ctx context.Context, in <-chan Block) writeResult {
	var (
		res      writeResult
		reported time.Time
	)
	var cp *checkpointer
	// ended waits for a note being saved, so that the sink is completed,
	// suspended or aborted with no checkpoint in flight.
	ended := func() writeResult {
		if cp != nil {
			res.checkpoint = cp.wait()
		}
		return res
	}
	fail := func(err error) writeResult {
		res.err = &storageError{err: err}
		w.cancel(res.err)
		for range in {
		}
		return ended()
	}
	var resumedFrom, resumedBlocks int64
	start := func(sink Sink) {
		res.sink = sink
		if rs, ok := sink.(ResumableSink); ok && w.index {
			cp = &checkpointer{sink: rs, expected: w.expected.Load}
			res.notes = cp
		}
	}
	if k := w.kept; k != nil {
		start(k.Sink)
		res.car = resumeCARWriter(k.Sink, k.ck, w.index)
		res.blocks, res.blockBytes = int64(len(k.ck.blocks)), k.ck.blockBytes
		resumedFrom, resumedBlocks = k.Bytes, int64(len(k.ck.blocks))
		res.resumedBlocks = resumedBlocks
		if cp != nil {
			cp.saved = k.Bytes
		}
	}
	for blk := range in {
		if res.car == nil {
			sink, err := w.open(ctx)
			if err != nil {
				return fail(fmt.Errorf("open sink: %w", err))
			}
			start(sink)
			if res.car, err = newCARWriter(sink, w.root, w.index); err != nil {
				return fail(fmt.Errorf("write CAR header: %w", err))
			}
		}
		offset := res.car.written()
		if err := res.car.writeBlock(blk.CID, blk.Data); err != nil {
			return fail(fmt.Errorf("write block %s: %w", blk.CID, err))
		}
		res.blocks++
		res.blockBytes += int64(len(blk.Data))
		if cp != nil {
			cp.add(ctx, mark{written: written{c: blk.CID, offset: offset}, end: res.car.written(), blockBytes: res.blockBytes, pos: blk.after})
		}
		if w.recycle != nil {
			w.recycle(blk.Data)
		}
		if w.progress != nil && time.Since(reported) >= progressEvery {
			reported = time.Now()
			var point int64
			if cp != nil {
				point = cp.point()
			}
			w.progress(Progress{Bytes: res.car.written(), Blocks: res.blocks, BlockBytes: res.blockBytes, Expected: w.expected.Load(), Source: w.source,
				Checkpoint: point, ResumedFrom: resumedFrom, ResumedBlocks: resumedBlocks})
		}
	}
	return ended()
}

// watchdog ends a try whose source makes no progress for the chunk
// timeout while the try waits on it. Time spent waiting on the sink does
// not count: a slow upload is not a stalled source.
type watchdog struct {
	timeout time.Duration
	cancel  context.CancelCauseFunc
	// waiting is true while the try waits on the source.
	waiting atomic.Bool
	// activity counts blocks taken from the source.
	activity atomic.Int64
	// source is the stream's finer progress, if it has one.
	source atomic.Pointer[Progressor]
}

func (wd *watchdog) mark() int64 {
	m := wd.activity.Load()
	if p := wd.source.Load(); p != nil {
		m += (*p).Progress()
	}
	return m
}

func (wd *watchdog) run(ctx context.Context) {
	every := min(max(wd.timeout/8, 5*time.Millisecond), 5*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	last, since := wd.mark(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if m := wd.mark(); m != last || !wd.waiting.Load() {
				last, since = m, now
				continue
			}
			if now.Sub(since) >= wd.timeout {
				wd.cancel(errStalled)
				return
			}
		}
	}
}
