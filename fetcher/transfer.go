package fetcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/carupload"
	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// DAGFetcher gets a DAG as a verified CAR into sinks it opens; dag.Fetcher
// is one.
type DAGFetcher interface {
	Fetch(ctx context.Context, req dag.Request, open func(context.Context) (dag.Sink, error), progress func(dag.Progress)) (dag.Result, dag.Sink, error)
}

// CARStore keeps CARs: staging uploads, validation into the carpark, and
// lookups there; carstore.S3 and carstore.Dir are ones.
type CARStore interface {
	Stage(ctx context.Context, key string, meta carstore.Metadata) (carstore.Upload, error)
	Promote(ctx context.Context, stagedKey string, want carstore.Expected) (carstore.Stored, error)
	// Stat reports whether the carpark holds the CAR carCID of root (the
	// root as requested: a CIDv0's CAR is not its CIDv1's).
	Stat(ctx context.Context, root, carCID cid.Cid) (carstore.Stored, bool, error)
	// DiscardThroughKeeping removes what attempts 1 to through of a
	// request left in staging (uploads never finished, CARs staged and
	// never promoted), but attempt keep's (0: none), which the next
	// attempt goes on from, and nothing of later attempts, which may be
	// running.
	DiscardThroughKeeping(ctx context.Context, requestID string, through, keep int) (int, error)
	// PutIndex stores the block index of a CAR in the carpark beside it,
	// and its root's mapping, and returns the index's key; an index
	// already there stays only if it has the same entries.
	PutIndex(ctx context.Context, st carstore.Stored, index []byte) (string, error)
	// ReadRange reads an object of the carpark (length < 0: to its end);
	// carstore.ErrNotFound if there is none.
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
}

// sweeper is a CAR store that finds, when the pool starts, what attempts
// over for good left in staging (carstore.Dir and carstore.S3 are):
// through says, for a request, the last attempt no one may still run, and
// the attempt whose kept CAR the next one goes on from.
type sweeper interface {
	SweepKeeping(ctx context.Context, through func(ctx context.Context, requestID string) (through, keep int, err error)) (int, error)
}

// resumer is a CAR store whose uploads go on where an earlier attempt's
// stopped (carstore.S3 is): see dag.ResumableSink.
type resumer interface {
	Resume(ctx context.Context, fromKey, toKey string, meta carstore.Metadata) (carstore.Upload, carstore.Resumed, error)
}

// Steps of an attempt that a crash may end it at, as Deps.Step is told
// them: tests kill a process there and count what is left.
const (
	// StepUploading: the first bytes of the CAR are written into its
	// upload.
	StepUploading = "uploading"
	// StepUploaded: CarUploaded is recorded; Promote has not begun.
	StepUploaded = "uploaded"
	// StepValidated: CarValidated is recorded; the attempt's cleanup has
	// not run.
	StepValidated = "validated"
	// StepReused: CarValidated from a CAR already in the carpark is
	// recorded; the attempt's cleanup has not run.
	StepReused = "reused"
)

// CARIndex finds the CAR of a root that is already pinned, for any tenant;
// the projections' view stores implement it.
type CARIndex interface {
	// CarForRoot returns the CAR CID of a pinned request for the root (in
	// canonical form), and false when the root is pinned for no one.
	CarForRoot(ctx context.Context, canonicalRoot string) (carCID string, ok bool, err error)
}

// Received is the uploads area as the fetcher cleans it; carupload.Dir
// is one.
type Received interface {
	// Delete removes an upload; one that is not there is no error.
	Delete(ctx context.Context, key string) error
}

// transfer moves one attempt's bytes: reuse a CAR already in the carpark,
// or fetch, stage, validate; every step an event.
type transfer struct {
	dag DAGFetcher
	// uploads fetches pins that came with a CAR, from it alone; received
	// deletes the CAR once the pin is over.
	uploads  DAGFetcher
	received Received
	cars     CARStore
	index    CARIndex
	lease    time.Duration
	// step is Deps.Step, or nil.
	step func(ctx context.Context, step string)
}

