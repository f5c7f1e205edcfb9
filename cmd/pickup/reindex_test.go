package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/index"

	"github.com/pickup-ipfs/pickup/fetcher/carstore"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/internal/s3test"
)

// reindexChildArgs, set in a child process of the test binary, makes
// TestReindexChild run pickup with these arguments (one per line).
const reindexChildArgs = "PICKUP_TEST_REINDEX_ARGS"

// TestReindexChild is not a test: it is pickup itself, in a child process
// that TestReindexResumesAfterAKill starts and kills.
func TestReindexChild(t *testing.T) {
	args := os.Getenv(reindexChildArgs)
	if args == "" {
		t.Skip("runs only as the child of TestReindexResumesAfterAKill")
	}
	e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(context.Background(), e, strings.Split(args, "\n")))
}

// oldStore is a carpark of CARs stored as before indexes: in the carpark,
// validated, with no index and no mapping.
type oldStore struct {
	store interface {
		reindexStore
		Stage(ctx context.Context, key string, meta carstore.Metadata) (carstore.Upload, error)
		Promote(ctx context.Context, stagedKey string, want carstore.Expected) (carstore.Stored, error)
	}
	// args are reindex's store flags; env what the child needs besides.
	args []string
	env  []string
	// state is the state file reindex keeps.
	state string
}

