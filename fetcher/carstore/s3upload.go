package carstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// contentTypeCAR is the media type of stored CARs.
const contentTypeCAR = "application/vnd.ipld.car"

// errAborted is why an aborted upload's writes fail.
var errAborted = fmt.Errorf("upload aborted: %w", ErrClosed)

type uploadState int

const (
	stateOpen uploadState = iota
	stateCompleted
	stateBroken // failed; Abort has something to clean up
	stateAborted
	stateSuspended // ended, kept for a later Resume
)

// s3Upload streams a CAR into a multipart upload at its carpark key
// (RootKey): Write fills a part buffer; each full buffer is sent as a part
// by a goroutine of its own, at most Concurrency at once, while Write fills
// the next. Every part carries its SHA-256, which the server checks; the
// senders also hash the whole stream, in part order, for the CAR CID.
// Write itself only copies, so the fetch that calls it is not slowed by
// hashing. Nothing of it is visible in the carpark until Promote completes
// the upload; the staging marker names it meanwhile.
//
// It is a dag.ResumableSink: the bytes of the parts the server has taken,
// from the first on without a gap, are durable, and a checkpoint keeps,
// beside the marker, those parts and the whole stream's hash state after
// them, with the fetcher's note (see S3.Resume).
type s3Upload struct {
	s      *S3
	key    string // the staging key, as the caller gave it
	object string // the carpark key the upload writes to
	id     string // of the multipart upload

	// ctx is the parts' context: the caller's, cancelled with a cause by
	// Abort or by the first part that fails.
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu    sync.Mutex // serialises Write, Complete and Abort's cleanup
	state uploadState
	// settled: Settle was called; no more writes.
	settled bool
	buf     *[]byte // the part being filled, nil if none
	n       int     // bytes in buf
	next    int32   // number of the next part
	total   int64
	// full hashes the whole stream, written by the senders in part order:
	// each waits for hashed as it was when its part was sent.
	full   hash.Hash
	hashed chan struct{}

	slots chan struct{} // a token per part in flight
	wg    sync.WaitGroup

	pmu     sync.Mutex // guards what follows, filled in by the senders
	parts   []types.CompletedPart
	digests [][sha256.Size]byte
	sizes   []int64
	// states[i] is the whole stream's hash state after part i+1, kept
	// until a checkpoint past it.
	states [][]byte
	// durableParts are the parts taken, from the first, without a gap;
	// durable their bytes.
	durableParts int
	durable      atomic.Int64
	// ckParts and ckBytes are what the last checkpoint describes.
	ckParts int
	ckBytes int64
}

func (s *S3) newUpload(ctx context.Context, key string, meta Metadata) (*s3Upload, error) {
	object := RootKey(meta.Root)
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:      aws.String(s.cfg.CarparkBucket),
		Key:         aws.String(object),
		ContentType: aws.String(contentTypeCAR),
		Metadata: map[string]string{
			MetaRoot: meta.Root.String(), MetaRequestID: meta.RequestID, MetaStructure: StructureComplete,
		},
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumType:      types.ChecksumTypeComposite,
	}, whenRequired)
	if err != nil {
		return nil, fmt.Errorf("stage %s: begin multipart upload: %w", key, err)
	}
	id := aws.ToString(out.UploadId)
	// The marker goes first, before any part: a process killed from here
	// on leaves an upload that Discard finds by the request's id.
	if err := s.putMarker(ctx, key, marker{Key: object, UploadID: id}); err != nil {
		cctx, cancel := s.cleanupContext(ctx)
		defer cancel()
		_, aerr := s.client.AbortMultipartUpload(cctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(object), UploadId: aws.String(id),
		}, whenRequired)
		return nil, errors.Join(fmt.Errorf("stage %s: %w", key, err), aerr)
	}
	uctx, cancel := context.WithCancelCause(ctx)
	s.log.DebugContext(ctx, "upload begun", "key", key, "carpark_key", object, "upload_id", id)
	return &s3Upload{
		s: s, key: key, object: object, id: id,
		ctx: uctx, cancel: cancel,
		next:   1,
		full:   sha256.New(),
		hashed: closedChan(),
		slots:  make(chan struct{}, s.cfg.Concurrency),
	}, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Write copies p into part buffers, sending each as it fills. It blocks
