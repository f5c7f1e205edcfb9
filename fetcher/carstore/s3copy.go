package carstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// copySource names a staged object as the source of a copy. Keys are
// checked to hold only characters that need no escaping.
func (s *S3) copySource(object string) *string {
	return aws.String(s.cfg.StagingBucket + "/" + object)
}

// copyObject copies a staged object of up to 5 GiB into the carpark with
// one CopyObject, replacing its metadata, if the source still has etag.
func (s *S3) copyObject(ctx context.Context, src, etag, dst string, meta map[string]string) error {
	_, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:            aws.String(s.cfg.CarparkBucket),
		Key:               aws.String(dst),
		CopySource:        s.copySource(src),
		CopySourceIfMatch: aws.String(etag),
		MetadataDirective: types.MetadataDirectiveReplace,
		Metadata:          meta,
		ContentType:       aws.String(contentTypeCAR),
	}, whenRequired)
	if err != nil {
		return fmt.Errorf("copy to the carpark: %w", err)
	}
	return nil
}

// copyMultipart copies a staged object of any size into the carpark as a
// multipart upload whose parts are ranges of the source (UploadPartCopy),
// Concurrency at once. web3-storage/pickup's single CopyObject failed on
// CARs over 5 GiB; this is the way S3 copies those. On failure the upload
// is aborted, so no part of the copy stays behind.
func (s *S3) copyMultipart(ctx context.Context, src, etag string, size int64, dst string, meta map[string]string) (err error) {
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:      aws.String(s.cfg.CarparkBucket),
		Key:         aws.String(dst),
		Metadata:    meta,
		ContentType: aws.String(contentTypeCAR),
	}, whenRequired)
	if err != nil {
		return fmt.Errorf("multipart copy to the carpark: begin: %w", err)
	}
	id := created.UploadId
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := s.cleanupContext(ctx)
		defer cancel()
		_, aerr := s.client.AbortMultipartUpload(cctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(dst), UploadId: id,
		}, whenRequired)
		if aerr != nil && !isNotFound(aerr) {
			err = errors.Join(err, fmt.Errorf("abort multipart copy: %w", aerr))
		}
	}()

	partSize := max(s.cfg.CopyPartSize, (size+maxParts-1)/maxParts)
	count := max(1, int((size+partSize-1)/partSize))
	parts := make([]types.CompletedPart, count)
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range count {
		select {
		case slots <- struct{}{}:
		case <-pctx.Done():
		}
		if pctx.Err() != nil {
			break
		}
		first := int64(i) * partSize
		last := min(first+partSize, size) - 1
		wg.Go(func() {
			defer func() { <-slots }()
			num := int32(i + 1)
			out, err := s.client.UploadPartCopy(pctx, &s3.UploadPartCopyInput{
				Bucket:            aws.String(s.cfg.CarparkBucket),
				Key:               aws.String(dst),
				UploadId:          id,
				PartNumber:        aws.Int32(num),
				CopySource:        s.copySource(src),
				CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
				CopySourceIfMatch: aws.String(etag),
			}, whenRequired)
			if err != nil {
				cancel(fmt.Errorf("copy bytes %d-%d as part %d: %w", first, last, num, err))
				return
			}
			parts[i] = types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(num)}
		})
	}
	wg.Wait()
	if pctx.Err() != nil {
		return fmt.Errorf("multipart copy to the carpark: %w", context.Cause(pctx))
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.cfg.CarparkBucket),
		Key:             aws.String(dst),
		UploadId:        id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		MpuObjectSize:   aws.Int64(size),
	}, whenRequired)
	if err != nil {
		return fmt.Errorf("multipart copy to the carpark: complete: %w", err)
	}
	return nil
}