// reached tells Deps.Step that the attempt reached a step.
func (t *transfer) reached(ctx context.Context, step string) {
	if t.step != nil {
		t.step(ctx, step)
	}
}

func (t *transfer) run(ctx context.Context, a *attempt) error {
	s := a.current()
	root, err := cid.Decode(s.Request.CID)
	if err != nil {
		// The gateway parses CIDs strictly; a request that still holds a bad
		// one can never be fetched.
		a.fail(ctx, pin.ReasonUnsupportedCodec, fmt.Sprintf("the requested CID %q does not parse: %v", s.Request.CID, err), true)
		return nil
	}
	kept := t.keptBy(s)
	if s.Attempt > 1 {
		// An earlier attempt's process may have died mid-upload: what it
		// left goes before this attempt writes as much again (and end
		// removes what is left when the attempt ends, reused or not), but
		// the CAR an attempt kept for this one to go on from, and, when
		// there is one, the attempt before this one's: it may have moved
		// the kept CAR to its own key and ended before the log said so
		// (the first try looks there first, see resume).
		through := s.Attempt - 1
		if kept > 0 {
			through = s.Attempt - 2
		}
		t.discard(ctx, a, through, kept)
	}
	// The attempt holds the root before it uses a CAR of it or stores
	// one: a deletion the garbage collector decided first refuses the
	// hold (the pin waits, without counting it a failure, for the
	// deletion to end, then fetches anew); one it would decide later
	// sees the hold and keeps the CAR.
	if err := pinlog.HoldRoot(ctx, a.pool.log, root, a.id); errors.Is(err, pin.ErrRootDeleting) {
		a.fail(ctx, pin.ReasonHandedBack, "the carpark is deleting this root's CAR (its last pin released it): handed back, to be fetched again once the deletion is done", false)
		return nil
	} else if err != nil {
		a.fail(ctx, pin.ReasonStorage, fmt.Sprintf("holding the root in the log: %v", err), false)
		return nil
	}
	if done, err := t.reuse(ctx, a, root); done || err != nil {
		return err
	}
	if s.Request.Upload != "" && t.uploads == nil {
		a.fail(ctx, pin.ReasonSourcesFailed, "the pin came with a CAR upload, and this fetcher has no uploads area to read it from", true)
		return nil
	}

	// Renew the lease while the bytes flow; when a renewal shows the claim
	// is gone, stop the fetch at once (which aborts the upload).
	fetchCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var sofar atomic.Pointer[dag.Progress]
	sofar.Store(&dag.Progress{})
	renewed := make(chan struct{})
	// resumed tells the renewal that a try went on from a kept CAR: the
	// log records it at once, and the kept CAR as this attempt's.
	resumed := make(chan struct{}, 1)
	var resumedFrom atomic.Int64
	go func() {
		defer close(renewed)
		t.renew(fetchCtx, a, stop, &sofar, resumed)
	}()

	attempt := s.Attempt
	key := carstore.StagingKey(a.id.String(), attempt)
	meta := carstore.Metadata{Root: root, RequestID: a.id.String()}
	// The upload lives as long as the attempt's fetch, not as long as the
	// source's try that opens it: it is completed after Fetch returns.
	open := func(context.Context) (dag.Sink, error) { return t.cars.Stage(fetchCtx, key, meta) }
	meter := &received{metrics: a.pool.metrics}
	var writing sync.Once
	fetch := t.dag
	if s.Request.Upload != "" {
		// The tenant sent the DAG: it is read from the upload only, and
		// checked as any source's.
		fetch = t.uploads
	}
	req := dag.Request{Root: root, Origins: origins(s.Request.Origins), Upload: s.Request.Upload}
	if s.Request.Upload == "" {
		req.Resume = t.resume(fetchCtx, a, kept, key, meta)
	}
	res, sink, err := fetch.Fetch(fetchCtx, req, open,
		func(p dag.Progress) {
			sofar.Store(&p)
			if p.ResumedFrom > 0 && resumedFrom.Swap(p.ResumedFrom) != p.ResumedFrom {
				select {
				case resumed <- struct{}{}:
				default:
				}
			}
			// What an earlier try kept was not received now.
			meter.update(p.Source, p.Bytes-p.ResumedFrom, p.Blocks-p.ResumedBlocks)
			if p.Bytes > 0 {
				writing.Do(func() { t.reached(ctx, StepUploading) })
			}
		})
	if err != nil {
		stop(nil)
		<-renewed
		return t.fetchFailed(ctx, a, fetchCtx, err, sofar.Load())
	}
	upload := sink.(carstore.Upload)
	staged, err := upload.Complete(ctx)
	stop(nil)
	<-renewed
	if cause := context.Cause(fetchCtx); errors.Is(cause, errClaimLost) {
		upload.Abort(context.WithoutCancel(ctx))
		return errClaimLost
	}
	if err != nil {
		a.fail(ctx, pin.ReasonStorage, fmt.Sprintf("completing the staged CAR: %v", err), false)
		return nil
	}
	// The upload hashed what it was given (the fetch left the CAR CID to it,
	// see dag.HashingSink); its length must be what the fetch wrote.
	if staged.Bytes != res.Bytes || (res.CarCID.Defined() && !staged.CarCID.Equals(res.CarCID)) {
		upload.Abort(context.WithoutCancel(ctx))
		a.fail(ctx, pin.ReasonValidation, fmt.Sprintf("staged %d bytes with CAR CID %s, but the fetch wrote %d bytes with CAR CID %s",
			staged.Bytes, staged.CarCID, res.Bytes, res.CarCID), false)
		return nil
	}
	err = a.commit(ctx, func(s pin.State) (pin.Payload, error) {
		return s.Upload(pin.CarUploaded{
			Attempt: attempt, Fetcher: a.pool.cfg.Name, Key: staged.Key, Bytes: res.Bytes, Blocks: res.Blocks,
			CarCID: staged.CarCID.String(), Checksum: staged.Checksum, Source: res.Source, ExpectedBytes: res.Expected,
			ResumedFrom: res.ResumedFrom,
		})
	})
	if err != nil {
		// The claim went while the upload finished: the staged CAR is of no
		// use to anyone.
		upload.Abort(context.WithoutCancel(ctx))
		return claimGone(err)
	}
	t.reached(ctx, StepUploaded)
	return t.validate(ctx, a, staged, meta, res.Index)
}

