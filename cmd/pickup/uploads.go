// The uploads area's wiring: where CAR uploads go (a directory shared by
// the gateway and the fetchers, or an S3 bucket), for the gateway and the
// fetcher roles alike.

package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pickup-ipfs/pickup/carupload"
	"github.com/pickup-ipfs/pickup/fetcher/dag/upload"
	"github.com/pickup-ipfs/pickup/gateway"
	"github.com/pickup-ipfs/pickup/internal/awsconfig"
)

// uploadsArea is an uploads area as the gateway receives into it and the
// fetcher reads, deletes and sweeps it; carupload.Dir and carupload.S3
// are.
type uploadsArea interface {
	gateway.Uploads
	upload.Area
	List(ctx context.Context) ([]carupload.Kept, error)
	DeletePartial(ctx context.Context, name string) error
}

// s3Flags are the S3 endpoint and region, once per flag set: the carpark
// and the uploads bucket are reached the same way.
type s3Flags struct {
	endpoint, region *string
}

func (f *flags) s3Flags() *s3Flags {
	if f.s3 == nil {
		f.s3 = &s3Flags{
			endpoint: f.string("s3-endpoint", "", "S3-compatible endpoint URL (path-style); empty means AWS", "PICKUP_S3_ENDPOINT"),
			region:   f.string("s3-region", "", "S3 region (default: AWS_REGION)", "PICKUP_S3_REGION"),
		}
	}
	return f.s3
}

// uploadsBucketFlags say where an S3 uploads area is, once per flag set.
type uploadsBucketFlags struct {
	bucket, prefix *string
	s3             *s3Flags
}

func (f *flags) uploadsBucketFlags() *uploadsBucketFlags {
	if f.uploadsBucket == nil {
		f.uploadsBucket = &uploadsBucketFlags{
			bucket: f.string("uploads-bucket", "", "S3 bucket of CAR uploads, read by the fetchers (a gateway and fetchers on separate machines); setting it selects it over --uploads-dir", "PICKUP_UPLOADS_BUCKET"),
			prefix: f.string("uploads-prefix", carupload.DefaultS3Prefix, "key prefix of CAR uploads in --uploads-bucket", "PICKUP_UPLOADS_PREFIX"),
			s3:     f.s3Flags(),
		}
	}
	return f.uploadsBucket
}

// openUploadsArea opens the uploads area: the bucket when one is set,
// else the directory dir, else none (nil: CAR uploads are refused, 413).
func (p *proc) openUploadsArea(ctx context.Context, b *uploadsBucketFlags, dir string, maxCAR int64) (uploadsArea, error) {
	if *b.bucket == "" {
		d, err := p.openUploads(dir, maxCAR)
		if d == nil || err != nil {
			return nil, err
		}
		return d, nil
	}
	client, err := newS3Client(ctx, *b.s3.endpoint, *b.s3.region)
	if err != nil {
		return nil, err
	}
	area, err := carupload.NewS3(client, carupload.S3Config{Bucket: *b.bucket, Prefix: *b.prefix}, carupload.Limits{MaxCARBytes: maxCAR}, p.logger)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return area, nil
}

// newS3Client builds an S3 client as the CAR store builds its own: the AWS
// default chains (through awsconfig, which records calls in tests),
// checksums only where S3 requires them, path-style addressing for a
// custom endpoint.
func newS3Client(ctx context.Context, endpoint, region string) (*s3.Client, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns, t.MaxIdleConnsPerHost = 64, 64
		})),
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := awsconfig.Load(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
	}), nil
}
