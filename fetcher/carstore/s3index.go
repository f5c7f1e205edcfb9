package carstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/go-cid"
)

// indexType is the media type of index objects.
const indexType = "application/vnd.ipld.car-index"

// PutIndex stores idx, a CARv2 index (MultihashIndexSorted) of the CAR st
// in the carpark, at IndexKey(st.Key), and the mapping of st's root to its
// CAR at RootMapKey, and returns the index's key. The index is written
// before the mapping, so a mapping names a CAR whose index is there.
//
// The index is put conditionally (If-None-Match), with its SHA-256, which
// the server checks. An index already at the key stays if it holds the
// same bytes, or the same entries written otherwise; any other object
// there is not an index of this CAR (a truncated or corrupted one, or one
// of other bytes) and is replaced, conditionally on being the object read
// (If-Match), since idx, computed from the CAR's bytes as they were
// written, is. On nil, the key holds idx or an index with its entries.
//
// Outcomes: ErrInvalid (idx is not a MultihashIndexSorted, st has no
// carpark key, CAR CID or root; nothing written), ErrNotFound (no CAR at
// st.Key; nothing written), other errors (network, server: calling
// PutIndex again is safe).
func (s *S3) PutIndex(ctx context.Context, st Stored, idx []byte) (string, error) {
	idxKey, mapKey, entries, err := indexArgs(st, idx)
	if err != nil {
		return "", fmt.Errorf("put index of %s: %w", st.Key, err)
	}
	fail := func(err error) (string, error) { return "", fmt.Errorf("put index %s: %w", idxKey, err) }
	if _, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(st.Key)}, whenRequired); isNotFound(err) {
		return fail(fmt.Errorf("CAR %s: %w", st.Key, ErrNotFound))
	} else if err != nil {
		return fail(fmt.Errorf("head CAR %s: %w", st.Key, err))
	}
	sum := sha256.Sum256(idx)
	put := func(ifNoneMatch, ifMatch *string) error {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(idxKey),
			Body: bytes.NewReader(idx), ContentLength: aws.Int64(int64(len(idx))), ContentType: aws.String(indexType),
			ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
			IfNoneMatch:    ifNoneMatch, IfMatch: ifMatch,
		}, whenRequired)
		return err
	}
	for try := 0; ; try++ {
		err := put(aws.String("*"), nil)
		if err == nil {
			break
		}
		if !preconditionFailed(err) {
			return fail(err)
		}
		get, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(idxKey)}, whenRequired)
		if isNotFound(err) && try < 3 {
			continue // deleted since
		}
		if err != nil {
			return fail(fmt.Errorf("read the index there: %w", err))
		}
		have, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil {
			return fail(fmt.Errorf("read the index there: %w", err))
		}
		if bytes.Equal(have, idx) || sameIndex(have, entries) {
			break
		}
		s.log.WarnContext(ctx, "replacing an object that is not the CAR's index", "key", idxKey, "bytes", len(have))
		err = put(nil, get.ETag)
		if err == nil {
			break
		}
		if !preconditionFailed(err) || try == 3 {
			return fail(fmt.Errorf("replace what is not the CAR's index: %w", err))
		}
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(mapKey),
		Body: bytes.NewReader(nil), ContentLength: aws.Int64(0), IfNoneMatch: aws.String("*"),
	}, whenRequired)
	if err != nil && !preconditionFailed(err) {
		return fail(fmt.Errorf("put mapping %s: %w", mapKey, err))
	}
	return idxKey, nil
}