// discard removes what attempts 1 to through of the request left in
// staging, but attempt keep's (0: none); a failure is logged, and the
// next attempt, or the next sweep, tries again.
func (t *transfer) discard(ctx context.Context, a *attempt, through, keep int) {
	if n, err := t.cars.DiscardThroughKeeping(ctx, a.id.String(), through, keep); err != nil {
		a.logger.WarnContext(ctx, "discarding what attempts left in staging", "through", through, "keep", keep, "err", err)
	} else if n > 0 {
		a.logger.InfoContext(ctx, "discarded what attempts left in staging", "through", through, "keep", keep, "count", n)
	}
}

// keptBy is the attempt whose kept CAR (pin.State.Kept) an attempt of s
// goes on from, or 0: none, the store keeps none, the pin is over, or its
// DAG is a tenant's upload (read again whole from the uploads area, which
// holds no network's delays).
func (t *transfer) keptBy(s pin.State) int {
	if _, ok := t.cars.(resumer); !ok || over(s) || s.Request.Upload != "" {
		return 0
	}
	return s.Kept.Attempt
}

// over reports a pin no attempt will fetch again: final, or failed for
// good.
func over(s pin.State) bool {
	return s.Final() || (s.Phase == pin.PhaseFailed && s.LastFailure != nil && s.LastFailure.Permanent)
}

