package carstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/internal/awsconfig"
)

// S3 limits that bound the configuration.
const (
	MiB = 1 << 20
	GiB = 1 << 30

	minPartSize = 5 * MiB // every part but the last
	maxPartSize = 5 * GiB
	maxParts    = 10000
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
	// Concurrency is how many parts of one CAR upload at once: default 2
	// (on loopback, 8 MiB × 2 uploads within 5% of 16 MiB × 4, in half the
	// memory).
	Concurrency int
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

// S3 is the store on S3: a CAR is written once, as a multipart upload at
// its key in the carpark bucket, and becomes visible there when Promote
// completes the upload; the staging bucket holds a small marker per
// attempt naming its upload (see the package documentation). It is safe
// for concurrent use.
type S3 struct {
	client *s3.Client
	cfg    S3Config
	log    *slog.Logger
	// parts recycles part buffers across uploads, so that a busy fetcher
	// does not allocate PartSize bytes per part.
	parts partBuffers
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
	awsCfg, err := awsconfig.Load(ctx, opts...)
	if err != nil {
		return nil, err
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
	s.parts = newPartBuffers(cfg.PartSize, 2*(cfg.Concurrency+1))
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

// Stage begins the upload of a CAR for the staging key: a multipart upload
// with SHA-256 checksums at RootKey(meta.Root) in the carpark bucket, whose
// object will carry meta (root CID, request id) and the structure, and a
// marker at the staging key that names the upload.
func (s *S3) Stage(ctx context.Context, key string, meta Metadata) (Upload, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	if err := meta.validate(); err != nil {
		return nil, fmt.Errorf("stage %s: %w", key, err)
	}
	// An upload an earlier try kept at the key (one a Resume could not
	// read) goes first, with its checkpoints, so that none of them is
	// taken for the new upload's.
	old, ok, err := s.getMarker(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", key, err)
	}
	if ok {
		if err := s.discardStaged(ctx, key, old); err != nil {
			return nil, fmt.Errorf("stage %s: discard the upload there: %w", key, err)
		}
	}
	return s.newUpload(ctx, key, meta)
}

// Promote validates the CAR staged at stagedKey against want and completes
// its multipart upload, which makes it visible in the carpark at
// RootKey(want.Root) in one step; then it deletes the staging marker. No
// byte is copied: the upload wrote the CAR where it stays.
//
// Validation, before anything is visible: the marker must name an upload
// whose parts, as the server lists them, add up to want.Bytes and have the
// composite SHA-256 of the checksum token (want.Checksum, or the one
// Complete wrote in the marker), and the token's whole-stream SHA-256 must
// be want.CarCID's. The server checked each part's bytes against its
// SHA-256 when it took it, so these are the bytes that hash to the CAR CID.
// The completion names every part's ETag and SHA-256 and the composite,
// which the server checks again, so a part replaced in between fails it;
// and it is conditional on no object at the key (If-None-Match), so a CAR
// in the carpark is never replaced.
//
// Outcomes:
//   - nil: the CAR is in the carpark, the marker is gone.
//   - ErrValidation: nothing staged, or not what want says; the upload is
//     aborted and the carpark is unchanged.
//   - ErrInvalid: bad arguments; nothing was done.
//   - other errors (network, server): the upload may remain, and the
//     carpark may or may not hold the CAR; calling Promote again is safe.
//
// Promote is idempotent: if the carpark already holds a CAR for the root
// (a Promote that stopped before deleting the marker, or the same CAR from
// another request), and it is want's bytes (the same composite SHA-256, or,
// for parts of other sizes, read back and hashed), it only discards what
// is staged and returns the CAR there, with its first request's id.
func (s *S3) Promote(ctx context.Context, stagedKey string, want Expected) (Stored, error) {
	stored, err := promotion(stagedKey, want)
	if err != nil {
		return Stored{}, err
	}
	stored.Key = RootKey(want.Root)
	fail := func(err error) (Stored, error) {
		return Stored{}, fmt.Errorf("promote %s to %s: %w", stagedKey, stored.Key, err)
	}
	m, staged, err := s.getMarker(ctx, stagedKey)
	if err != nil {
		return fail(err)
	}
	// invalid discards what is staged (or whatever is at the staging key:
	// a CAR an earlier version staged whole) and says why.
	invalid := func(format string, args ...any) (Stored, error) {
		err := fmt.Errorf("%w: "+format, append([]any{ErrValidation}, args...)...)
		if derr := s.discardStaged(ctx, stagedKey, m); derr != nil {
			s.log.WarnContext(ctx, "discarding a CAR that failed validation failed", "key", stagedKey, "err", derr)
		}
		return fail(err)
	}
	token := want.Checksum
	if token == "" && staged {
		token = m.Checksum
	}

	for try := 0; ; try++ {
		have, ok, same, err := s.inCarpark(ctx, stored.Key, want, token)
		switch {
		case err != nil:
			return fail(err)
		case ok && !same:
			return invalid("the carpark holds another CAR for root %s", want.Root)
		case ok:
			if have.Key == stored.Key && !have.tagged {
				if err := s.tagCarCID(ctx, have.Key, want.CarCID); err != nil {
					return fail(err)
				}
			}
			if err := s.discardStaged(ctx, stagedKey, m); err != nil {
				return fail(err)
			}
			s.log.DebugContext(ctx, "CAR already in the carpark", "key", stored.Key, "staged", stagedKey)
			return have.Stored, nil
		case try > 0:
			// Completion was refused because an object is there, and now
			// none is: a broken server.
			return fail(errors.New("the carpark refused the CAR, and holds none for its root"))
		}

		if !staged {
			return invalid("no staged CAR")
		}
		if m.Checksum == "" {
			return invalid("the upload was never completed")
		}
		if m.Key != stored.Key || m.Bytes != want.Bytes || token != m.Checksum {
			return invalid("staged %d bytes for %s with checksum %q; want %d bytes for %s with %q", m.Bytes, m.Key, m.Checksum, want.Bytes, stored.Key, token)
		}
		tok, err := parseChecksumToken(token)
		if err != nil {
			return invalid("%v", err)
		}
		if CarCID(tok.full[:]) != want.CarCID {
			return invalid("the upload's SHA-256 is not the CAR CID's")
		}
		parts, size, composite, err := s.listParts(ctx, m)
		switch {
		case isNotFound(err):
			return invalid("the staged upload is gone")
		case errors.Is(err, ErrValidation):
			return invalid("%v", err)
		case err != nil:
			return fail(err)
		}
		if size != want.Bytes || composite != tok.composite {
			return invalid("the server holds %d bytes with composite SHA-256 %s; uploaded %d bytes with %s", size, composite, want.Bytes, tok.composite)
		}
		out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          aws.String(s.cfg.CarparkBucket),
			Key:             aws.String(m.Key),
			UploadId:        aws.String(m.UploadID),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
			MpuObjectSize:   aws.Int64(size),
			ChecksumSHA256:  aws.String(composite),
			ChecksumType:    types.ChecksumTypeComposite,
			IfNoneMatch:     aws.String("*"),
		}, whenRequired)
		switch code := errorCode(err); {
		case err == nil:
		case code == "PreconditionFailed" || code == "ConditionalRequestConflict":
			// Another request's CAR of the same root got there first.
			continue
		case code == "InvalidPart" || code == "InvalidPartOrder" || code == "BadDigest" || code == "InvalidDigest" || code == "EntityTooSmall":
			return invalid("the server refused the parts: %v", err)
		case isNotFound(err):
			// Gone since it was listed: aborted, or completed by a Promote
			// racing this one; which, the carpark tells.
			continue
		default:
			return fail(fmt.Errorf("complete the upload: %w", err))
		}
		if got := aws.ToString(out.ChecksumSHA256); got != composite {
			// A server that keeps no checksum, or another one: the object is
			// this upload's (If-None-Match), and must be proven some other
			// way before it stays.
			err := s.proveOrDelete(ctx, stored.Key, want, got)
			if errors.Is(err, ErrValidation) {
				return invalid("%v", err)
			}
			if err != nil {
				return fail(err)
			}
		}
		if err := s.tagCarCID(ctx, stored.Key, want.CarCID); err != nil {
			return fail(err)
		}
		if err := s.deleteMarker(ctx, stagedKey); err != nil {
			return fail(err)
		}
		s.log.DebugContext(ctx, "CAR promoted", "key", stored.Key, "staged", stagedKey, "bytes", want.Bytes)
		return stored, nil
	}
}

// carparkCAR is what inCarpark found: the CAR as Stat tells it, and
// whether it carries its CAR CID tag.
type carparkCAR struct {
	Stored
	tagged bool
}

// inCarpark reports whether the carpark holds an object at key, and
// whether its bytes are those want and token describe: by its CAR CID tag,
// or its checksum where that proves it (see checksumProves), otherwise
// read back and hashed.
func (s *S3) inCarpark(ctx context.Context, key string, want Expected, token string) (have carparkCAR, ok, same bool, err error) {
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled,
	}, whenRequired)
	if isNotFound(err) {
		return have, false, false, nil
	}
	if err != nil {
		return have, false, false, fmt.Errorf("head %s: %w", key, err)
	}
	have.Stored = storedFromHead(key, head)
	if have.Bytes != want.Bytes || have.Root != want.Root {
		return have, true, false, nil
	}
	tag, err := s.taggedCarCID(ctx, key)
	if err != nil {
		return have, true, false, err
	}
	have.tagged = tag.Defined()
	if have.tagged {
		have.CarCID = tag
		return have, true, tag == want.CarCID, nil
	}
	have.CarCID = want.CarCID
	check := want
	check.Checksum = token
	proven, err := checksumProves(head, check)
	if errors.Is(err, ErrValidation) || errors.Is(err, ErrInvalid) {
		return have, true, false, nil
	}
	if err != nil || proven {
		return have, true, proven, err
	}
	same, err = s.readBackMatches(ctx, key, aws.ToString(head.ETag), want)
	return have, true, same, err
}