// preconditionFailed reports whether err is S3's refusal of a conditional
// write: an object is there (If-None-Match), or another one (If-Match).
func preconditionFailed(err error) bool {
	switch errorCode(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed
}

// ReadRange returns length bytes from offset of the carpark object at key
// (a CAR, an index or a mapping), through one ranged GetObject; length < 0
// reads to the end, and a range past the end is cut there. It is
// ErrNotFound when there is no such object, ErrInvalid for a key that is
// not the carpark's, a negative offset, or an offset past the end. The
// caller closes the reader.
func (s *S3) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := checkReadKey(key); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if err := checkRange(offset, length); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	fail := func(err error) (io.ReadCloser, error) {
		return nil, fmt.Errorf("read %s from %d: %w", key, offset, err)
	}
	if length == 0 {
		head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key)}, whenRequired)
		if isNotFound(err) {
			return fail(ErrNotFound)
		}
		if err != nil {
			return fail(err)
		}
		if offset > aws.ToInt64(head.ContentLength) {
			return fail(fmt.Errorf("%w: offset past the end (%d bytes)", ErrInvalid, aws.ToInt64(head.ContentLength)))
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	rng := "bytes=" + strconv.FormatInt(offset, 10) + "-"
	if length > 0 {
		rng += strconv.FormatInt(offset+length-1, 10)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key), Range: aws.String(rng),
	}, whenRequired)
	if isNotFound(err) {
		return fail(ErrNotFound)
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable {
		// The range starts at or past the end: at the end it is empty.
		head, herr := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key)}, whenRequired)
		switch {
		case isNotFound(herr):
			return fail(ErrNotFound)
		case herr != nil:
			return fail(herr)
		case offset == aws.ToInt64(head.ContentLength):
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return fail(fmt.Errorf("%w: offset past the end (%d bytes)", ErrInvalid, aws.ToInt64(head.ContentLength)))
	}
	if err != nil {
		return fail(err)
	}
	return out.Body, nil
}

// DeleteRoot deletes from the carpark the CARs of root, their indexes and
// the root's mappings, and returns how many objects it deleted: everything
// under <rootCid>/ (the CAR at RootKey, its index, the mappings) and, for
// each CAR a mapping names, what is under <carCid>/ (a CAR stored at
// CarKey, its index). Mappings go last, so that a DeleteRoot cut short
// is finished by the next; a second call deletes nothing and returns 0. A
// CAR at CarKey that no mapping names (stored before indexes, not yet
// reindexed) is not found. Only the garbage collector calls it, for a
// root no pin holds (decided from the log, not here).
func (s *S3) DeleteRoot(ctx context.Context, root cid.Cid) (int, error) {
	if !root.Defined() {
		return 0, fmt.Errorf("delete root: %w: no root CID", ErrInvalid)
	}
	under, err := s.listKeys(ctx, root.String()+"/")
	if err != nil {
		return 0, fmt.Errorf("delete root %s: %w", root, err)
	}
	var objects, mappings []string
	for _, key := range under {
		_, file, _ := strings.Cut(key, "/")
		c, err := cid.Decode(file)
		if err != nil || c.String() != file || c.Type() != CodecCAR {
			objects = append(objects, key)
			continue
		}
		mappings = append(mappings, key)
		byCar, err := s.listKeys(ctx, file+"/")
		if err != nil {
			return 0, fmt.Errorf("delete root %s: %w", root, err)
		}
		for _, k := range byCar {
			if k == CarKey(c) || k == IndexKey(CarKey(c)) {
				objects = append(objects, k)
			}
		}
	}
	n := 0
	for _, key := range slices.Concat(objects, mappings) {
		_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key)}, whenRequired)
		if err != nil && !isNotFound(err) {
			return n, fmt.Errorf("delete root %s: delete %s: %w", root, key, err)
		}
		n++
	}
	if n > 0 {
		s.log.InfoContext(ctx, "root deleted from the carpark", "root", root, "objects", n)
	}
	return n, nil
}

// listKeys lists the carpark's keys under prefix.
func (s *S3) listKeys(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.CarparkBucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, whenRequired)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// ListCars calls fn for every CAR in the carpark whose key sorts after
// after ("" for all), in key order, with its size and metadata (a HEAD,
// and its tags for a CAR whose CAR CID is not in its key; CarCID is
// undefined for a CAR whose Promote stopped before tagging it). It stops
// at fn's first error and returns it.
func (s *S3) ListCars(ctx context.Context, after string, fn func(Stored) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.CarparkBucket)}
	if after != "" {
		in.StartAfter = aws.String(after)
	}
	pages := s3.NewListObjectsV2Paginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, whenRequired)
		if err != nil {
			return fmt.Errorf("list CARs: %w", err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if _, err := parseCarparkKey(key); err != nil {
				continue
			}
			head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(key)}, whenRequired)
			if isNotFound(err) {
				continue // deleted since listed
			}
			if err != nil {
				return fmt.Errorf("list CARs: head %s: %w", key, err)
			}
			st := storedFromHead(key, head)
			if !st.CarCID.Defined() {
				if st.CarCID, err = s.taggedCarCID(ctx, key); err != nil {
					return fmt.Errorf("list CARs: %s: %w", key, err)
				}
			}
			if err := fn(st); err != nil {
				return err
			}
		}
	}
	return nil
}