// resume returns the fetch's Request.Resume: its first try goes on from
// the CAR attempt kept kept (0: none, it starts over), found at the
// previous attempt's key or at kept's, and every later try from what the
// try before it kept, in this attempt's staging key. Nil when the store
// keeps nothing.
func (t *transfer) resume(fetchCtx context.Context, a *attempt, kept int, key string, meta carstore.Metadata) func(context.Context) (dag.Kept, bool, error) {
	rs, ok := t.cars.(resumer)
	if !ok {
		return nil
	}
	// The first try looks for the kept CAR at the attempt before this
	// one's key (where it went if that attempt went on from it and ended
	// before it recorded so), then at the kept attempt's.
	var froms []string
	if n := a.number; kept > 0 {
		if n-1 > kept {
			froms = append(froms, carstore.StagingKey(a.id.String(), n-1))
		}
		froms = append(froms, carstore.StagingKey(a.id.String(), kept))
	}
	return func(context.Context) (dag.Kept, bool, error) {
		tries := froms
		froms = []string{key}
		for _, from := range tries {
			// The sink lives as long as the attempt's fetch, as one
			// Stage opens does.
			up, got, err := rs.Resume(fetchCtx, from, key, meta)
			switch {
			case errors.Is(err, carstore.ErrNoCheckpoint):
				a.logger.InfoContext(fetchCtx, "nothing kept to go on from", "at", from, "why", err)
				continue
			case err != nil:
				return dag.Kept{}, false, err
			}
			sink, ok := up.(dag.ResumableSink)
			if !ok {
				up.Abort(context.WithoutCancel(fetchCtx))
				return dag.Kept{}, false, nil
			}
			a.logger.InfoContext(fetchCtx, "going on with a kept CAR", "from", from, "bytes", got.Bytes, "checkpoints", len(got.Notes))
			return dag.Kept{Sink: sink, Bytes: got.Bytes, Notes: got.Notes}, true, nil
		}
		if len(tries) > 0 {
			a.logger.InfoContext(fetchCtx, "nothing kept to go on from; starting over")
		}
		return dag.Kept{}, false, nil
	}
}

// endTimeout bounds the cleanup at the end of an attempt.
const endTimeout = 30 * time.Second

// end runs when an attempt has ended, whichever way (pinned from the
// carpark or fetched, failed, claim lost, handed back, stopped): what
// this attempt and earlier ones of the request left in staging goes, and
// nothing of a later attempt that another fetcher may have begun. ctx may
// be done (a stopping pool): the cleanup runs all the same.
func (t *transfer) end(ctx context.Context, a *attempt) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	keep := 0
	if err := a.reload(ctx); err != nil {
		a.logger.WarnContext(ctx, "reading the pin to see what its attempts kept", "err", err)
	} else if k := t.keptBy(a.current()); k <= a.number {
		// A pin that will be tried again keeps what an attempt
		// checkpointed (this one's, if it got that far), for the next to
		// go on from.
		keep = k
	}
	t.discard(ctx, a, a.number, keep)
	t.dropUpload(ctx, a)
}

// dropUpload deletes the CAR a pin came with once the pin is over: pinned,
// failed for good, removed. A pin that will be tried again keeps it.
func (t *transfer) dropUpload(ctx context.Context, a *attempt) {
	key := a.current().Request.Upload
	if key == "" || t.received == nil {
		return
	}
	if err := a.reload(ctx); err != nil {
		a.logger.WarnContext(ctx, "reading the pin to see whether its upload may go", "err", err)
		return
	}
	s := a.current()
	if !over(s) {
		return
	}
	if err := t.received.Delete(ctx, key); err != nil {
		a.logger.WarnContext(ctx, "deleting the pin's upload", "upload", key, "err", err)
		return
	}
	a.logger.InfoContext(ctx, "deleted the pin's upload", "upload", key, "phase", s.Phase)
}

