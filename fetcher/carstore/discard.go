package carstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// Discard removes what earlier attempts of a request left: the uploads a
// killed process never finished or aborted, and staged CARs that were never
// promoted, each found through its staging marker (and what versions that
// staged CARs in the staging bucket left there). A fetcher calls it when it
// takes over a request, so that a crash leaves nothing behind for long. It
// returns how many attempts' leftovers it removed.
func (s *S3) Discard(ctx context.Context, requestID string) (int, error) {
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

// Discard removes what earlier attempts of a request left in staging (see
// S3.Discard).
func (d *Dir) Discard(ctx context.Context, requestID string) (int, error) {
	prefix, err := stagingPrefix(requestID)
	if err != nil {
		return 0, fmt.Errorf("discard: %w", err)
	}
	n := 0
	uploads, err := os.ReadDir(filepath.Join(d.root, dirUploads))
	if err != nil {
		return 0, fmt.Errorf("discard %s: %w", requestID, err)
	}
	for _, e := range uploads {
		// Upload files are named after their key with / as ~ (uploadName).
		if strings.HasPrefix(e.Name(), strings.ReplaceAll(prefix, "/", "~")) {
			if err := removeIfExists(filepath.Join(d.root, dirUploads, e.Name())); err != nil {
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
		if err := removeIfExists(path); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return n, fmt.Errorf("discard %s: %w", requestID, err)
	}
	os.RemoveAll(staged)
	return n, nil
}