// readBackMatches reads the carpark object at key (if it still has etag)
// and reports whether it holds want's bytes.
func (s *S3) readBackMatches(ctx context.Context, key, etag string, want Expected) (bool, error) {
	get, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key), IfMatch: aws.String(etag),
	}, whenRequired)
	if err != nil {
		return false, fmt.Errorf("read %s back: %w", key, err)
	}
	defer get.Body.Close()
	ok, err := hashMatches(get.Body, want.CarCID, want.Bytes)
	if err != nil {
		return false, fmt.Errorf("read %s back: %w", key, err)
	}
	return ok, nil
}

// proveOrDelete is for a CAR this store has just completed where the
// server did not confirm the composite SHA-256 sent with it: it reads the
// object back, and deletes it (nobody else's: the completion was
// conditional on no object there) unless it holds want's bytes.
func (s *S3) proveOrDelete(ctx context.Context, key string, want Expected, serverSum string) error {
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key)}, whenRequired)
	if err != nil {
		return fmt.Errorf("head %s: %w", key, err)
	}
	ok, err := s.readBackMatches(ctx, key, aws.ToString(head.ETag), want)
	if err != nil || ok {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key)}, whenRequired); err != nil {
		return fmt.Errorf("delete %s, which does not hold the bytes uploaded: %w", key, err)
	}
	return fmt.Errorf("the completed object (checksum %q) does not hash to %s; deleted", serverSum, want.CarCID)
}