// sweep removes, when the pool starts, what attempts over for good left in
// staging (a process killed mid-attempt runs no end): for each request
// with leftovers, every attempt of a pin that is final or gone, and
// otherwise every attempt but a claimed one, which may be running.
func (t *transfer) sweep(ctx context.Context, p *Pool) {
	s, ok := t.cars.(sweeper)
	if !ok {
		return
	}
	n, err := s.SweepKeeping(ctx, func(ctx context.Context, requestID string) (int, int, error) {
		id, err := uuid.Parse(requestID)
		if err != nil {
			return math.MaxInt, 0, nil // no request of this log
		}
		st, _, err := p.pins.Read(ctx, id)
		if err != nil {
			return 0, 0, err
		}
		return deadThrough(st), t.keptBy(st), nil
	})
	if err != nil && ctx.Err() == nil {
		p.logger.WarnContext(ctx, "sweeping what killed attempts left in staging", "err", err)
	}
	p.logger.InfoContext(ctx, "swept what killed attempts left in staging", "count", n)
	t.sweepUploads(ctx, p, time.Now())
}

// uploadSweeper is an uploads area that lists what it holds
// (carupload.Dir is one).
type uploadSweeper interface {
	List(ctx context.Context) ([]carupload.Kept, error)
	DeletePartial(ctx context.Context, name string) error
}

// StrayUploadAge is how old an upload whose pin the log does not hold (or
// a partial one) must be before a sweep deletes it: the gateway receives a
// body whole before it records the request, and a body may take this long
// to arrive only if it never stalls for the idle timeout.
const StrayUploadAge = 6 * time.Hour

// sweepUploads deletes, when the pool starts, the uploads no pin will read
// again, that no attempt's end deleted: of pins removed before they were
// claimed, dead-lettered by the retry decider, or whose fetcher was
// killed; and what a gateway killed mid-body left.
func (t *transfer) sweepUploads(ctx context.Context, p *Pool, now time.Time) {
	sw, ok := t.received.(uploadSweeper)
	if !ok {
		return
	}
	kept, err := sw.List(ctx)
	if err != nil {
		p.logger.WarnContext(ctx, "listing the uploads area", "err", err)
		return
	}
	swept := 0
	for _, k := range kept {
		stray := now.Sub(k.Modified) > StrayUploadAge
		if k.Partial {
			if stray && sw.DeletePartial(ctx, k.Key) == nil {
				swept++
			}
			continue
		}
		id, ok := carupload.RequestIDOf(k.Key)
		if !ok {
			continue // not an upload of this pool's
		}
		s, _, err := p.pins.Read(ctx, id)
		if err != nil {
			p.logger.WarnContext(ctx, "reading the pin of an upload", "upload", k.Key, "err", err)
			continue
		}
		gone := over(s) || (s.Exists && s.Request.Upload != k.Key) || (!s.Exists && stray)
		if gone && t.received.Delete(ctx, k.Key) == nil {
			swept++
		}
	}
	p.logger.InfoContext(ctx, "swept the uploads no pin will read", "count", swept)
}

// deadThrough is the last attempt of a pin that no one may still run: all
// of them when it is final or was never requested, the current one unless
// it is claimed.
func deadThrough(s pin.State) int {
	switch {
	case !s.Exists || s.Final():
		return math.MaxInt
	case s.Claimed():
		return s.Attempt - 1
	}
	return s.Attempt
}

