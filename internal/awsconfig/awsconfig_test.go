package awsconfig

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestRecordsEveryCall: with RecordEnv set, each call made through a client
// of the loaded configuration is a line of the file, service and operation,
// whether it succeeds or not.
func TestRecordsEveryCall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "calls")
	t.Setenv(RecordEnv, path)
	cfg, err := Load(context.Background(), config.WithRegion("us-east-1"), config.WithRetryMaxAttempts(1),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("k", "s", "")))
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(srv.URL); o.UsePathStyle = true })
	client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("b")})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "S3 HeadObject\nS3 ListMultipartUploads\n"; string(b) != want {
		t.Fatalf("recorded %q, want %q", b, want)
	}
}

// TestRecordsNothingUnset: without RecordEnv, no hook is added.
func TestRecordsNothingUnset(t *testing.T) {
	t.Setenv(RecordEnv, "")
	cfg, err := Load(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.APIOptions) != 0 {
		t.Fatalf("%d API options added without %s", len(cfg.APIOptions), RecordEnv)
	}
}
