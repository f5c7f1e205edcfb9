// Package awsconfig loads the AWS SDK's configuration for every part of
// pickup that calls AWS (Secrets Manager, S3, SNS, EC2), so that they share
// one way of finding credentials, region and endpoints (the SDK's default
// chain, including AWS_ENDPOINT_URL_<SERVICE> for stand-ins), and one hook
// that records the calls made.
//
// When PICKUP_TEST_AWS_CALLS names a file, every AWS operation the process
// starts is appended to it as one line, "<service id> <operation>" (for
// example "S3 CreateMultipartUpload"). The deployment test sets it to check
// that each role's IAM policy allows every call its code makes; it is never
// set in a deployment.
package awsconfig

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/middleware"
)

// RecordEnv names the file AWS calls are recorded in (see the package doc).
const RecordEnv = "PICKUP_TEST_AWS_CALLS"

// Load is config.LoadDefaultConfig with opts, plus the recording hook when
// RecordEnv is set.
func Load(ctx context.Context, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if path := os.Getenv(RecordEnv); path != "" {
		cfg.APIOptions = append(cfg.APIOptions, recordTo(path))
	}
	return cfg, nil
}

var recordMu sync.Mutex

// recordTo adds a step that appends each operation's service and name to
// the file at path before the call is sent.
func recordTo(path string) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("pickupRecordCall",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				line := awsmiddleware.GetServiceID(ctx) + " " + awsmiddleware.GetOperationName(ctx) + "\n"
				recordMu.Lock()
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
				if err == nil {
					_, err = f.WriteString(line)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				recordMu.Unlock()
				if err != nil {
					return middleware.InitializeOutput{}, middleware.Metadata{}, fmt.Errorf("record AWS call in %s: %w", path, err)
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}