// reuse completes the attempt from the carpark when the root's CAR is
// already there, validated for an earlier request.
func (t *transfer) reuse(ctx context.Context, a *attempt, root cid.Cid) (bool, error) {
	if t.index == nil {
		return false, nil
	}
	s := a.current()
	// The index keys roots by their canonical form: CIDv1, base32.
	carCID, ok, err := t.index.CarForRoot(ctx, cid.NewCidV1(root.Type(), root.Hash()).String())
	if err != nil || !ok {
		return false, nil
	}
	c, err := cid.Decode(carCID)
	if err != nil {
		return false, nil
	}
	stored, ok, err := t.cars.Stat(ctx, root, c)
	if err != nil || !ok {
		return false, nil
	}
	if !stored.Root.Defined() {
		stored.Root = root
	}
	stored.CarCID = c
	idx, err := t.existingIndex(ctx, a, stored)
	if err != nil {
		// Not indexed, and not indexable now (the store unreachable, or
		// the CAR there corrupt): fetch as if it were not there.
		a.logger.WarnContext(ctx, "a CAR in the carpark could not be indexed; fetching", "key", stored.Key, "err", err)
		return false, nil
	}
	err = a.commit(ctx, func(s pin.State) (pin.Payload, error) {
		return s.Reuse(a.pool.cfg.Name, pin.CarValidated{Attempt: s.Attempt, Key: stored.Key, Bytes: stored.Bytes, CarCID: carCID,
			Index: idx.key, IndexBytes: idx.bytes, IndexSHA256: idx.sha256})
	})
	if err != nil {
		return true, claimGone(err)
	}
	t.reached(ctx, StepReused)
	a.ended(OutcomePinned, ReasonCarpark)
	a.logger.InfoContext(ctx, "pinned from the carpark without fetching", "attempt", s.Attempt, "car_cid", carCID)
	return true, nil
}

// storedIndex is a CAR's index as the carpark holds it.
type storedIndex struct {
	key    string
	bytes  int64
	sha256 string
}

// putIndex stores a CAR's index, computed from the bytes as they were
// written, beside it, and reads it back: CarValidated names the object the
// carpark holds, with its size and SHA-256, so that a reader can check
// the index it is given. PutIndex keeps an index already there only if it
// has the same entries, so what is read back indexes these bytes.
func (t *transfer) putIndex(ctx context.Context, st carstore.Stored, index []byte) (storedIndex, error) {
	key, err := t.cars.PutIndex(ctx, st, index)
	if err != nil {
		return storedIndex{}, err
	}
	have, err := t.readIndex(ctx, key)
	if err != nil {
		return storedIndex{}, err
	}
	return summarize(key, have), nil
}

// existingIndex returns the index beside a CAR the carpark already holds,
// or builds it, reading the CAR once and checking its blocks, when there
// is none (a CAR pinned before indexes) or what is there is not an index.
func (t *transfer) existingIndex(ctx context.Context, a *attempt, st carstore.Stored) (storedIndex, error) {
	key := carstore.IndexKey(st.Key)
	have, err := t.readIndex(ctx, key)
	switch {
	case err == nil && carstore.CheckIndex(have) == nil:
		// The mapping may be missing (a PutIndex cut short): PutIndex
		// writes it, and leaves the index as it is.
		if _, err := t.cars.PutIndex(ctx, st, have); err != nil {
			return storedIndex{}, err
		}
		return summarize(key, have), nil
	case err != nil && !errors.Is(err, carstore.ErrNotFound):
		return storedIndex{}, err
	}
	opener, ok := t.cars.(carOpener)
	if !ok {
		return storedIndex{}, errors.New("the CAR store cannot read CARs back to index them")
	}
	r, err := opener.Open(ctx, st.Key)
	if err != nil {
		return storedIndex{}, err
	}
	built, err := carstore.BuildIndex(r)
	r.Close()
	if err != nil {
		return storedIndex{}, fmt.Errorf("index %s: %w", st.Key, err)
	}
	if built.CarCID != st.CarCID || built.Bytes != st.Bytes || !built.Root.Equals(st.Root) {
		return storedIndex{}, fmt.Errorf("index %s: %w: read %d bytes of CAR %s rooted at %s, want %d of %s rooted at %s",
			st.Key, carstore.ErrCorrupt, built.Bytes, built.CarCID, built.Root, st.Bytes, st.CarCID, st.Root)
	}
	a.logger.InfoContext(ctx, "indexed a CAR of the carpark that had no index", "key", st.Key, "blocks", built.Blocks)
	return t.putIndex(ctx, st, built.Index)
}

