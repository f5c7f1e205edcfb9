package carstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// S3 limits that bound the configuration.
const (
	MiB = 1 << 20
	GiB = 1 << 30

	minPartSize = 5 * MiB // every part but the last
	maxPartSize = 5 * GiB
	maxParts    = 10000
	// maxCopyObject is the largest object a single CopyObject copies.
	maxCopyObject = 5 * GiB
)

// S3Config configures the S3 store. Zero fields take the defaults listed.
type S3Config struct {
	// StagingBucket holds CARs being written and waiting for validation.
	StagingBucket string
	// CarparkBucket holds validated CARs at <carCid>/<carCid>.car.
	CarparkBucket string
	// StagingPrefix is put before every staging key (for example
	// "staging/"). It is required when both buckets are the same, so that
	// staged objects never share a key with the carpark's.
	StagingPrefix string

	// Endpoint is the URL of an S3-compatible server; empty means AWS. A
	// custom endpoint is addressed path-style.
	Endpoint string
	// Region defaults to the AWS default chain's (AWS_REGION, profile).
	Region string
	// AccessKeyID and SecretAccessKey, both or neither, are static
	// credentials; neither means the AWS default credential chain.
	AccessKeyID     string
	SecretAccessKey string

	// PartSize is the size of each uploaded part: default 8 MiB, between 5
	// MiB and 5 GiB. An upload buffers at most (Concurrency+1) × PartSize,
	// so the default keeps a fetch within 128 MiB with room to spare; 8 MiB
	// parts take CARs up to 78 GiB (S3 allows 10,000 parts).
	PartSize int64
	// Concurrency is how many parts of one CAR upload at once, and how many
	// ranges of one multipart copy run at once: default 2 (on loopback,
	// 8 MiB × 2 uploads within 5% of 16 MiB × 4, in half the memory).
	Concurrency int
	// MultipartCopyThreshold: CARs bigger than this are copied to the
	// carpark with a multipart copy (UploadPartCopy), smaller ones with one
	// CopyObject. Default and maximum 5 GiB, the largest CopyObject S3 does.
	MultipartCopyThreshold int64
	// CopyPartSize is the size of each range of a multipart copy: default
	// 512 MiB, between 5 MiB and 5 GiB.
	CopyPartSize int64
	// CleanupTimeout bounds the aborts and deletes that clean up after a
	// failure, which run even when the caller's context is done: default 1m.
	CleanupTimeout time.Duration
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c S3Config) WithDefaults() S3Config {
	if c.PartSize == 0 {
		c.PartSize = 8 * MiB
	}
	if c.Concurrency == 0 {
		c.Concurrency = 2
	}
	if c.MultipartCopyThreshold == 0 {
		c.MultipartCopyThreshold = maxCopyObject
	}
	if c.CopyPartSize == 0 {
		c.CopyPartSize = 512 * MiB
	}
	if c.CleanupTimeout == 0 {
		c.CleanupTimeout = time.Minute
	}
	return c
}

// Validate reports the first thing wrong with c (after defaults).
func (c S3Config) Validate() error {
	switch {
	case c.StagingBucket == "" || c.CarparkBucket == "":
		return fmt.Errorf("%w: both a staging and a carpark bucket are needed", ErrInvalid)
	case c.StagingBucket == c.CarparkBucket && c.StagingPrefix == "":
		return fmt.Errorf("%w: staging and carpark share bucket %s: a staging prefix is needed", ErrInvalid, c.StagingBucket)
	case (c.AccessKeyID == "") != (c.SecretAccessKey == ""):
		return fmt.Errorf("%w: give both an access key id and a secret access key, or neither", ErrInvalid)
	case c.PartSize < minPartSize || c.PartSize > maxPartSize:
		return fmt.Errorf("%w: part size %d: want 5 MiB to 5 GiB", ErrInvalid, c.PartSize)
	case c.Concurrency < 1 || c.Concurrency > 64:
		return fmt.Errorf("%w: concurrency %d: want 1 to 64", ErrInvalid, c.Concurrency)
	case c.MultipartCopyThreshold < 0 || c.MultipartCopyThreshold > maxCopyObject:
		return fmt.Errorf("%w: multipart copy threshold %d: want up to 5 GiB", ErrInvalid, c.MultipartCopyThreshold)
	case c.CopyPartSize < minPartSize || c.CopyPartSize > maxPartSize:
		return fmt.Errorf("%w: copy part size %d: want 5 MiB to 5 GiB", ErrInvalid, c.CopyPartSize)
	case c.CleanupTimeout < 0:
		return fmt.Errorf("%w: negative cleanup timeout", ErrInvalid)
	}
	if c.StagingPrefix != "" {
		if err := checkKey(c.StagingPrefix + "x"); err != nil {
			return fmt.Errorf("staging prefix: %w", err)
		}
	}
	return nil
}

