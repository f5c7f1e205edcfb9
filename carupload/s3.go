package carupload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/ipfs/go-cid"
)

// S3's bounds on multipart uploads.
const (
	minPartSize = 5 << 20 // every part but the last
	maxPartSize = 5 << 30
	maxParts    = 10000
)

// DefaultS3Prefix is the key prefix of uploads in their bucket.
const DefaultS3Prefix = "uploads/"

// S3Config says where an S3 uploads area is. Zero fields take the
// defaults listed.
type S3Config struct {
	// Bucket holds the uploads (in a deployment, the staging bucket, whose
	// lifecycle rule expires what a sweep missed and aborts multipart
	// uploads never completed).
	Bucket string
	// Prefix is put before every key: default DefaultS3Prefix. It ends in
	// "/".
	Prefix string
	// PartSize is the size of each part of an upload's multipart upload:
	// default 8 MiB, 5 MiB to 5 GiB. A body smaller than one part (all of
	// what Lambda lets through, 6 MB) is sent with one PutObject once it
	// is whole. Receive holds at most (Concurrency+2) × PartSize: the
	// parts in flight, the one being filled, and the index's.
	PartSize int64
	// Concurrency is how many parts of one upload are sent at once:
	// default 2.
	Concurrency int
	// CleanupTimeout bounds the aborts and deletes after a refusal, which
	// run even when the request's context is done: default 1m.
	CleanupTimeout time.Duration
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c S3Config) WithDefaults() S3Config {
	if c.Prefix == "" {
		c.Prefix = DefaultS3Prefix
	}
	if c.PartSize == 0 {
		c.PartSize = 8 << 20
	}
	if c.Concurrency == 0 {
		c.Concurrency = 2
	}
	if c.CleanupTimeout == 0 {
		c.CleanupTimeout = time.Minute
	}
	return c
}

// Validate reports the first thing wrong with c (after defaults).
func (c S3Config) Validate() error {
	switch {
	case c.Bucket == "":
		return errors.New("carupload: no bucket for uploads")
	case !strings.HasSuffix(c.Prefix, "/") || strings.HasPrefix(c.Prefix, "/") || strings.Contains(c.Prefix, "//"):
		return fmt.Errorf("carupload: uploads prefix %q: want a relative key prefix ending in /, such as %q", c.Prefix, DefaultS3Prefix)
	case c.PartSize < minPartSize || c.PartSize > maxPartSize:
		return fmt.Errorf("carupload: part size %d: want 5 MiB to 5 GiB", c.PartSize)
	case c.Concurrency < 1 || c.Concurrency > 64:
		return fmt.Errorf("carupload: concurrency %d: want 1 to 64", c.Concurrency)
	case c.CleanupTimeout < 0:
		return errors.New("carupload: negative cleanup timeout")
	}
	return nil
}

// S3 is the uploads area in an S3 bucket, for a gateway and fetchers that
// share no disk: an upload is two objects, <prefix><key>.car and
// <prefix><key>.idx (its section index). Receive streams the body into a
// multipart upload (bounded memory whatever the body's size), the index
// beside it, and completes the index, then the CAR, only once the body is
// whole and checked: nothing of a refused or cut-short body is ever
// visible (its multipart uploads are aborted), and an upload whose .car
// is there is whole. It is safe for concurrent use, by any number of
// processes.
type S3 struct {
	client *s3.Client
	cfg    S3Config
	limits Limits
	log    *slog.Logger
}

// NewS3 returns the uploads area in cfg's bucket, through client (built by
// the caller: region, endpoint, credentials). Zero limits take their
// defaults; a nil logger discards.
func NewS3(client *s3.Client, cfg S3Config, limits Limits, logger *slog.Logger) (*S3, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errors.New("carupload: no S3 client")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &S3{client: client, cfg: cfg, limits: limits.WithDefaults(), log: logger.With("component", "carupload", "store", "s3", "bucket", cfg.Bucket)}, nil
}

// Limits returns the limits in force.
func (s *S3) Limits() Limits { return s.limits }

// Bucket and Prefix say where the uploads are.
func (s *S3) Bucket() string { return s.cfg.Bucket }

// Prefix is the uploads' key prefix.
func (s *S3) Prefix() string { return s.cfg.Prefix }

func (s *S3) object(key, ext string) string { return s.cfg.Prefix + key + ext }

// whenRequired makes the SDK add checksums only where S3 requires them,
// whatever the client's settings: S3-compatible servers refuse part
// checksums a multipart upload did not announce. Each request's payload
// is signed (its SHA-256), which the server checks.
func whenRequired(o *s3.Options) {
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
}

func (s *S3) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CleanupTimeout)
}