// putOldCARs stores n CARs of small UnixFS DAGs the old way and returns
// their bytes by carpark key.
func (o oldStore) putOldCARs(t *testing.T, n int) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	for i := range n {
		bs := ipfstest.NewMemBlockstore()
		root, err := ipfstest.File(ctx, bs, ipfstest.FileOptions{Size: int64(20<<10 + 1000*i), Seed: uint64(500 + i), ChunkSize: 1 << 10, CIDv1: i%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := ipfstest.Export(ctx, bs, root, &buf); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		sum := sha256.Sum256(data)
		meta := carstore.Metadata{Root: root, RequestID: fmt.Sprintf("old-%d", i)}
		key := carstore.StagingKey(meta.RequestID, 1)
		up, err := o.store.Stage(ctx, key, meta)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(data); err != nil {
			t.Fatal(err)
		}
		st, err := up.Complete(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := o.store.Promote(ctx, key, carstore.Expected{Bytes: int64(len(data)), CarCID: carstore.CarCID(sum[:]), Metadata: meta, Checksum: st.Checksum})
		if err != nil {
			t.Fatal(err)
		}
		out[stored.Key] = data
	}
	return out
}

// indexed counts the CARs that have an index; strict, it checks that each
// index is exactly the one go-car builds by reading its CAR (every block's
// multihash and section offset), and that its root's mapping is there
// (PutIndex writes it after the index: a run watched while it works may
// be between the two).
func (o oldStore) indexed(t *testing.T, cars map[string][]byte, strict bool) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	err := o.store.ListCars(ctx, "", func(st carstore.Stored) error {
		r, err := o.store.ReadRange(ctx, carstore.IndexKey(st.Key), 0, -1)
		if err != nil {
			return nil // not (yet) indexed
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return err
		}
		n++
		if !strict {
			return nil
		}
		idx, err := car.GenerateIndex(bytes.NewReader(cars[st.Key]))
		if err != nil {
			return err
		}
		var want bytes.Buffer
		if _, err := index.WriteTo(idx, &want); err != nil {
			return err
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("the index of %s (%d bytes) is not go-car's index of the CAR (%d bytes)", st.Key, len(got), want.Len())
		}
		m, err := o.store.ReadRange(ctx, carstore.RootMapKey(st.Root, st.CarCID), 0, 0)
		if err != nil {
			t.Errorf("%s is indexed, but its root's mapping: %v", st.Key, err)
		} else {
			m.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func dirOldStore(t *testing.T) oldStore {
	dir := t.TempDir()
	d, err := carstore.NewDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return oldStore{store: d, args: []string{"--car-dir", dir}, state: filepath.Join(dir, "reindex.state")}
}

func s3OldStore(t *testing.T) oldStore {
	srv := s3test.Start(t)
	staging, carpark := srv.CreateBucket(t, "staging"), srv.CreateBucket(t, "carpark")
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey, "AWS_SESSION_TOKEN": "", "AWS_PROFILE": ""} {
		t.Setenv(k, v)
	}
	s, err := carstore.NewS3(context.Background(), carstore.S3Config{
		StagingBucket: staging, CarparkBucket: carpark, Endpoint: srv.Endpoint, Region: srv.Region,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "reindex.state")
	return oldStore{
		store: s,
		args:  []string{"--carpark-bucket", carpark, "--s3-endpoint", srv.Endpoint, "--s3-region", srv.Region, "--reindex-state", state},
		state: state,
	}
}

// TestReindexResumesAfterAKill: pickup reindex, a real process, is killed
// with SIGKILL midway through a carpark of CARs stored before indexes; run
// again, it resumes after the last CAR it did, and then every CAR has the
// index go-car builds of it, exactly, and its mapping; a third run does
// nothing and says so. On the directory store and on S3 (versitygw).
func TestReindexResumesAfterAKill(t *testing.T) {
	for name, mk := range map[string]func(*testing.T) oldStore{"dir": dirOldStore, "s3": s3OldStore} {
		t.Run(name, func(t *testing.T) {
			o := mk(t)
			const n = 12
			cars := o.putOldCARs(t, n)
			if got := o.indexed(t, cars, true); got != 0 {
				t.Fatalf("%d CARs indexed before reindex", got)
			}
			// Slowed by a pause after each CAR, so that the kill lands
			// midway.
			args := append([]string{"reindex", "--reindex-pause", "150ms"}, o.args...)
			cmd := exec.Command(os.Args[0], "-test.run=^TestReindexChild$")
			cmd.Env = append(os.Environ(), reindexChildArgs+"="+strings.Join(args, "\n"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			deadline := time.Now().Add(60 * time.Second)
			for o.indexed(t, cars, false) < n/3 {
				select {
				case err := <-exited:
					t.Fatalf("reindex ended (%v) before it could be killed midway:\n%s", err, out.String())
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("reindex indexed too little in a minute:\n%s", out.String())
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-exited
			killedAt := o.indexed(t, cars, false)
			if killedAt >= n {
				t.Fatalf("the killed run had indexed all %d CARs", n)
			}
			if _, err := os.Stat(o.state); err != nil {
				t.Fatalf("the killed run left no state file: %v", err)
			}
			t.Logf("reindex killed with %d of %d CARs indexed", killedAt, n)

			e, stdout, stderr := testEnv(nil)
			if code := run(context.Background(), e, append([]string{"reindex"}, o.args...)); code != 0 {
				t.Fatalf("reindex after the kill: exit %d\n%s%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr.String(), "resuming after") {
				t.Errorf("the run after the kill did not resume:\n%s", stderr)
			}
			if got := o.indexed(t, cars, true); got != n {
				t.Fatalf("after the second run %d of %d CARs are indexed:\n%s%s", got, n, stdout, stderr)
			}
			if _, err := os.Stat(o.state); !os.IsNotExist(err) {
				t.Errorf("a complete run left its state file: %v", err)
			}

			e, stdout, stderr = testEnv(nil)
			if code := run(context.Background(), e, append([]string{"reindex"}, o.args...)); code != 0 || !strings.Contains(stdout.String(), fmt.Sprintf("nothing to do: all %d CARs have their index", n)) {
				t.Fatalf("third run: exit %d\n%s%s", code, stdout, stderr)
			}
		})
	}
}

// A CAR whose bytes do not read as a CAR of its blocks is reported and
// skipped, not indexed, and the run exits 1; the others are indexed.
func TestReindexSkipsACorruptCAR(t *testing.T) {
	o := dirOldStore(t)
	cars := o.putOldCARs(t, 3)
	var bad string
	for key := range cars {
		bad = key
		break
	}
	path := filepath.Join(o.args[1], "carpark", filepath.FromSlash(bad))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e, stdout, stderr := testEnv(nil)
	if code := run(context.Background(), e, append([]string{"reindex"}, o.args...)); code != 1 || !strings.Contains(stderr.String(), "skipped "+bad) {
		t.Fatalf("reindex over a corrupt CAR: exit %d\n%s%s", code, stdout, stderr)
	}
	delete(cars, bad)
	if got := o.indexed(t, cars, true); got != 2 {
		t.Fatalf("%d CARs indexed, want the 2 sound ones", got)
	}
	if _, err := os.Stat(path + ".idx"); !os.IsNotExist(err) {
		t.Fatalf("the corrupt CAR got an index: %v", err)
	}
}