// S3 is the store on S3: staged CARs in one bucket, the carpark in another.
// It is safe for concurrent use.
type S3 struct {
	client *s3.Client
	cfg    S3Config
	log    *slog.Logger
	// parts recycles part buffers across uploads, so that a busy fetcher
	// does not allocate PartSize bytes per part.
	parts sync.Pool
}

// NewS3 returns an S3 store with a client built from cfg: the AWS default
// chains for what cfg leaves out, checksums only where S3 requires them (the
// store sends its own SHA-256s), path-style addressing for a custom
// endpoint.
func NewS3(ctx context.Context, cfg S3Config, logger *slog.Logger) (*S3, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		// The default transport keeps 10 idle connections per host; parts
		// and copies of several CARs at once need more than that, or each
		// part pays for a new connection.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
		})),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
	})
	return NewS3WithClient(client, cfg, logger)
}

// NewS3WithClient returns an S3 store that uses client; cfg's endpoint,
// region and credentials are ignored.
func NewS3WithClient(client *s3.Client, cfg S3Config, logger *slog.Logger) (*S3, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &S3{client: client, cfg: cfg, log: logger.With("component", "carstore", "store", "s3")}
	size := cfg.PartSize
	s.parts.New = func() any {
		b := make([]byte, size)
		return &b
	}
	return s, nil
}

// whenRequired makes the SDK add checksums only where S3 requires them,
// whatever the client's settings: the store names its checksums itself, and
// S3-compatible servers refuse part checksums the upload did not announce.
func whenRequired(o *s3.Options) {
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
}

func (s *S3) stagingKey(key string) string { return s.cfg.StagingPrefix + key }

// Stage begins the upload of a CAR to the staging key: a multipart upload
// with SHA-256 checksums, whose object carries meta (root CID, request id).
func (s *S3) Stage(ctx context.Context, key string, meta Metadata) (Upload, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	if err := meta.validate(); err != nil {
		return nil, fmt.Errorf("stage %s: %w", key, err)
	}
	return s.newUpload(ctx, key, meta)
}

// Promote validates the staged CAR at stagedKey against want, copies it to
// the carpark with its metadata, and deletes it from staging.
//
// Validation checks the stored size, and that the stored bytes hash to
// want.CarCID: from the checksum the server keeps for the object where that
// is a proof (see checksumProves: the composite SHA-256 of pickup's
// multipart upload, given want.Checksum, or a full-object SHA-256),
// otherwise by reading the object back and hashing it. The copy is made on
// condition that the object is still the one validated (its ETag).
//
// Outcomes:
//   - nil: the CAR is in the carpark, the staged object is gone.
//   - ErrValidation: the staged object was missing or did not match; it is
//     deleted and the carpark is unchanged.
//   - ErrInvalid: bad arguments; nothing was done.
//   - other errors (network, server): the staged object may remain, and the
//     carpark may or may not hold the CAR; calling Promote again is safe.
//
// Promote is idempotent: if the carpark already holds the CAR, with the
// same size and root (a previous Promote that stopped before deleting the
// staged object, or the same CAR from another request), it only deletes the
// staged object.
func (s *S3) Promote(ctx context.Context, stagedKey string, want Expected) (Stored, error) {
	stored, err := promotion(stagedKey, want)
	if err != nil {
		return Stored{}, err
	}
	fail := func(err error) (Stored, error) {
		return Stored{}, fmt.Errorf("promote %s to %s: %w", stagedKey, stored.Key, err)
	}

	if have, ok, err := s.Stat(ctx, want.CarCID); err != nil {
		return fail(err)
	} else if ok && have.Bytes == want.Bytes && have.Root == want.Root {
		if err := s.deleteStaged(ctx, stagedKey); err != nil {
			return fail(err)
		}
		s.log.DebugContext(ctx, "CAR already in the carpark", "key", stored.Key, "staged", stagedKey)
		return have, nil
	}

	etag, err := s.validate(ctx, stagedKey, want)
	if errors.Is(err, ErrValidation) {
		if derr := s.deleteStaged(ctx, stagedKey); derr != nil {
			s.log.WarnContext(ctx, "delete of a CAR that failed validation failed", "key", stagedKey, "err", derr)
		}
		return fail(err)
	}
	if err != nil {
		return fail(err)
	}

	meta := map[string]string{
		MetaRoot: want.Root.String(), MetaRequestID: want.RequestID,
		MetaCarCID: want.CarCID.String(), MetaStructure: StructureComplete,
	}
	src := s.stagingKey(stagedKey)
	if want.Bytes > s.cfg.MultipartCopyThreshold {
		err = s.copyMultipart(ctx, src, etag, want.Bytes, stored.Key, meta)
	} else {
		err = s.copyObject(ctx, src, etag, stored.Key, meta)
	}
	if err != nil {
		return fail(err)
	}
	if have, ok, err := s.Stat(ctx, want.CarCID); err != nil {
		return fail(err)
	} else if !ok || have.Bytes != want.Bytes {
		// The copy said yes but the carpark says otherwise: a broken server.
		// Leave the staged object for a retry.
		return fail(fmt.Errorf("carpark object after copy: present %v, %d bytes, want %d", ok, have.Bytes, want.Bytes))
	}
	if err := s.deleteStaged(ctx, stagedKey); err != nil {
		return fail(err)
	}
	s.log.DebugContext(ctx, "CAR promoted", "key", stored.Key, "staged", stagedKey, "bytes", want.Bytes)
	return stored, nil
}