// Receive keeps the CARv1 body as the upload key, checked as it arrives
// (see the package doc and Receive). On any error nothing of it is left:
// the multipart uploads begun are aborted, an index completed is deleted.
func (s *S3) Receive(ctx context.Context, key string, root cid.Cid, body io.Reader) (Received, error) {
	if err := checkKey(key); err != nil {
		return Received{}, err
	}
	car := s.newWriter(ctx, s.object(key, ".car"), MediaType, s.cfg.Concurrency)
	idx := s.newWriter(ctx, s.object(key, ".idx"), "application/octet-stream", 1)
	fail := func(err error) (Received, error) {
		cctx, cancel := s.cleanupContext(ctx)
		defer cancel()
		if aerr := errors.Join(car.abort(cctx), idx.abort(cctx)); aerr != nil {
			s.log.WarnContext(ctx, "aborting a refused upload; the bucket's lifecycle rule aborts it later", "key", key, "err", aerr)
		}
		return Received{}, err
	}
	res, err := Receive(ctxReader{ctx: ctx, r: body}, car, idx, root, s.limits)
	if err != nil {
		return fail(err)
	}
	res.Key = key
	// The index goes first: an upload whose .car is there is whole.
	if err := idx.commit(ctx); err != nil {
		return fail(fmt.Errorf("receive upload %s: %w", key, err))
	}
	if err := car.commit(ctx); err != nil {
		cctx, cancel := s.cleanupContext(ctx)
		defer cancel()
		if derr := s.deleteObject(cctx, s.object(key, ".idx")); derr != nil {
			s.log.WarnContext(ctx, "deleting the index of an upload not completed; the sweep deletes it later", "key", key, "err", derr)
		}
		car.abort(cctx)
		return Received{}, fmt.Errorf("receive upload %s: %w", key, err)
	}
	s.log.InfoContext(ctx, "upload received", "key", key, "bytes", res.Bytes, "blocks", res.Blocks, "parts", car.next-1)
	return res, nil
}

// Open opens the upload key for reading, or ErrNotFound.
func (s *S3) Open(ctx context.Context, key string) (Upload, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.object(key, ".car"))}, whenRequired)
	if isNotFound(err) {
		return nil, fmt.Errorf("open upload %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open upload %s: %w", key, err)
	}
	return &s3Upload{s: s, ctx: ctx, key: key, size: aws.ToInt64(head.ContentLength), etag: aws.ToString(head.ETag)}, nil
}

// Delete removes the upload key; one that is not there is no error.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	// The CAR first: an index without its CAR is no upload.
	for _, ext := range []string{".car", ".idx"} {
		if err := s.deleteObject(ctx, s.object(key, ext)); err != nil {
			return fmt.Errorf("delete upload %s: %w", key, err)
		}
	}
	return nil
}

func (s *S3) deleteObject(ctx context.Context, object string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(object)}, whenRequired)
	if isNotFound(err) {
		return nil
	}
	return err
}

// List returns what the area holds: its uploads, and what receiving
// processes killed mid-body left (Partial): multipart uploads never
// completed, named "<name>/<upload id>", and an index whose CAR never
// came, named "<key>.idx" (a "/" or an extension is in no key).
func (s *S3) List(ctx context.Context) ([]Kept, error) {
	var out []Kept
	indexes := map[string]time.Time{}
	cars := map[string]bool{}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(s.cfg.Prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx, whenRequired)
		if err != nil {
			return nil, fmt.Errorf("list uploads: %w", err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), s.cfg.Prefix)
			if strings.Contains(name, "/") {
				continue // not the area's
			}
			switch {
			case strings.HasSuffix(name, ".car"):
				key := strings.TrimSuffix(name, ".car")
				cars[key] = true
				out = append(out, Kept{Key: key, Modified: aws.ToTime(o.LastModified)})
			case strings.HasSuffix(name, ".idx"):
				indexes[strings.TrimSuffix(name, ".idx")] = aws.ToTime(o.LastModified)
			}
		}
	}
	for key, mod := range indexes {
		if !cars[key] {
			out = append(out, Kept{Key: key + ".idx", Modified: mod, Partial: true})
		}
	}
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(s.cfg.Prefix)}
	for {
		page, err := s.client.ListMultipartUploads(ctx, in, whenRequired)
		if err != nil {
			return nil, fmt.Errorf("list unfinished uploads: %w", err)
		}
		for _, u := range page.Uploads {
			name := strings.TrimPrefix(aws.ToString(u.Key), s.cfg.Prefix)
			if strings.Contains(name, "/") {
				continue
			}
			out = append(out, Kept{Key: name + "/" + aws.ToString(u.UploadId), Modified: aws.ToTime(u.Initiated), Partial: true})
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
	return out, nil
}

// DeletePartial removes what List reported as Partial.
func (s *S3) DeletePartial(ctx context.Context, name string) error {
	if object, id, ok := strings.Cut(name, "/"); ok {
		if checkKey(object) != nil || id == "" {
			return fmt.Errorf("carupload: %q is no partial upload", name)
		}
		_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.cfg.Prefix + object), UploadId: aws.String(id),
		}, whenRequired)
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("delete partial upload: %w", err)
		}
		return nil
	}
	key, ok := strings.CutSuffix(name, ".idx")
	if !ok || checkKey(key) != nil {
		return fmt.Errorf("carupload: %q is no partial upload", name)
	}
	if err := s.deleteObject(ctx, s.object(key, ".idx")); err != nil {
		return fmt.Errorf("delete partial upload: %w", err)
	}
	return nil
}

