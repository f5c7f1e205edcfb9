package s3test_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pickup-ipfs/pickup/internal/s3test"
)

// The server stores what it is given, goes away on Stop, and comes back on
// Restart at the same endpoint with the same objects: what a test of "S3
// was down for a while" needs.
func TestServerStopAndRestartKeepsData(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	bucket := srv.CreateBucket(t, "keep")

	put(t, srv.Client, bucket, "a/b.txt", "hello")
	if got := get(t, srv.Client, bucket, "a/b.txt"); got != "hello" {
		t.Fatalf("got %q, want hello", got)
	}

	srv.Stop()
	// A client that does not wait long: the server is gone, so the request
	// must fail rather than succeed from some cache.
	short := srv.NewClient(func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := short.HeadObject(cctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b.txt")}); err == nil {
		t.Fatal("head succeeded while the server was stopped")
	}

	srv.Restart()
	if got := get(t, srv.Client, bucket, "a/b.txt"); got != "hello" {
		t.Fatalf("after restart got %q, want hello", got)
	}
	put(t, srv.Client, bucket, "c.txt", "again")
	if got := get(t, srv.Client, bucket, "c.txt"); got != "again" {
		t.Fatalf("got %q, want again", got)
	}
}

// The server checks signatures: a client with the wrong secret is refused,
// as AWS would refuse it.
func TestServerRefusesWrongSecret(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.CreateBucket(t, "auth")
	client := srv.NewClient(func(o *s3.Options) {
		o.RetryMaxAttempts = 1
		o.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, "wrong", "")
	})
	_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("x"), Body: strings.NewReader("x"),
	})
	if err == nil {
		t.Fatal("put with a wrong secret succeeded")
	}
}

// A link to the server carries requests and answers intact, in both
// directions, for several clients at once. (How fast it is shows in
// BenchmarkFetchIntoS3's wire figures; a test does not time it.)
func TestLinkCarriesRequestsIntact(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.CreateBucket(t, "link")
	endpoint := srv.Link(t, 8<<20)
	client := srv.NewClient(func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint) })
	body := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB, over several chunks
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = client.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(bucket), Key: aws.String(fmt.Sprint("obj", i)), Body: strings.NewReader(body),
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if got := get(t, srv.Client, bucket, fmt.Sprint("obj", i)); got != body {
			t.Errorf("obj%d stored through the link is %d bytes, not the %d sent", i, len(got), len(body))
		}
		if got := get(t, client, bucket, fmt.Sprint("obj", i)); got != body {
			t.Errorf("obj%d read through the link is %d bytes, not the %d stored", i, len(got), len(body))
		}
	}
}

func put(t *testing.T, c *s3.Client, bucket, key, body string) {
	t.Helper()
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body),
	})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, c *s3.Client, bucket, key string) string {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return string(b)
}