// validate checks the staged object against want and returns its ETag, for
// the copy to be conditional on.
func (s *S3) validate(ctx context.Context, stagedKey string, want Expected) (string, error) {
	key := s.stagingKey(stagedKey)
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.cfg.StagingBucket), Key: aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled,
	}, whenRequired)
	if isNotFound(err) {
		return "", fmt.Errorf("%w: no staged object", ErrValidation)
	}
	if err != nil {
		return "", fmt.Errorf("head staged object: %w", err)
	}
	if size := aws.ToInt64(head.ContentLength); size != want.Bytes {
		return "", fmt.Errorf("%w: staged object has %d bytes, want %d", ErrValidation, size, want.Bytes)
	}
	etag := aws.ToString(head.ETag)

	proven, err := checksumProves(head, want)
	if err != nil || proven {
		return etag, err
	}

	get, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.cfg.StagingBucket), Key: aws.String(key), IfMatch: aws.String(etag),
	}, whenRequired)
	if isNotFound(err) {
		return "", fmt.Errorf("%w: staged object vanished", ErrValidation)
	}
	if err != nil {
		return "", fmt.Errorf("read staged object back: %w", err)
	}
	defer get.Body.Close()
	ok, err := hashMatches(get.Body, want.CarCID, want.Bytes)
	if err != nil {
		return "", fmt.Errorf("read staged object back: %w", err)
	}
	if !ok {
		return "", fmt.Errorf("%w: stored bytes do not hash to %s", ErrValidation, want.CarCID)
	}
	return etag, nil
}

// checksumProves reports whether the checksum the server keeps for the
// staged object proves that its bytes hash to want.CarCID, so that they need
// not be read back. Two proofs count:
//   - a full-object SHA-256 (S3 keeps one for objects put in one request
//     with a SHA-256 checksum) equal to the CAR CID's digest;
//   - a composite SHA-256 (what S3 keeps for a multipart upload with SHA-256
//     part checksums) equal to the one in want.Checksum, which also holds
//     the SHA-256 of the whole stream that made those parts: the server
//     checked each part's bytes against its SHA-256, so the same composite
//     means the same bytes.
//
// A checksum that contradicts want is ErrValidation; no usable checksum
// reports false, and the caller reads the object back.
func checksumProves(head *s3.HeadObjectOutput, want Expected) (bool, error) {
	stored := aws.ToString(head.ChecksumSHA256)
	composite := head.ChecksumType == types.ChecksumTypeComposite ||
		head.ChecksumType == "" && strings.Contains(stored, "-")
	if want.Checksum != "" {
		tok, err := parseChecksumToken(want.Checksum)
		if err != nil {
			return false, err
		}
		if CarCID(tok.full[:]) != want.CarCID {
			return false, fmt.Errorf("%w: the upload's SHA-256 is not the CAR CID's", ErrValidation)
		}
		if stored != "" && composite {
			if stored != tok.composite {
				return false, fmt.Errorf("%w: stored composite SHA-256 %s, uploaded %s", ErrValidation, stored, tok.composite)
			}
			return true, nil
		}
	}
	dec, err := mh.Decode(want.CarCID.Hash())
	if stored == "" || composite || err != nil || dec.Code != mh.SHA2_256 {
		return false, nil
	}
	if stored != base64.StdEncoding.EncodeToString(dec.Digest) {
		return false, fmt.Errorf("%w: stored SHA-256 %s is not the CAR CID's", ErrValidation, stored)
	}
	return true, nil
}