// isNotFound tells a missing object or upload (404, NoSuchKey,
// NoSuchUpload) from other errors.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nsu *types.NoSuchUpload
	if errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &nsu) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchUpload":
			return true
		}
	}
	return false
}

// objectWriter streams one object into S3: Write fills a part buffer;
// each full buffer is sent as a part by a goroutine of its own, at most
// concurrency at once, while Write fills the next. The multipart upload
// begins with the first full part; an object smaller than one part is
// sent by commit with one PutObject. Nothing is visible until commit
// completes it.
type objectWriter struct {
	s           *S3
	object      string
	contentType string

	// ctx is the parts' context, cancelled with a cause by abort or by the
	// first part that fails.
	ctx    context.Context
	cancel context.CancelCauseFunc

	buf  []byte
	id   string // of the multipart upload, "" until it begins
	next int32
	// free holds the buffers of parts sent, for reuse.
	free  chan []byte
	slots chan struct{}
	wg    sync.WaitGroup

	mu    sync.Mutex // guards parts, filled in by the senders
	parts []types.CompletedPart
	done  bool
}

func (s *S3) newWriter(ctx context.Context, object, contentType string, concurrency int) *objectWriter {
	wctx, cancel := context.WithCancelCause(ctx)
	return &objectWriter{
		s: s, object: object, contentType: contentType, ctx: wctx, cancel: cancel, next: 1,
		free: make(chan []byte, concurrency+1), slots: make(chan struct{}, concurrency),
	}
}

// Write implements io.Writer; it blocks while concurrency parts are in
// flight.
func (w *objectWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if err := w.ctx.Err(); err != nil {
			return written, context.Cause(w.ctx)
		}
		if w.buf == nil {
			select {
			case w.buf = <-w.free:
				w.buf = w.buf[:0]
			default:
				if w.id != "" {
					w.buf = make([]byte, 0, w.s.cfg.PartSize)
				} else {
					// Grown as written until a part is full: a small object
					// (an index, a CAR under Lambda's cap) never takes a
					// whole part's memory.
					w.buf = make([]byte, 0, min(int64(len(p)), w.s.cfg.PartSize))
				}
			}
		}
		room := int(w.s.cfg.PartSize) - len(w.buf)
		c := min(room, len(p))
		w.buf = append(w.buf, p[:c]...)
		written += c
		p = p[c:]
		if len(w.buf) == int(w.s.cfg.PartSize) {
			if err := w.send(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// send hands the buffer to a sender as the next part, beginning the
// multipart upload first if need be.
func (w *objectWriter) send() error {
	if w.id == "" {
		out, err := w.s.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(w.s.cfg.Bucket), Key: aws.String(w.object), ContentType: aws.String(w.contentType),
		}, whenRequired)
		if err != nil {
			err = fmt.Errorf("begin the multipart upload of %s: %w", w.object, err)
			w.cancel(err)
			return err
		}
		w.id = aws.ToString(out.UploadId)
	}
	if w.next > maxParts {
		err := fmt.Errorf("upload of %s: over %d parts of %d bytes", w.object, maxParts, w.s.cfg.PartSize)
		w.cancel(err)
		return err
	}
	select {
	case w.slots <- struct{}{}:
	case <-w.ctx.Done():
		return context.Cause(w.ctx)
	}
	num, data := w.next, w.buf
	w.next++
	w.buf = nil
	w.mu.Lock()
	w.parts = append(w.parts, types.CompletedPart{})
	w.mu.Unlock()
	w.wg.Go(func() {
		defer func() { <-w.slots }()
		out, err := w.s.client.UploadPart(w.ctx, &s3.UploadPartInput{
			Bucket: aws.String(w.s.cfg.Bucket), Key: aws.String(w.object), UploadId: aws.String(w.id),
			PartNumber: aws.Int32(num), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
		}, whenRequired)
		if err != nil {
			// The buffer is not reused: the transport may still read it.
			w.cancel(fmt.Errorf("upload part %d of %s: %w", num, w.object, err))
			return
		}
		w.mu.Lock()
		w.parts[num-1] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)}
		w.mu.Unlock()
		select {
		case w.free <- data:
		default:
		}
	})
	return nil
}