// while Concurrency parts are in flight.
func (u *s3Upload) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state != stateOpen || u.settled {
		return 0, fmt.Errorf("write to upload of %s: %w", u.key, ErrClosed)
	}
	if err := u.failure(); err != nil {
		return 0, err
	}
	written := 0
	for len(p) > 0 {
		if u.buf == nil {
			u.buf, u.n = u.s.parts.get(), 0
		}
		c := copy((*u.buf)[u.n:], p)
		u.n += c
		u.total += int64(c)
		written += c
		p = p[c:]
		if u.n == len(*u.buf) {
			if err := u.send(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// failure returns why the upload can go no further, or nil.
func (u *s3Upload) failure() error {
	if u.ctx.Err() == nil {
		return nil
	}
	return context.Cause(u.ctx)
}

// send hands the current buffer to a sender goroutine as the next part,
// once a slot is free.
func (u *s3Upload) send() error {
	if u.next > maxParts {
		return fmt.Errorf("upload of %s: over %d parts of %d bytes", u.key, maxParts, u.s.cfg.PartSize)
	}
	select {
	case u.slots <- struct{}{}:
	case <-u.ctx.Done():
		return context.Cause(u.ctx)
	}
	num, buf, n := u.next, u.buf, u.n
	prev, done := u.hashed, make(chan struct{})
	u.next, u.hashed = u.next+1, done
	u.buf, u.n = nil, 0
	u.pmu.Lock()
	u.parts = append(u.parts, types.CompletedPart{})
	u.digests = append(u.digests, [sha256.Size]byte{})
	u.sizes = append(u.sizes, int64(n))
	u.states = append(u.states, nil)
	u.pmu.Unlock()
	u.wg.Add(1)
	go u.uploadPart(num, buf, n, prev, done)
	return nil
}

// uploadPart sends one part with its SHA-256 in x-amz-checksum-sha256,
// which the server checks against the bytes it receives. The payload is
// sent unsigned (as the SDK does by default over HTTPS): the checksum
// header is signed, so the body is still bound to the signature, and the
// server hashes each part once instead of twice.
func (u *s3Upload) uploadPart(num int32, buf *[]byte, n int, prev <-chan struct{}, done chan<- struct{}) {
	defer u.wg.Done()
	defer func() { <-u.slots }()
	data := (*buf)[:n]
	// The whole stream's hash takes the parts in order, each while it is
	// being sent, off the writer's goroutine.
	var hashing sync.WaitGroup
	defer hashing.Wait()
	var state []byte
	hashing.Go(func() {
		<-prev
		u.full.Write(data)
		// The state after this part, for a checkpoint at its end: taken
		// before the next part's hashing goes on.
		state, _ = u.full.(encoding.BinaryMarshaler).MarshalBinary()
		close(done)
	})
	sum := sha256.Sum256(data)
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	out, err := u.s.client.UploadPart(u.ctx, &s3.UploadPartInput{
		Bucket:         aws.String(u.s.cfg.CarparkBucket),
		Key:            aws.String(u.object),
		UploadId:       aws.String(u.id),
		PartNumber:     aws.Int32(num),
		Body:           bytes.NewReader(data),
		ContentLength:  aws.Int64(int64(n)),
		ChecksumSHA256: aws.String(b64),
	}, whenRequired, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	if err != nil {
		// The buffer is not recycled: after a failed request the HTTP
		// transport may still be reading it.
		u.cancel(fmt.Errorf("upload part %d of %s: %w", num, u.key, err))
		return
	}
	hashing.Wait()
	u.s.parts.put(buf)
	u.pmu.Lock()
	defer u.pmu.Unlock()
	u.parts[num-1] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num), ChecksumSHA256: aws.String(b64)}
	u.digests[num-1] = sum
	u.states[num-1] = state
	d := u.durable.Load()
	for u.durableParts < len(u.parts) && u.parts[u.durableParts].ETag != nil {
		d += u.sizes[u.durableParts]
		u.durableParts++
	}
	u.durable.Store(d)
}

// HashesCAR marks the upload as one that computes the CAR CID of what it is
// given (Staged.CarCID), so a writer need not hash the CAR again (see
// dag.HashingSink).
func (u *s3Upload) HashesCAR() {}

// BuffersWrites marks the upload as one that copies what it is given into
// its part buffers, so a writer need not buffer for it (see
// dag.BufferingSink).
func (u *s3Upload) BuffersWrites() {}

// Complete sends the last part and waits for all; the server has checked
// each part against its SHA-256. It does not complete the multipart upload:
// that makes the CAR visible in the carpark, which only Promote may do. It
// records what was written (size, the checksum token) in the staging
// marker, and returns it.
func (u *s3Upload) Complete(ctx context.Context) (Staged, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state != stateOpen {
		return Staged{}, fmt.Errorf("complete upload of %s: %w", u.key, ErrClosed)
	}
	st, err := u.complete(ctx)
	if err != nil {
		err = fmt.Errorf("complete upload of %s: %w", u.key, err)
		u.state = stateBroken
		if cerr := u.cleanup(ctx); cerr != nil {
			u.s.log.WarnContext(ctx, "cleanup of a failed upload failed; Abort retries it", "key", u.key, "err", cerr)
		}
		return Staged{}, err
	}
	u.state = stateCompleted
	u.s.log.DebugContext(ctx, "upload staged", "key", u.key, "bytes", st.Bytes, "car_cid", st.CarCID)
	return st, nil
}

func (u *s3Upload) complete(ctx context.Context) (Staged, error) {
	// The parts stop if the caller gives up on Complete.
	stop := context.AfterFunc(ctx, func() { u.cancel(context.Cause(ctx)) })
	defer stop()
	if u.buf != nil || u.next == 1 {
		// The last part may be short; an empty CAR is one empty part.
		if u.buf == nil {
			u.buf, u.n = u.s.parts.get(), 0
		}
		if err := u.send(); err != nil {
			return Staged{}, err
		}
	}
	u.wg.Wait()
	if err := u.failure(); err != nil {
		return Staged{}, err
	}
	var tok checksumToken
	u.full.Sum(tok.full[:0])
	tok.composite = compositeChecksum(u.digests)
	st := Staged{Key: u.key, Bytes: u.total, CarCID: CarCID(tok.full[:]), Checksum: tok.String()}
	if err := u.s.putMarker(ctx, u.key, marker{Key: u.object, UploadID: u.id, Bytes: st.Bytes, Checksum: st.Checksum, Parts: len(u.digests)}); err != nil {
		return Staged{}, err
	}
	return st, nil
}

// Abort stops the parts in flight, then aborts the multipart upload and
// deletes the staging marker. It never deletes from the carpark: after a
// Promote, the upload is complete and there is nothing to abort.
func (u *s3Upload) Abort(ctx context.Context) error {
	u.cancel(errAborted) // makes a blocked Write return, and stops the parts
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state == stateAborted {
		return nil
	}
	if err := u.cleanup(ctx); err != nil {
		u.state = stateBroken
		return fmt.Errorf("abort upload of %s: %w", u.key, err)
	}
	u.state = stateAborted
	u.s.log.DebugContext(ctx, "upload aborted", "key", u.key)
	return nil
}

func (u *s3Upload) cleanup(ctx context.Context) error {
	u.cancel(errAborted)
	// S3 may keep a part that is still arriving when the upload is aborted:
	// the senders finish first.
	u.wg.Wait()
	if u.buf != nil {
		u.s.parts.put(u.buf)
		u.buf = nil
	}
	ctx, cancel := u.s.cleanupContext(ctx)
	defer cancel()
	return u.s.discardStaged(ctx, u.key, marker{Key: u.object, UploadID: u.id})
}
