package carstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// stagingPrefix is the common prefix of every staging key of a request's
// attempts (see StagingKey).
func stagingPrefix(requestID string) (string, error) {
	if err := checkRequestID(requestID); err != nil {
		return "", err
	}
	return requestID + "/", nil
}

// Discard removes what every attempt of a request left in staging: the
// uploads a killed process never finished or aborted, and staged CARs
// that were never promoted. It is DiscardThrough to the last attempt.
func (s *S3) Discard(ctx context.Context, requestID string) (int, error) {
	return s.DiscardThrough(ctx, requestID, math.MaxInt)
}

// DiscardThrough removes what attempts 1 to through of a request left: the
// uploads a killed process never finished or aborted, and staged CARs that
// were never promoted, each found through its staging marker (and what
// versions that staged CARs in the staging bucket left there). A fetcher
// calls it when it takes over a request and when an attempt ends, so that
// a crash leaves nothing behind for long; later attempts, which may be
// running, are left alone. It never deletes from the carpark. It returns
// how many attempts' leftovers it removed.
func (s *S3) DiscardThrough(ctx context.Context, requestID string, through int) (int, error) {
	return s.DiscardThroughKeeping(ctx, requestID, through, 0)
}

// DiscardThroughKeeping is DiscardThrough but for attempt keep's upload,
// its marker and its checkpoints (0: none), which a later attempt goes on
// from (see Resume).
func (s *S3) DiscardThroughKeeping(ctx context.Context, requestID string, through, keep int) (int, error) {
	gone := func(rest string) bool {
		a := attemptOf(rest)
		return a <= through && (keep <= 0 || a != keep)
	}
	prefix, err := stagingPrefix(requestID)
	if err != nil {
		return 0, fmt.Errorf("discard: %w", err)
	}
	full := s.cfg.StagingPrefix + prefix
	n := 0
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.cfg.StagingBucket), Prefix: aws.String(full)}
	for {
		page, err := s.client.ListMultipartUploads(ctx, in, whenRequired)
		if err != nil {
			return n, fmt.Errorf("discard %s: list uploads: %w", requestID, err)
		}
		for _, u := range page.Uploads {
			if !gone(strings.TrimPrefix(aws.ToString(u.Key), full)) {
				continue
			}
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.cfg.StagingBucket), Key: u.Key, UploadId: u.UploadId}, whenRequired)
			if err != nil && !isNotFound(err) {
				return n, fmt.Errorf("discard %s: abort upload of %s: %w", requestID, aws.ToString(u.Key), err)
			}
			n++
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
	objects := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.StagingBucket), Prefix: aws.String(full)})
	for objects.HasMorePages() {
		page, err := objects.NextPage(ctx, whenRequired)
		if err != nil {
			return n, fmt.Errorf("discard %s: list staged: %w", requestID, err)
		}
		for _, o := range page.Contents {
			if !gone(strings.TrimPrefix(aws.ToString(o.Key), full)) {
				continue
			}
			if isCheckpoint(aws.ToString(o.Key)) {
				// Part of its attempt's leftovers, counted with its marker.
				if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.StagingBucket), Key: o.Key}, whenRequired); err != nil && !isNotFound(err) {
					return n, fmt.Errorf("discard %s: delete %s: %w", requestID, aws.ToString(o.Key), err)
				}
				continue
			}
			m, ok, err := s.getMarkerObject(ctx, aws.ToString(o.Key))
			if err != nil {
				return n, fmt.Errorf("discard %s: %w", requestID, err)
			}
			if ok {
				_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(m.Key), UploadId: aws.String(m.UploadID)}, whenRequired)
				if err != nil && !isNotFound(err) {
					return n, fmt.Errorf("discard %s: abort upload of %s: %w", requestID, m.Key, err)
				}
			}
			if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.StagingBucket), Key: o.Key}, whenRequired); err != nil && !isNotFound(err) {
				return n, fmt.Errorf("discard %s: delete %s: %w", requestID, aws.ToString(o.Key), err)
			}
			n++
		}
	}
	return n, nil
}