func (s *S3) deleteStaged(ctx context.Context, stagedKey string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.cfg.StagingBucket), Key: aws.String(s.stagingKey(stagedKey)),
	}, whenRequired)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete staged object: %w", err)
	}
	return nil
}

// Stat reports whether the carpark holds the CAR, and its size and
// metadata. A CAR in the carpark has been validated.
func (s *S3) Stat(ctx context.Context, carCID cid.Cid) (Stored, bool, error) {
	if err := checkCarCID(carCID); err != nil {
		return Stored{}, false, fmt.Errorf("stat: %w", err)
	}
	key := CarKey(carCID)
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key),
	}, whenRequired)
	if isNotFound(err) {
		return Stored{}, false, nil
	}
	if err != nil {
		return Stored{}, false, fmt.Errorf("stat %s: %w", key, err)
	}
	st := Stored{Key: key, Bytes: aws.ToInt64(head.ContentLength), CarCID: carCID}
	st.Root, _ = cid.Decode(head.Metadata[MetaRoot])
	st.RequestID = head.Metadata[MetaRequestID]
	st.Structure = head.Metadata[MetaStructure]
	return st, true, nil
}

// Open returns the CAR's bytes from the carpark, or ErrNotFound. The caller
// closes the reader.
func (s *S3) Open(ctx context.Context, carCID cid.Cid) (io.ReadCloser, error) {
	if err := checkCarCID(carCID); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	key := CarKey(carCID)
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key),
	}, whenRequired)
	if isNotFound(err) {
		return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return out.Body, nil
}

// OpenUploads lists the multipart uploads begun and neither completed nor
// aborted: in the staging bucket under the staging prefix, and in the
// carpark bucket at carpark keys (multipart copies; a carpark shared with
// other writers may hold their uploads too). A bucket lifecycle rule that
// aborts incomplete multipart uploads cleans up after crashed processes.
func (s *S3) OpenUploads(ctx context.Context) ([]OpenUpload, error) {
	out, err := s.listUploads(ctx, s.cfg.StagingBucket, s.cfg.StagingPrefix, AreaStaging)
	if err != nil {
		return nil, err
	}
	carpark, err := s.listUploads(ctx, s.cfg.CarparkBucket, "", AreaCarpark)
	if err != nil {
		return nil, err
	}
	for _, u := range carpark {
		// In a shared bucket, staging uploads are listed once, and other
		// writers' uploads not at all.
		if !isCarKey(u.Key) {
			continue
		}
		out = append(out, u)
	}
	return out, nil
}

func (s *S3) listUploads(ctx context.Context, bucket, prefix string, area Area) ([]OpenUpload, error) {
	var out []OpenUpload
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	for {
		page, err := s.client.ListMultipartUploads(ctx, in, whenRequired)
		if err != nil {
			return nil, fmt.Errorf("list open uploads in %s: %w", bucket, err)
		}
		for _, u := range page.Uploads {
			key := aws.ToString(u.Key)
			if area == AreaStaging {
				key = key[len(prefix):]
			}
			out = append(out, OpenUpload{Area: area, Key: key, Initiated: aws.ToTime(u.Initiated)})
		}
		if !aws.ToBool(page.IsTruncated) {
			return out, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

// isNotFound reports whether err is S3's answer that the object (or upload)
// does not exist.
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
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// cleanupContext returns a context for cleaning up after a failure: it
// keeps ctx's values but not its cancellation, which may be the very reason
// for the cleanup, and has a deadline of its own.
func (s *S3) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CleanupTimeout)
}