// listParts lists the parts of the upload m names, as the completion names
// them, with their total size and composite SHA-256: the first m.Parts
// (all, when the marker does not say), so that parts a killed try of a
// resumed upload sent past the CAR's end are left out, and dropped by the
// completion.
func (s *S3) listParts(ctx context.Context, m marker) ([]types.CompletedPart, int64, string, error) {
	var parts []types.CompletedPart
	var digests [][sha256.Size]byte
	var size int64
	err := s.eachPart(ctx, m, m.Parts, func(p types.Part) error {
		var d [sha256.Size]byte
		raw, err := base64.StdEncoding.DecodeString(aws.ToString(p.ChecksumSHA256))
		if err != nil || len(raw) != sha256.Size || aws.ToInt32(p.PartNumber) != int32(len(parts)+1) {
			// No SHA-256 (not this store's upload), or a gap: a
			// composite that matches nothing.
			return fmt.Errorf("%w: part %d of the staged upload has SHA-256 %q", ErrValidation, aws.ToInt32(p.PartNumber), aws.ToString(p.ChecksumSHA256))
		}
		copy(d[:], raw)
		digests = append(digests, d)
		size += aws.ToInt64(p.Size)
		parts = append(parts, types.CompletedPart{ETag: p.ETag, PartNumber: p.PartNumber, ChecksumSHA256: p.ChecksumSHA256})
		return nil
	})
	if err != nil {
		return nil, 0, "", err
	}
	if m.Parts > 0 && len(parts) != m.Parts {
		return nil, 0, "", fmt.Errorf("%w: the staged upload has %d parts; %d were sent", ErrValidation, len(parts), m.Parts)
	}
	if len(parts) == 0 {
		return nil, 0, "", fmt.Errorf("%w: the staged upload has no parts", ErrValidation)
	}
	return parts, size, compositeChecksum(digests), nil
}

