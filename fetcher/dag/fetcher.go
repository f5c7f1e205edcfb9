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
		res, sink, err := f.try(ctx, src, req, sinkOpen, progress)
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

// try streams the DAG from one source into one sink.
func (f *Fetcher) try(ctx context.Context, src Source, req Request, open func(context.Context) (Sink, error), progress func(Progress)) (Result, Sink, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	wd := &watchdog{timeout: f.limits.ChunkTimeout, cancel: cancel}
	wd.waiting.Store(true)
	go wd.run(ctx)

	blocks, err := src.Fetch(ctx, req, f.limits)
	if err != nil {
		return Result{}, nil, classify(ctx, err, 0)
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
	w := &writer{root: req.Root, open: open, progress: progress, source: src.Name(), cancel: cancel, recycle: recycle, index: !f.noIndex}
	go func() { done <- w.run(ctx, out) }()

	v := newVerifier(req.Root, ra, f.limits.MaxBlockBytes)
	carBytes := int64(len(header))
	rooted := false
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
	}
	if verr == nil && progress != nil {
		progress(Progress{Bytes: res.Bytes, Blocks: res.Blocks, BlockBytes: wr.blockBytes, Expected: res.Expected, Source: res.Source})
	}
	if verr != nil {
		verr = classify(ctx, verr, v.received)
		if wr.sink != nil {
			// The attempt's context may be over; the abort must still run.
			actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			if err := wr.sink.Abort(actx); err != nil {
				f.log.WarnContext(actx, "abort sink", "root", req.Root, "source", src.Name(), "err", err)
			}
			acancel()
		}
		return Result{}, nil, verr
	}
	return res, wr.sink, nil
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
	err        error
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
}

func (w *writer) run(ctx context.Context, in <-chan Block) writeResult {
	var (
		res      writeResult
		reported time.Time
	)
	fail := func(err error) writeResult {
		res.err = &storageError{err: err}
		w.cancel(res.err)
		for range in {
		}
		return res
	}
	for blk := range in {
		if res.car == nil {
			sink, err := w.open(ctx)
			if err != nil {
				return fail(fmt.Errorf("open sink: %w", err))
			}
			res.sink = sink
			if res.car, err = newCARWriter(sink, w.root, w.index); err != nil {
				return fail(fmt.Errorf("write CAR header: %w", err))
			}
		}
		if err := res.car.writeBlock(blk.CID, blk.Data); err != nil {
			return fail(fmt.Errorf("write block %s: %w", blk.CID, err))
		}
		res.blocks++
		res.blockBytes += int64(len(blk.Data))
		if w.recycle != nil {
			w.recycle(blk.Data)
		}
		if w.progress != nil && time.Since(reported) >= progressEvery {
			reported = time.Now()
			w.progress(Progress{Bytes: res.car.written(), Blocks: res.blocks, BlockBytes: res.blockBytes, Expected: w.expected.Load(), Source: w.source})
		}
	}
	return res
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
