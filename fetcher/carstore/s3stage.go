package carstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// marker is the object at a staging key of the S3 store: which multipart
// upload in the carpark bucket the attempt writes its CAR into, and, once
// Complete has sent every part, what it wrote. Discard finds a killed
// attempt's upload through it; Promote validates against it.
type marker struct {
	Key      string `json:"key"`       // in the carpark bucket
	UploadID string `json:"upload_id"` // of the multipart upload there
	// Bytes and Checksum are set by Complete: the size and the checksum
	// token (see checksumToken) of everything written.
	Bytes    int64  `json:"bytes,omitempty"`
	Checksum string `json:"checksum,omitempty"`
	// Parts is how many parts Complete sent: those of the CAR. A resumed
	// upload may hold parts past them that a killed try sent.
	Parts int `json:"parts,omitempty"`
}

// markerType is the media type of staging markers.
const markerType = "application/vnd.pickup.staged+json"

func (s *S3) putMarker(ctx context.Context, stagedKey string, m marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.cfg.StagingBucket), Key: aws.String(s.stagingKey(stagedKey)),
		Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String(markerType),
	}, whenRequired)
	if err != nil {
		return fmt.Errorf("write staging marker: %w", err)
	}
	return nil
}

// getMarker reads the marker at a staging key; ok is false when there is
// none, or the object there is not one (a CAR staged by an earlier
// version, which Discard deletes).
func (s *S3) getMarker(ctx context.Context, stagedKey string) (marker, bool, error) {
	return s.getMarkerObject(ctx, s.stagingKey(stagedKey))
}

func (s *S3) getMarkerObject(ctx context.Context, object string) (marker, bool, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.cfg.StagingBucket), Key: aws.String(object),
	}, whenRequired)
	if isNotFound(err) {
		return marker{}, false, nil
	}
	if err != nil {
		return marker{}, false, fmt.Errorf("read staging marker %s: %w", object, err)
	}
	defer out.Body.Close()
	if aws.ToString(out.ContentType) != markerType || aws.ToInt64(out.ContentLength) > 4096 {
		return marker{}, false, nil
	}
	b, err := io.ReadAll(io.LimitReader(out.Body, 4096))
	if err != nil {
		return marker{}, false, fmt.Errorf("read staging marker %s: %w", object, err)
	}
	var m marker
	if json.Unmarshal(b, &m) != nil || m.Key == "" || m.UploadID == "" {
		return marker{}, false, nil
	}
	return m, true, nil
}

func (s *S3) deleteMarker(ctx context.Context, stagedKey string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.cfg.StagingBucket), Key: aws.String(s.stagingKey(stagedKey)),
	}, whenRequired)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete staging marker: %w", err)
	}
	return nil
}

// discardStaged aborts the upload m names (gone already, or completed by a
// Promote, is fine: nothing is ever deleted from the carpark) and deletes
// the marker at stagedKey.
func (s *S3) discardStaged(ctx context.Context, stagedKey string, m marker) error {
	var errs []error
	if m.UploadID != "" {
		_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.cfg.CarparkBucket), Key: aws.String(m.Key), UploadId: aws.String(m.UploadID),
		}, whenRequired)
		if err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("abort multipart upload: %w", err))
		}
	}
	if err := s.deleteCheckpoints(ctx, stagedKey); err != nil {
		errs = append(errs, err)
	}
	if err := s.deleteMarker(ctx, stagedKey); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// errorCode is the S3 error code of err ("InvalidPart", ...), or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