// commit makes the object visible: the last part sent and the multipart
// upload completed, or the whole of a small object put.
func (w *objectWriter) commit(ctx context.Context) error {
	if w.id == "" {
		_, err := w.s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(w.s.cfg.Bucket), Key: aws.String(w.object), ContentType: aws.String(w.contentType),
			Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf))),
		}, whenRequired)
		if err != nil {
			return fmt.Errorf("put %s: %w", w.object, err)
		}
		w.done = true
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.send(); err != nil {
			return err
		}
	}
	w.wg.Wait()
	if err := w.ctx.Err(); err != nil {
		return context.Cause(w.ctx)
	}
	_, err := w.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(w.s.cfg.Bucket), Key: aws.String(w.object), UploadId: aws.String(w.id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
	}, whenRequired)
	if err != nil {
		return fmt.Errorf("complete the multipart upload of %s: %w", w.object, err)
	}
	w.done = true
	return nil
}

// abort stops the parts in flight and aborts the multipart upload, if one
// began and was not completed.
func (w *objectWriter) abort(ctx context.Context) error {
	w.cancel(errors.New("upload aborted"))
	w.wg.Wait()
	if w.id == "" || w.done {
		return nil
	}
	_, err := w.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(w.s.cfg.Bucket), Key: aws.String(w.object), UploadId: aws.String(w.id),
	}, whenRequired)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("abort the multipart upload of %s: %w", w.object, err)
	}
	return nil
}

// skipAhead is the most an upload's read skips on its open stream rather
// than asking for a new range: a GET costs a round trip (tens of
// milliseconds to S3), reading 1 MiB on a fast link about as much.
const skipAhead = 1 << 20

// s3Upload reads an upload by ranges. The upload source reads blocks in
// the walk's order, which for a canonical CAR is the object's: so it keeps
// one ranged GET open from the last read to the end and reads on from it
// while each read starts at or a little after where the last ended,
// asking for a new range only when a read jumps (one GET per upload
// instead of one per block).
type s3Upload struct {
	s    *S3
	ctx  context.Context
	key  string
	size int64
	etag string

	mu   sync.Mutex // guards body and pos
	body io.ReadCloser
	pos  int64 // offset of body's next byte
}

// ReadAt implements io.ReaderAt.
func (u *s3Upload) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read upload %s: negative offset", u.key)
	}
	if off >= u.size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), u.size-off)]
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.body != nil && (off < u.pos || off-u.pos > skipAhead) {
		u.body.Close()
		u.body = nil
	}
	if u.body != nil && off > u.pos {
		if _, err := io.CopyN(io.Discard, u.body, off-u.pos); err != nil {
			u.body.Close()
			u.body = nil
		} else {
			u.pos = off
		}
	}
	if u.body == nil {
		in := &s3.GetObjectInput{Bucket: aws.String(u.s.cfg.Bucket), Key: aws.String(u.s.object(u.key, ".car")), Range: aws.String(fmt.Sprintf("bytes=%d-", off))}
		if u.etag != "" {
			in.IfMatch = aws.String(u.etag)
		}
		out, err := u.s.client.GetObject(u.ctx, in, whenRequired)
		if err != nil {
			return 0, fmt.Errorf("read upload %s at %d: %w", u.key, off, err)
		}
		u.body, u.pos = out.Body, off
	}
	n, err := io.ReadFull(u.body, want)
	u.pos += int64(n)
	if err != nil {
		u.body.Close()
		u.body = nil
		return n, fmt.Errorf("read upload %s at %d: %w", u.key, off, err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Sections implements Upload: the index, streamed.
func (u *s3Upload) Sections(fn func(cid.Cid, Section) error) error {
	out, err := u.s.client.GetObject(u.ctx, &s3.GetObjectInput{Bucket: aws.String(u.s.cfg.Bucket), Key: aws.String(u.s.object(u.key, ".idx"))}, whenRequired)
	if err != nil {
		return fmt.Errorf("open upload index of %s: %w", u.key, err)
	}
	defer out.Body.Close()
	return ReadIndex(out.Body, fn)
}

// Close implements Upload.
func (u *s3Upload) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.body != nil {
		u.body.Close()
		u.body = nil
	}
	return nil
}