// carOpener is a CAR store that reads CARs back (carstore.S3 and
// carstore.Dir are).
type carOpener interface {
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

func (t *transfer) readIndex(ctx context.Context, key string) ([]byte, error) {
	r, err := t.cars.ReadRange(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

func summarize(key string, index []byte) storedIndex {
	sum := sha256.Sum256(index)
	return storedIndex{key: key, bytes: int64(len(index)), sha256: hex.EncodeToString(sum[:])}
}

// progressEvery is how often an attempt reports its progress, which also
// renews its lease: often enough that users watching a pin see it move
// (users of pinning services complain they cannot), and at least three
// times a lease, so that one lost report never costs the claim.
func progressEvery(lease time.Duration) time.Duration { return min(lease/3, 2*time.Second) }

// renew reports progress (see progressEvery), and at once when a try has
// gone on from a kept CAR, until ctx ends, and stops the attempt when a
// report is refused.
func (t *transfer) renew(ctx context.Context, a *attempt, stop context.CancelCauseFunc, sofar *atomic.Pointer[dag.Progress], resumed <-chan struct{}) {
	tick := time.NewTicker(progressEvery(t.lease))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-resumed:
		}
		attempt := a.current().Attempt
		p := sofar.Load()
		err := a.commit(ctx, func(s pin.State) (pin.Payload, error) {
			return s.Progress(pin.FetchProgress{Attempt: attempt, Fetcher: a.pool.cfg.Name, Bytes: p.Bytes, Blocks: p.Blocks, Source: p.Source,
				BlockBytes: p.BlockBytes, ExpectedBytes: p.Expected, Checkpoint: p.Checkpoint, ResumedFrom: p.ResumedFrom}, time.Now(), t.lease)
		})
		switch {
		case err == nil:
		case isRefusal(err):
			a.logger.InfoContext(ctx, "claim gone; stopping", "attempt", attempt, "why", err)
			stop(errClaimLost)
			return
		case ctx.Err() == nil:
			// The log is unreachable: keep fetching, and try again at the
			// next tick; the lease runs out if it stays so.
			a.logger.WarnContext(ctx, "renewing lease", "attempt", attempt, "err", err)
		}
	}
}

// recordKept records, before the attempt fails, the CAR its last try kept
// (the try's last checkpoint, which the renewals may not have reported),
// for the next attempt to go on from; a failure is logged, and the next
// attempt goes on from the last one reported, or starts over.
func (t *transfer) recordKept(ctx context.Context, a *attempt, kept int64, p *dag.Progress) {
	err := a.commit(ctx, func(s pin.State) (pin.Payload, error) {
		return s.Progress(pin.FetchProgress{Attempt: a.number, Fetcher: a.pool.cfg.Name, Bytes: max(p.Bytes, kept), Blocks: p.Blocks, Source: p.Source,
			BlockBytes: min(p.BlockBytes, max(p.Bytes, kept)), ExpectedBytes: p.Expected, Checkpoint: kept, ResumedFrom: p.ResumedFrom}, time.Now(), t.lease)
	})
	if err != nil {
		a.logger.WarnContext(ctx, "recording the CAR the attempt kept", "bytes", kept, "err", err)
	}
}

// fetchFailed records why the fetch failed, unless the attempt was stopped
// from outside (claim lost, shutting down).
func (t *transfer) fetchFailed(ctx context.Context, a *attempt, fetchCtx context.Context, err error, sofar *dag.Progress) error {
	if cause := context.Cause(fetchCtx); errors.Is(cause, errClaimLost) {
		return errClaimLost
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var f *dag.Failure
	if errors.As(err, &f) {
		permanent := f.Reason.Permanent()
		if a.current().Request.Upload != "" && f.Reason != pin.ReasonStorage && f.Reason != pin.ReasonTimeout {
			// The upload is what it is: another attempt reads the same
			// bytes, and fails the same way.
			permanent = true
		}
		if f.Kept > 0 && !permanent {
			t.recordKept(ctx, a, f.Kept, sofar)
		}
		a.fail(ctx, f.Reason, f.Error(), permanent)
		return nil
	}
	// Not a source's failure: the sink (storage) or something local.
	a.fail(ctx, pin.ReasonStorage, err.Error(), false)
	return nil
}

// validate checks the staged CAR into the carpark, stores its index
// beside it, and records the outcome.
func (t *transfer) validate(ctx context.Context, a *attempt, staged carstore.Staged, meta carstore.Metadata, index []byte) error {
	attempt := a.current().Attempt
	pctx := ctx
	if t.step != nil {
		pctx = carstore.WithStep(ctx, func(step string) { t.step(ctx, step) })
	}
	stored, err := t.cars.Promote(pctx, staged.Key, carstore.Expected{Bytes: staged.Bytes, CarCID: staged.CarCID, Metadata: meta, Checksum: staged.Checksum})
	switch {
	case errors.Is(err, carstore.ErrValidation):
		a.fail(ctx, pin.ReasonValidation, err.Error(), false)
		return nil
	case err != nil:
		a.fail(ctx, pin.ReasonStorage, fmt.Sprintf("validating into the carpark: %v", err), false)
		return nil
	}
	if !stored.Root.Defined() {
		stored.Root = meta.Root // a CAR there without its metadata
	}
	stored.CarCID = staged.CarCID
	idx, err := t.putIndex(ctx, stored, index)
	if err != nil {
		// The CAR is in the carpark: the next attempt completes from it,
		// and stores its index then.
		a.fail(ctx, pin.ReasonStorage, fmt.Sprintf("storing the CAR's index: %v", err), false)
		return nil
	}
	err = a.commit(ctx, func(s pin.State) (pin.Payload, error) {
		return s.Validate(pin.CarValidated{Attempt: attempt, Key: stored.Key, Bytes: stored.Bytes, CarCID: staged.CarCID.String(),
			Index: idx.key, IndexBytes: idx.bytes, IndexSHA256: idx.sha256})
	})
	if err != nil {
		return claimGone(err)
	}
	t.reached(ctx, StepValidated)
	a.ended(OutcomePinned, ReasonFetched)
	a.logger.InfoContext(ctx, "pinned", "attempt", attempt, "car_cid", staged.CarCID, "bytes", stored.Bytes)
	return nil
}

// claimGone turns a refusal into errClaimLost, and passes other errors on.
func claimGone(err error) error {
	if isRefusal(err) {
		return fmt.Errorf("%w: %v", errClaimLost, err)
	}
	return err
}

// received turns the fetch's progress reports (totals so far, from zero
// again for each source tried) into the counts newly received, for the
// metrics.
type received struct {
	metrics Metrics

	mu            sync.Mutex
	source        string
	bytes, blocks int64
}

func (r *received) update(source string, bytes, blocks int64) {
	r.mu.Lock()
	if source != r.source || bytes < r.bytes || blocks < r.blocks {
		// Another source's try: its totals start from zero.
		r.source, r.bytes, r.blocks = source, 0, 0
	}
	newBytes, newBlocks := bytes-r.bytes, blocks-r.blocks
	r.bytes, r.blocks = bytes, blocks
	r.mu.Unlock()
	r.metrics.Received(source, newBytes, newBlocks)
}

// origins parses the request's origins; the gateway accepted only valid
// ones, so an unparsable one is skipped.
func origins(addrs []string) []multiaddr.Multiaddr {
	var out []multiaddr.Multiaddr
	for _, a := range addrs {
		if m, err := multiaddr.NewMultiaddr(a); err == nil {
			out = append(out, m)
		}
	}
	return out
}
