package carstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ErrNoCheckpoint is Resume's answer when nothing kept can be gone on
// from: no checkpoint, or one the server's parts no longer match (the
// upload aborted, a part replaced). What was kept is discarded; the
// caller starts over.
var ErrNoCheckpoint = errors.New("no checkpoint to go on from")

// errSuspended is why a suspended upload's writes fail.
var errSuspended = fmt.Errorf("upload suspended: %w", ErrClosed)

// Resumed is what S3.Resume found kept: the CAR bytes the upload goes on
// from, and the notes of its checkpoints, in order (see
// dag.ResumableSink); Parts is how many parts hold those bytes.
type Resumed struct {
	Bytes int64
	Notes [][]byte
	Parts int
}

// checkpointObject is a checkpoint of an upload, an object beside its
// staging marker (checkpointKey): the parts taken since the checkpoint
// before it, from part First, and the whole stream's hash state after
// them, at Bytes, with the notes the writer kept there (one; Resume
// writes one object of all of them when it moves an upload to another
// attempt's key).
type checkpointObject struct {
	Bytes int64      `json:"bytes"`
	First int        `json:"first"`
	Parts []keptPart `json:"parts"`
	Hash  []byte     `json:"hash"`
	Notes [][]byte   `json:"notes"`
}

// keptPart is a part as a checkpoint records it, to be checked against
// what the server lists.
type keptPart struct {
	ETag   string `json:"etag"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

const (
	// checkpointType is the media type of checkpoint objects.
	checkpointType = "application/vnd.pickup.checkpoint+json"
	// checkpointSuffix follows a staging key in its checkpoints' keys.
	checkpointSuffix = ".ck/"
	// maxCheckpointBytes bounds what Resume reads of one checkpoint: the
	// notes of a 31 GiB DAG of 256 KiB blocks are about 6 MB.
	maxCheckpointBytes = 64 << 20
)

// checkpointKey is the key, in the staging bucket, of the checkpoint of
// the upload at stagedKey that ends after part parts: in key order,
// checkpoints are in the order they were written.
func (s *S3) checkpointKey(stagedKey string, parts int) string {
	return fmt.Sprintf("%s%s%05d", s.stagingKey(stagedKey), checkpointSuffix, parts)
}

// isCheckpoint reports whether a staging bucket key is a checkpoint's.
func isCheckpoint(key string) bool { return strings.Contains(key, checkpointSuffix) }

// Durable returns the bytes of the parts the server has taken, from the
// first on without a gap: the points a checkpoint may describe.
func (u *s3Upload) Durable() int64 { return u.durable.Load() }

// Checkpoint keeps note as the description of the point at, a value
// Durable returned: an object beside the marker records the parts taken
// since the last checkpoint and the hash state after them.
func (u *s3Upload) Checkpoint(ctx context.Context, at int64, note []byte) error {
	u.pmu.Lock()
	k, sum := u.ckParts, u.ckBytes
	for sum < at && k < u.durableParts {
		sum += u.sizes[k]
		k++
	}
	if sum != at || k == u.ckParts {
		u.pmu.Unlock()
		return fmt.Errorf("checkpoint upload of %s at %d: not a durable point past the last (%d)", u.key, at, u.ckBytes)
	}
	obj := checkpointObject{Bytes: at, First: u.ckParts + 1, Hash: u.states[k-1], Notes: [][]byte{note}}
	for i := u.ckParts; i < k; i++ {
		obj.Parts = append(obj.Parts, keptPart{ETag: aws.ToString(u.parts[i].ETag), SHA256: aws.ToString(u.parts[i].ChecksumSHA256), Size: u.sizes[i]})
	}
	u.pmu.Unlock()
	if err := u.s.putCheckpoint(ctx, u.key, k, obj); err != nil {
		return fmt.Errorf("checkpoint upload of %s: %w", u.key, err)
	}
	u.pmu.Lock()
	defer u.pmu.Unlock()
	for i := u.ckParts; i < k; i++ {
		u.states[i] = nil
	}
	u.ckParts, u.ckBytes = k, at
	return nil
}

// Settle waits for the parts in flight (until ctx is done, when they are
// stopped), so that Durable counts every part the server took; the upload
// takes no more writes.
func (u *s3Upload) Settle(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state != stateOpen {
		return fmt.Errorf("settle upload of %s: %w", u.key, ErrClosed)
	}
	u.settled = true
	done := make(chan struct{})
	go func() {
		u.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		u.cancel(context.Cause(ctx))
		<-done
		return context.Cause(ctx)
	}
}

// Suspend ends the upload, keeping it, its marker and its checkpoints for
// Resume: the parts in flight are stopped, and a later try sends again
// what the last checkpoint does not describe.
func (u *s3Upload) Suspend(ctx context.Context) error {
	u.cancel(errSuspended)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state != stateOpen {
		return fmt.Errorf("suspend upload of %s: %w", u.key, ErrClosed)
	}
	u.wg.Wait()
	if u.buf != nil {
		u.s.parts.put(u.buf)
		u.buf = nil
	}
	u.state = stateSuspended
	u.s.log.DebugContext(ctx, "upload suspended", "key", u.key, "kept_bytes", u.ckBytes, "kept_parts", u.ckParts)
	return nil
}

// Resume goes on with the upload an earlier try kept at fromKey, for the
// staging key toKey (the same key, for a later try of one attempt; the
// next attempt's): it reads the checkpoints, checks that the server lists
// the parts they record (each one's ETag, SHA-256 and size), and returns
// an upload that goes on writing after the last of them, its whole-stream
// hash restored, with what was kept. For another key, the marker and a
// checkpoint of everything kept are written at toKey before fromKey's are
// deleted; the multipart upload stays where it is, and Promote completes
// exactly the parts the resumed upload's Complete says.
//
// ErrNoCheckpoint: nothing kept at fromKey, or what is kept no longer
// matches the server (the upload aborted or of another root, a part
// replaced); what was there is discarded, and the caller starts over.
func (s *S3) Resume(ctx context.Context, fromKey, toKey string, meta Metadata) (Upload, Resumed, error) {
	for _, k := range []string{fromKey, toKey} {
		if err := checkKey(k); err != nil {
			return nil, Resumed{}, fmt.Errorf("resume: %w", err)
		}
	}
	if err := meta.validate(); err != nil {
		return nil, Resumed{}, fmt.Errorf("resume %s: %w", fromKey, err)
	}
	fail := func(err error) (Upload, Resumed, error) {
		return nil, Resumed{}, fmt.Errorf("resume %s as %s: %w", fromKey, toKey, err)
	}
	m, ok, err := s.getMarker(ctx, fromKey)
	if err != nil {
		return fail(err)
	}
	gone := func(format string, args ...any) (Upload, Resumed, error) {
		cctx, cancel := s.cleanupContext(ctx)
		defer cancel()
		if derr := s.discardStaged(cctx, fromKey, m); derr != nil {
			s.log.WarnContext(ctx, "discarding a kept upload that cannot be gone on from", "key", fromKey, "err", derr)
		}
		return fail(fmt.Errorf("%w: "+format, append([]any{ErrNoCheckpoint}, args...)...))
	}
	if !ok {
		return gone("no upload kept")
	}
	if m.Key != RootKey(meta.Root) {
		return gone("the kept upload is of %s, not of %s", m.Key, RootKey(meta.Root))
	}
	kept, err := s.readCheckpoints(ctx, fromKey)
	switch {
	case errors.Is(err, errBadCheckpoint):
		return gone("%v", err)
	case err != nil:
		return fail(err)
	case len(kept.Parts) == 0:
		return gone("no checkpoint")
	}
	listed := 0
	err = s.eachPart(ctx, m, len(kept.Parts), func(p types.Part) error {
		listed++
		want := kept.Parts[listed-1]
		switch {
		case int(aws.ToInt32(p.PartNumber)) != listed:
			return fmt.Errorf("%w: part %d is missing", errBadCheckpoint, listed)
		case strings.Trim(aws.ToString(p.ETag), `"`) != strings.Trim(want.ETag, `"`) || aws.ToString(p.ChecksumSHA256) != want.SHA256 || aws.ToInt64(p.Size) != want.Size:
			return fmt.Errorf("%w: part %d is not the one checkpointed", errBadCheckpoint, listed)
		}
		return nil
	})
	if err == nil && listed != len(kept.Parts) {
		err = fmt.Errorf("%w: the server holds %d of the %d parts checkpointed", errBadCheckpoint, listed, len(kept.Parts))
	}
	switch {
	case isNotFound(err):
		return gone("the upload is gone")
	case errors.Is(err, errBadCheckpoint):
		return gone("%v", err)
	case err != nil:
		return fail(fmt.Errorf("list parts: %w", err))
	}
	u, err := s.resumedUpload(ctx, toKey, m, kept)
	if err != nil {
		return gone("%v", err)
	}
	if toKey != fromKey {
		if err := s.move(ctx, fromKey, toKey, m, kept); err != nil {
			u.cancel(errAborted)
			return fail(err)
		}
	}
	s.log.DebugContext(ctx, "upload resumed", "from", fromKey, "key", toKey, "bytes", kept.Bytes, "parts", len(kept.Parts))
	return u, Resumed{Bytes: kept.Bytes, Notes: kept.Notes, Parts: len(kept.Parts)}, nil
}

// errBadCheckpoint: checkpoints that do not decode or do not add up.
var errBadCheckpoint = errors.New("checkpoints do not describe the upload")

func (s *S3) putCheckpoint(ctx context.Context, stagedKey string, parts int, obj checkpointObject) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.cfg.StagingBucket), Key: aws.String(s.checkpointKey(stagedKey, parts)),
		Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String(checkpointType),
	}, whenRequired)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// checkpointKeys lists the keys of the checkpoints of the upload at
// stagedKey, in order.
func (s *S3) checkpointKeys(ctx context.Context, stagedKey string) ([]string, error) {
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.StagingBucket), Prefix: aws.String(s.stagingKey(stagedKey) + checkpointSuffix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, whenRequired)
		if err != nil {
			return nil, fmt.Errorf("list checkpoints: %w", err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// readCheckpoints reads the checkpoints of the upload at stagedKey and
// adds them up into one: every part from the first, the notes in order,
// the hash state and point of the last. Checkpoints that do not follow
// each other are errBadCheckpoint; none is an empty one.
func (s *S3) readCheckpoints(ctx context.Context, stagedKey string) (checkpointObject, error) {
	var all checkpointObject
	keys, err := s.checkpointKeys(ctx, stagedKey)
	if err != nil {
		return all, err
	}
	for _, key := range keys {
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.StagingBucket), Key: aws.String(key)}, whenRequired)
		if err != nil {
			return all, fmt.Errorf("read checkpoint %s: %w", key, err)
		}
		b, err := io.ReadAll(io.LimitReader(out.Body, maxCheckpointBytes+1))
		out.Body.Close()
		if err != nil {
			return all, fmt.Errorf("read checkpoint %s: %w", key, err)
		}
		var ck checkpointObject
		if aws.ToString(out.ContentType) != checkpointType || len(b) > maxCheckpointBytes || json.Unmarshal(b, &ck) != nil {
			return all, fmt.Errorf("%w: %s is not a checkpoint", errBadCheckpoint, key)
		}
		sum := all.Bytes
		for _, p := range ck.Parts {
			sum += p.Size
		}
		if ck.First != len(all.Parts)+1 || len(ck.Parts) == 0 || sum != ck.Bytes || len(ck.Notes) == 0 {
			return all, fmt.Errorf("%w: %s does not follow the checkpoint before it", errBadCheckpoint, key)
		}
		all.Parts = append(all.Parts, ck.Parts...)
		all.Notes = append(all.Notes, ck.Notes...)
		all.Bytes, all.Hash = ck.Bytes, ck.Hash
	}
	all.First = 1
	return all, nil
}

// deleteCheckpoints deletes the checkpoints of the upload at stagedKey.
func (s *S3) deleteCheckpoints(ctx context.Context, stagedKey string) error {
	keys, err := s.checkpointKeys(ctx, stagedKey)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.StagingBucket), Key: aws.String(key)}, whenRequired); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete checkpoint %s: %w", key, err)
		}
	}
	return nil
}

// move makes the upload m kept at fromKey toKey's: one checkpoint of
// everything kept and the marker are written at toKey, then fromKey's
// checkpoints and marker are deleted. A crash in between leaves both
// keys naming the upload; whichever is discarded first aborts it, and the
// other's Resume finds it gone and starts over.
func (s *S3) move(ctx context.Context, fromKey, toKey string, m marker, kept checkpointObject) error {
	if err := s.deleteCheckpoints(ctx, toKey); err != nil {
		return err
	}
	if err := s.putCheckpoint(ctx, toKey, len(kept.Parts), kept); err != nil {
		return err
	}
	if err := s.putMarker(ctx, toKey, marker{Key: m.Key, UploadID: m.UploadID}); err != nil {
		return err
	}
	if err := s.deleteCheckpoints(ctx, fromKey); err != nil {
		return err
	}
	return s.deleteMarker(ctx, fromKey)
}

// resumedUpload is the upload of m at stagedKey going on after what kept
// describes: its parts, their digests and the whole stream's hash as
// they were.
func (s *S3) resumedUpload(ctx context.Context, stagedKey string, m marker, kept checkpointObject) (*s3Upload, error) {
	full := sha256.New()
	if err := full.(encoding.BinaryUnmarshaler).UnmarshalBinary(kept.Hash); err != nil {
		return nil, fmt.Errorf("%w: the hash state: %v", errBadCheckpoint, err)
	}
	n := len(kept.Parts)
	if n >= maxParts {
		return nil, fmt.Errorf("%w: %d parts kept, no room for more", errBadCheckpoint, n)
	}
	uctx, cancel := context.WithCancelCause(ctx)
	u := &s3Upload{
		s: s, key: stagedKey, object: m.Key, id: m.UploadID,
		ctx: uctx, cancel: cancel,
		next:   int32(n + 1),
		total:  kept.Bytes,
		full:   full,
		hashed: closedChan(),
		slots:  make(chan struct{}, s.cfg.Concurrency),
		parts:  make([]types.CompletedPart, n), digests: make([][sha256.Size]byte, n),
		sizes: make([]int64, n), states: make([][]byte, n),
		durableParts: n, ckParts: n, ckBytes: kept.Bytes,
	}
	for i, p := range kept.Parts {
		raw, err := base64.StdEncoding.DecodeString(p.SHA256)
		if err != nil || len(raw) != sha256.Size {
			cancel(errAborted)
			return nil, fmt.Errorf("%w: part %d's SHA-256 %q", errBadCheckpoint, i+1, p.SHA256)
		}
		copy(u.digests[i][:], raw)
		u.parts[i] = types.CompletedPart{ETag: aws.String(p.ETag), PartNumber: aws.Int32(int32(i + 1)), ChecksumSHA256: aws.String(p.SHA256)}
		u.sizes[i] = p.Size
	}
	u.durable.Store(kept.Bytes)
	return u, nil
}
