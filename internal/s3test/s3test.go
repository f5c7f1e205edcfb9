// Package s3test runs a real S3-compatible server for tests: versitygw, on a
// free loopback port, storing its objects in a temporary directory. Tests of
// anything that talks to S3 use it instead of a mock, so that what they prove
// holds against a server that parses, signs and checks requests the way S3
// does.
//
// The versitygw binary is looked up on PATH, then in .tools/bin at the root
// of the module (where `make tools` installs the pinned version).
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the region the server answers for.
const Region = "us-east-1"

// readyTimeout bounds the wait for a started server to answer; versitygw is
// ready in well under a second, so hitting it means the server is broken.
const readyTimeout = 20 * time.Second

// Server is one versitygw process serving a directory of its own. Its
// methods are safe for concurrent use.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the credentials the server accepts.
	AccessKey string
	SecretKey string
	// Region is the region to sign requests for.
	Region string
	// Dir is where the server keeps its buckets.
	Dir string
	// Client is an S3 client for the server, configured as pickup configures
	// its own: path-style addressing and checksums only where required.
	Client *s3.Client

	tb   testing.TB
	bin  string
	addr string

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd
	done chan struct{}

	logMu sync.Mutex // guards log, written by os/exec's copying goroutine
	log   bytes.Buffer
}

// Start starts a server for the test and stops it when the test ends. It
// fails the test if versitygw cannot be found or does not start.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := findBinary()
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{
		AccessKey: "test" + randomHex(8),
		SecretKey: randomHex(20),
		Region:    Region,
		Dir:       tb.TempDir(),
		tb:        tb,
		bin:       bin,
	}
	// A port found free may be taken by someone else before versitygw binds
	// it; a few tries make that race harmless.
	for try := 0; ; try++ {
		s.addr, err = freeAddr()
		if err == nil {
			err = s.start()
		}
		if err == nil {
			break
		}
		if try == 4 {
			tb.Fatalf("start versitygw: %v\n%s", err, s.logs())
		}
	}
	s.Endpoint = "http://" + s.addr
	s.Client = s.NewClient()
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			tb.Logf("versitygw output:\n%s", s.logs())
		}
	})
	return s
}

// NewClient returns a new S3 client for the server, with options applied
// after the defaults.
func (s *Server) NewClient(opts ...func(*s3.Options)) *s3.Client {
	base := []func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(s.Endpoint)
		o.UsePathStyle = true
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}}
	return s3.New(s3.Options{
		Region:      s.Region,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	}, append(base, opts...)...)
}

// CreateBucket creates a bucket with a name no other test uses, starting
// with prefix, and returns the name.
func (s *Server) CreateBucket(tb testing.TB, prefix string) string {
	tb.Helper()
	name := strings.ToLower(prefix) + "-" + randomHex(6)
	if _, err := s.Client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// Stop stops the server, as a crash would: at once, with requests in flight
// cut off. Its data stays, for Restart. Stopping a stopped server does
// nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts a stopped server again, on the same address with the same
// data and credentials, and waits until it answers. It fails the test if the
// server does not come back.
func (s *Server) Restart() {
	s.tb.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		return
	}
	// The old listener's port can linger for a moment after the kill.
	var err error
	for try := 0; try < 50; try++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.tb.Fatalf("restart versitygw on %s: %v\n%s", s.addr, err, s.logs())
}

// start runs versitygw on s.addr and waits until it answers HTTP.
func (s *Server) start() error {
	cmd := exec.Command(s.bin,
		"--access", s.AccessKey, "--secret", s.SecretKey,
		"--region", s.Region, "--port", s.addr, "--quiet",
		"posix", s.Dir)
	cmd.Stdout = &lockedWriter{mu: &s.logMu, w: &s.log}
	cmd.Stderr = cmd.Stdout
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := waitReady(s.addr, done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return err
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// CPUTime returns the processor time the running server has used, user
// and system, so that a benchmark can report what its requests cost the
// server; zero if the server is stopped or the platform cannot tell.
func (s *Server) CPUTime() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return ProcessCPU(s.cmd.Process.Pid)
}

func (s *Server) logs() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// waitReady polls addr until an HTTP request gets any answer, or the
// process exits.
func waitReady(addr string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("versitygw exited before answering on %s", addr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw did not answer on %s within %v: %w", addr, readyTimeout, err)
		}
	}
}

// findBinary looks for versitygw on PATH, then in .tools/bin of the module
// the working directory is in.
func findBinary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find versitygw: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".tools", "bin", "versitygw")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("versitygw is not on PATH nor at %s: run `make tools`", p)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("versitygw is not on PATH and no go.mod was found above the working directory: run `make tools`")
		}
		dir = parent
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lockedWriter lets the server's output be written by os/exec's copying
// goroutine while tests read it.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