// eachPart calls fn with each part of the upload m names, in order: the
// first limit (0: all).
func (s *S3) eachPart(ctx context.Context, m marker, limit int, fn func(types.Part) error) error {
	in := &s3.ListPartsInput{Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(m.Key), UploadId: aws.String(m.UploadID)}
	seen := 0
	for {
		page, err := s.client.ListParts(ctx, in, whenRequired)
		if err != nil {
			return err
		}
		for _, p := range page.Parts {
			if limit > 0 && seen == limit {
				return nil
			}
			if err := fn(p); err != nil {
				return err
			}
			seen++
		}
		if !aws.ToBool(page.IsTruncated) {
			return nil
		}
		in.PartNumberMarker = page.NextPartNumberMarker
	}
}

// checksumProves reports whether the checksum the server keeps for an
// object proves that its bytes hash to want.CarCID, so that they need not
// be read back. Two proofs count:
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
		if stored != "" && composite && stored == tok.composite {
			return true, nil
		}
		// Another composite may be the same bytes in parts of other sizes:
		// the caller reads them back.
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

// Stat reports whether the carpark holds the CAR carCID of root, and its
// size and metadata: at RootKey(root), tagged with that CAR CID (see
// Promote), or, put there by versions before writing CARs once, at
// CarKey(carCID). A CAR in the carpark has been validated.
func (s *S3) Stat(ctx context.Context, root, carCID cid.Cid) (Stored, bool, error) {
	if err := checkCarCID(carCID); err != nil {
		return Stored{}, false, fmt.Errorf("stat: %w", err)
	}
	if !root.Defined() {
		return Stored{}, false, fmt.Errorf("stat: %w: no root CID", ErrInvalid)
	}
	for _, key := range []string{RootKey(root), CarKey(carCID)} {
		head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key),
		}, whenRequired)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return Stored{}, false, fmt.Errorf("stat %s: %w", key, err)
		}
		st := storedFromHead(key, head)
		if !st.CarCID.Defined() {
			if st.CarCID, err = s.taggedCarCID(ctx, key); err != nil {
				return Stored{}, false, fmt.Errorf("stat %s: %w", key, err)
			}
		}
		if st.CarCID == carCID {
			return st, true, nil
		}
	}
	return Stored{}, false, nil
}

// taggedCarCID is the CAR CID the object at key is tagged with, or none.
func (s *S3) taggedCarCID(ctx context.Context, key string) (cid.Cid, error) {
	out, err := s.client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{
		Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key),
	}, whenRequired)
	if isNotFound(err) {
		return cid.Undef, nil
	}
	if err != nil {
		return cid.Undef, fmt.Errorf("read tags: %w", err)
	}
	for _, t := range out.TagSet {
		if aws.ToString(t.Key) == MetaCarCID {
			c, err := cid.Decode(aws.ToString(t.Value))
			if err == nil && c.Type() == CodecCAR {
				return c, nil
			}
		}
	}
	return cid.Undef, nil
}

// tagCarCID tags the CAR at key with its CAR CID: S3 fixes an object's
// metadata when its upload begins, before the CAR CID is known, and a tag
// is the one label that can be set afterwards without writing the object
// again.
func (s *S3) tagCarCID(ctx context.Context, key string, carCID cid.Cid) error {
	_, err := s.client.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
		Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(MetaCarCID), Value: aws.String(carCID.String())}}},
	}, whenRequired)
	if err != nil {
		return fmt.Errorf("tag %s with its CAR CID: %w", key, err)
	}
	return nil
}

func storedFromHead(key string, head *s3.HeadObjectOutput) Stored {
	st := Stored{Key: key, Bytes: aws.ToInt64(head.ContentLength)}
	if c, err := parseCarparkKey(key); err == nil && c.Type() == CodecCAR {
		st.CarCID = c
	} else if c, err := cid.Decode(head.Metadata[MetaCarCID]); err == nil {
		st.CarCID = c
	}
	st.Root, _ = cid.Decode(head.Metadata[MetaRoot])
	st.RequestID = head.Metadata[MetaRequestID]
	st.Structure = head.Metadata[MetaStructure]
	return st
}

// Open returns the bytes of the CAR at key in the carpark, or ErrNotFound.
// The caller closes the reader.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if _, err := parseCarparkKey(key); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
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
// aborted: in the carpark bucket at carpark keys (CARs being written, and
// staged ones not yet promoted; a carpark shared with other writers may
// hold their uploads too), and in the staging bucket under the staging
// prefix (what versions before writing into the carpark left). A bucket lifecycle rule that
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
		if _, err := parseCarparkKey(u.Key); err != nil {
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
