package awstest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/pickup-ipfs/pickup/internal/s3test"
)

// TestSecretsManager: the SDK's own client reads a secret by ARN and by
// name, and gets ResourceNotFoundException for one the stand-in does not
// hold.
func TestSecretsManager(t *testing.T) {
	ctx := context.Background()
	arn := "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf"
	sm := NewSecretsManager(t, Secret{ARN: arn, Name: "app", Value: `{"username":"u","password":"p"}`})
	client := secretsmanager.New(secretsmanager.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(sm.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
	})
	for _, id := range []string{arn, "app"} {
		out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("GetSecretValue(%s): %v", id, err)
		}
		if aws.ToString(out.SecretString) != `{"username":"u","password":"p"}` || aws.ToString(out.ARN) != arn {
			t.Errorf("GetSecretValue(%s): %q %q", id, aws.ToString(out.ARN), aws.ToString(out.SecretString))
		}
	}
	_, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("other")})
	var notFound *smtypes.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("GetSecretValue(other): %v, want ResourceNotFoundException", err)
	}
	sm.Put(Secret{ARN: arn, Name: "app", Value: "rotated"})
	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app")})
	if err != nil || aws.ToString(out.SecretString) != "rotated" {
		t.Errorf("after Put: %v %q", err, aws.ToString(out.SecretString))
	}
	if got := sm.Reads(); len(got) != 3 || got[0] != arn {
		t.Errorf("reads %q", got)
	}
}

// TestECSTask: the metadata endpoint names the task's private address, and
// the agent's task protection keeps what the last PUT set.
func TestECSTask(t *testing.T) {
	task := NewECSTask(t, "c", "f", []string{"fetcher"}, "127.0.0.1")
	resp, err := http.Get(task.MetadataURI + "/task")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /task: %s", resp.Status)
	}
	for _, on := range []string{"true", "false"} {
		req, _ := http.NewRequest(http.MethodPut, task.AgentURI+"/task-protection/v1/state", strings.NewReader(`{"ProtectionEnabled":`+on+`}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT protection %s: %s", on, resp.Status)
		}
	}
	if on, n := task.Protection(); on || n != 2 {
		t.Errorf("protection %v after %d changes, want off after 2", on, n)
	}
}

// TestEC2: the SDK's own client finds the public IP of a private address
// the stand-in knows, and no interface for one it does not.
func TestEC2(t *testing.T) {
	ctx := context.Background()
	e := NewEC2(t, map[string]string{"127.0.0.1": "127.0.0.1"})
	client := ec2.New(ec2.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(e.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
	})
	describe := func(ip string) []ec2types.NetworkInterface {
		t.Helper()
		out, err := client.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
			Filters: []ec2types.Filter{{Name: aws.String("addresses.private-ip-address"), Values: []string{ip}}},
		})
		if err != nil {
			t.Fatalf("DescribeNetworkInterfaces(%s): %v", ip, err)
		}
		return out.NetworkInterfaces
	}
	nis := describe("127.0.0.1")
	if len(nis) != 1 || nis[0].Association == nil || aws.ToString(nis[0].Association.PublicIp) != "127.0.0.1" || aws.ToString(nis[0].PrivateIpAddress) != "127.0.0.1" {
		t.Fatalf("interfaces of 127.0.0.1: %+v", nis)
	}
	if nis := describe("10.0.0.9"); len(nis) != 0 {
		t.Errorf("interfaces of an unknown address: %+v", nis)
	}
	if got := e.Asked(); len(got) != 2 || got[0] != "127.0.0.1" {
		t.Errorf("asked %q", got)
	}
	_, err := client.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{"vpc-1"}}},
	})
	if err == nil {
		t.Errorf("a filter the stand-in does not know was answered")
	}
}

// TestRecorder: requests through the recorder reach versitygw with their
// signatures intact, and each is kept with its path and query.
func TestRecorder(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	bucket := srv.CreateBucket(t, "rec")
	rec := NewRecorder(t, srv.Endpoint)
	client := srv.NewClient(func(o *s3.Options) { o.BaseEndpoint = aws.String(rec.URL) })
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b"), Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("PutObject through the recorder: %v", err)
	}
	if _, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("ListMultipartUploads through the recorder: %v", err)
	}
	got := rec.Requests()
	if len(got) != 2 || got[0].Method != http.MethodPut || got[0].Path != "/"+bucket+"/a/b" {
		t.Fatalf("recorded %+v", got)
	}
	if _, ok := got[1].Query["uploads"]; got[1].Method != http.MethodGet || got[1].Path != "/"+bucket || !ok {
		t.Errorf("recorded %+v", got[1])
	}
}