// Sweep removes what attempts over for good left in staging, for every
// request that has something there: through tells, for a request, the
// last of its attempts that no one may still be running (0: none; for a
// request that is final or gone, math.MaxInt). A fetcher calls it when it
// starts. It finds requests by their staging markers; an upload begun and
// killed before its marker was written is the lifecycle rule's (see the
// package doc). It returns how many attempts' leftovers it removed.
func (s *S3) Sweep(ctx context.Context, through func(ctx context.Context, requestID string) (int, error)) (int, error) {
	return s.SweepKeeping(ctx, keepingNone(through))
}

// SweepKeeping is Sweep but for, in each request, the attempt whose
// upload a later one goes on from, as through's keep says (0: none; see
// DiscardThroughKeeping).
func (s *S3) SweepKeeping(ctx context.Context, through func(ctx context.Context, requestID string) (through, keep int, err error)) (int, error) {
	ids := map[string]bool{}
	objects := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.StagingBucket), Prefix: aws.String(s.cfg.StagingPrefix), Delimiter: aws.String("/"),
	})
	for objects.HasMorePages() {
		page, err := objects.NextPage(ctx, whenRequired)
		if err != nil {
			return 0, fmt.Errorf("sweep: list staging: %w", err)
		}
		for _, p := range page.CommonPrefixes {
			ids[strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), s.cfg.StagingPrefix), "/")] = true
		}
	}
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.cfg.StagingBucket), Prefix: aws.String(s.cfg.StagingPrefix)}
	for {
		page, err := s.client.ListMultipartUploads(ctx, in, whenRequired)
		if err != nil {
			return 0, fmt.Errorf("sweep: list staging uploads: %w", err)
		}
		for _, u := range page.Uploads {
			id, _, _ := strings.Cut(strings.TrimPrefix(aws.ToString(u.Key), s.cfg.StagingPrefix), "/")
			ids[id] = true
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
	return sweep(ctx, ids, through, s.DiscardThroughKeeping)
}

// Discard removes what every attempt of a request left in staging (see
// S3.Discard).
func (d *Dir) Discard(ctx context.Context, requestID string) (int, error) {
	return d.DiscardThrough(ctx, requestID, math.MaxInt)
}

// DiscardThrough removes what attempts 1 to through of a request left: its
// files in uploads/ (CARs being written), staging/ (staged, never
// promoted) and tmp/ (metadata of a Promote that did not finish), of any
// process; later attempts' are left alone (see S3.DiscardThrough). Nothing
// in carpark/ is touched.
func (d *Dir) DiscardThrough(ctx context.Context, requestID string, through int) (int, error) {
	return d.DiscardThroughKeeping(ctx, requestID, through, 0)
}

// DiscardThroughKeeping is DiscardThrough but for attempt keep's files (0:
// none; see S3.DiscardThroughKeeping: the directory store keeps no
// checkpoints, but keeps the contract).
func (d *Dir) DiscardThroughKeeping(ctx context.Context, requestID string, through, keep int) (int, error) {
	gone := func(rest string) bool {
		a := attemptOf(rest)
		return a <= through && (keep <= 0 || a != keep)
	}
	prefix, err := stagingPrefix(requestID)
	if err != nil {
		return 0, fmt.Errorf("discard: %w", err)
	}
	// Files of uploads/ and tmp/ are named after their staging key with /
	// as ~ (uploadName, writeMeta).
	flat := strings.ReplaceAll(prefix, "/", "~")
	n := 0
	for _, dir := range []string{dirUploads, dirTmp} {
		entries, err := os.ReadDir(filepath.Join(d.root, dir))
		if err != nil {
			return n, fmt.Errorf("discard %s: %w", requestID, err)
		}
		for _, e := range entries {
			rest, ok := strings.CutPrefix(e.Name(), flat)
			if !ok || !gone(rest) {
				continue
			}
			if err := removeIfExists(filepath.Join(d.root, dir, e.Name())); err != nil {
				return n, fmt.Errorf("discard %s: %w", requestID, err)
			}
			n++
		}
	}
	staged := filepath.Join(d.root, dirStaging, filepath.FromSlash(requestID))
	err = filepath.WalkDir(staged, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(staged, path)
		if err != nil || !gone(filepath.ToSlash(rel)) {
			return err
		}
		if err := removeIfExists(path); err != nil {
			return err
		}
		d.pruneStaging(path)
		n++
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return n, fmt.Errorf("discard %s: %w", requestID, err)
	}
	d.pruneStaging(filepath.Join(staged, "-")) // the request's directory, if empty
	return n, nil
}

// Sweep removes what attempts over for good left in staging/, uploads/ and
// tmp/, for every request that has something there (see S3.Sweep). What a
// dead process left in uploads/ and tmp/ is gone already: NewDir removed
// it. It never touches carpark/.
func (d *Dir) Sweep(ctx context.Context, through func(ctx context.Context, requestID string) (int, error)) (int, error) {
	return d.SweepKeeping(ctx, keepingNone(through))
}

// SweepKeeping is Sweep but for the attempts through's keep says (see
// S3.SweepKeeping).
func (d *Dir) SweepKeeping(ctx context.Context, through func(ctx context.Context, requestID string) (through, keep int, err error)) (int, error) {
	ids := map[string]bool{}
	staged, err := os.ReadDir(filepath.Join(d.root, dirStaging))
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	for _, e := range staged {
		ids[e.Name()] = true
	}
	for _, dir := range []string{dirUploads, dirTmp} {
		entries, err := os.ReadDir(filepath.Join(d.root, dir))
		if err != nil {
			return 0, fmt.Errorf("sweep: %w", err)
		}
		for _, e := range entries {
			if id, _, ok := strings.Cut(e.Name(), "~"); ok {
				ids[id] = true
			}
		}
	}
	return sweep(ctx, ids, through, d.DiscardThroughKeeping)
}

// sweep discards, for each request, what its attempts up to through's
// answer left, and goes on past a request it cannot answer for.
func sweep(ctx context.Context, ids map[string]bool, through func(context.Context, string) (int, int, error), discard func(context.Context, string, int, int) (int, error)) (int, error) {
	n := 0
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if checkRequestID(id) != nil {
			continue
		}
		last, keep, err := through(ctx, id)
		if err == nil && last >= 0 {
			var m int
			m, err = discard(ctx, id, last, keep)
			n += m
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", id, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return n, errors.Join(errs...)
}

// keepingNone is a Sweep's through as SweepKeeping's: keeping nothing.
func keepingNone(through func(context.Context, string) (int, error)) func(context.Context, string) (int, int, error) {
	return func(ctx context.Context, id string) (int, int, error) {
		n, err := through(ctx, id)
		return n, 0, err
	}
}

// attemptOf is the attempt of a staging key without its request's prefix
// (<attempt>.car, and whatever a file name adds), or 0 for a key no
// attempt names.
func attemptOf(rest string) int {
	i := strings.IndexByte(rest, '.')
	if i < 0 {
		i = len(rest)
	}
	n, err := strconv.Atoi(rest[:i])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// Steps of a Promote that a crash may end it at: tests kill a process
// there (WithStep).
const (
	// StepMetadataWritten: the directory store's metadata file of the CAR
	// is whole in tmp/, not yet in place.
	StepMetadataWritten = "promote-metadata-written"
	// StepMetadataPlaced: the metadata is in carpark/, the CAR still in
	// staging/.
	StepMetadataPlaced = "promote-metadata-placed"
)

type stepKey struct{}

// WithStep returns a context that makes a store call fn at each Step it
// reaches with that context, as net/http/httptrace carries a client's
// hooks: tests kill a process there, to see what a crash leaves.
func WithStep(ctx context.Context, fn func(step string)) context.Context {
	return context.WithValue(ctx, stepKey{}, fn)
}

func step(ctx context.Context, name string) {
	if fn, ok := ctx.Value(stepKey{}).(func(string)); ok && fn != nil {
		fn(name)
	}
}
