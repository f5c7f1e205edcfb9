package carupload_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/carupload"
	"github.com/pickup-ipfs/pickup/internal/caruploadtest"
	"github.com/pickup-ipfs/pickup/internal/s3test"
)

// area is an uploads area as the gateway and the fetchers use it: Dir and
// S3 are, and pass the same cases (testArea).
type area interface {
	Receive(ctx context.Context, key string, root cid.Cid, body io.Reader) (carupload.Received, error)
	Open(ctx context.Context, key string) (carupload.Upload, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context) ([]carupload.Kept, error)
	DeletePartial(ctx context.Context, name string) error
	Limits() carupload.Limits
}

// backend makes empty areas of one kind for the cases.
type backend struct {
	// open returns a new, empty area with the limits; stored lists all
	// it holds, whole or not (files, objects, unfinished multipart
	// uploads); kill leaves in it what a receiving process killed
	// mid-body leaves.
	open func(t *testing.T, limits carupload.Limits) (a area, stored func() []string, kill func(key string))
}

func TestDir(t *testing.T) {
	testArea(t, backend{open: func(t *testing.T, limits carupload.Limits) (area, func() []string, func(string)) {
		dir := t.TempDir()
		a, err := carupload.NewDir(dir, limits, nil)
		if err != nil {
			t.Fatal(err)
		}
		stored := func() []string {
			entries, _ := os.ReadDir(dir)
			var out []string
			for _, e := range entries {
				out = append(out, e.Name())
			}
			return out
		}
		kill := func(key string) {
			if err := os.WriteFile(filepath.Join(dir, "."+key+".car-123"), []byte("half a body"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return a, stored, kill
	}})
}

func TestS3(t *testing.T) {
	srv := s3test.Start(t)
	testArea(t, backend{open: func(t *testing.T, limits carupload.Limits) (area, func() []string, func(string)) {
		bucket := srv.CreateBucket(t, "uploads")
		// The smallest parts S3 takes, so that a few MiB are several.
		a, err := carupload.NewS3(srv.Client, carupload.S3Config{Bucket: bucket, PartSize: 5 << 20}, limits, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		stored := func() []string {
			var out []string
			objs, err := srv.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs.Contents {
				out = append(out, aws.ToString(o.Key))
			}
			ups, err := srv.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range ups.Uploads {
				out = append(out, "unfinished "+aws.ToString(u.Key))
			}
			return out
		}
		kill := func(key string) {
			out, err := srv.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(a.Prefix() + key + ".car")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := srv.Client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(a.Prefix() + key + ".car"),
				UploadId: out.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(make([]byte, 5<<20))}); err != nil {
				t.Fatal(err)
			}
			// An index completed whose CAR never was.
			if _, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(a.Prefix() + key + ".idx"), Body: bytes.NewReader([]byte("idx"))}); err != nil {
				t.Fatal(err)
			}
		}
		return a, stored, kill
	}})
}

func TestS3Config(t *testing.T) {
	for _, tc := range []struct {
		cfg carupload.S3Config
		ok  bool
	}{
		{carupload.S3Config{Bucket: "b"}, true},
		{carupload.S3Config{Bucket: "b", Prefix: "a/b/"}, true},
		{carupload.S3Config{}, false},
		{carupload.S3Config{Bucket: "b", Prefix: "uploads"}, false},
		{carupload.S3Config{Bucket: "b", Prefix: "/uploads/"}, false},
		{carupload.S3Config{Bucket: "b", PartSize: 1 << 20}, false},
		{carupload.S3Config{Bucket: "b", Concurrency: -1}, false},
	} {
		if err := tc.cfg.WithDefaults().Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v, want ok %v", tc.cfg, err, tc.ok)
		}
	}
}

// failingReader gives n bytes of b, then err: a client gone mid-body.
type failingReader struct {
	b   []byte
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	c := copy(p[:min(len(p), r.n)], r.b)
	r.b, r.n = r.b[c:], r.n-c
	return c, nil
}

// testArea runs the cases every uploads area passes.
func testArea(t *testing.T, b backend) {
	ctx := context.Background()
	small := caruploadtest.NewDAG(t, 1<<20, 3)
	// Over two parts of 5 MiB: the multipart path of S3.
	big := caruploadtest.NewDAG(t, 11<<20, 7)
	other := caruploadtest.NewDAG(t, 64<<10, 4)

	t.Run("refusals leave nothing", func(t *testing.T) {
		gone := errors.New("client gone")
		for _, tc := range []struct {
			name   string
			root   cid.Cid
			body   io.Reader
			limits carupload.Limits
			want   error
		}{
			{"truncated", small.Root, bytes.NewReader(small.Canonical[:len(small.Canonical)-100]), carupload.Limits{}, carupload.ErrBadCAR},
			{"truncated in a section length", small.Root, bytes.NewReader(small.Canonical[:len(small.Canonical)-len(small.Blocks[len(small.Blocks)-1].Data)-37]), carupload.Limits{}, carupload.ErrBadCAR},
			{"truncated after parts were sent", big.Root, bytes.NewReader(big.Canonical[:len(big.Canonical)-100]), carupload.Limits{}, carupload.ErrBadCAR},
			{"wrong root", small.Root, bytes.NewReader(caruploadtest.CAR(t, []cid.Cid{other.Root}, small.Blocks)), carupload.Limits{}, carupload.ErrBadCAR},
			{"over the limit", small.Root, bytes.NewReader(small.Canonical), carupload.Limits{MaxCARBytes: 512 << 10}, carupload.ErrTooBig},
			{"over the limit after parts were sent", big.Root, bytes.NewReader(big.Canonical), carupload.Limits{MaxCARBytes: 10 << 20}, carupload.ErrTooBig},
			{"empty", small.Root, bytes.NewReader(nil), carupload.Limits{}, carupload.ErrBadCAR},
			{"not a CAR", small.Root, bytes.NewReader([]byte("{\"cid\":\"bafy\"}")), carupload.Limits{}, carupload.ErrBadCAR},
			{"header only", small.Root, bytes.NewReader(caruploadtest.CAR(t, []cid.Cid{small.Root}, nil)), carupload.Limits{}, carupload.ErrBadCAR},
			{"client gone", small.Root, &failingReader{b: small.Canonical, n: 300 << 10, err: gone}, carupload.Limits{}, gone},
			{"client gone after parts were sent", big.Root, &failingReader{b: big.Canonical, n: 10 << 20, err: gone}, carupload.Limits{}, gone},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a, stored, _ := b.open(t, tc.limits)
				_, err := a.Receive(ctx, "u1", tc.root, tc.body)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				if left := stored(); len(left) > 0 {
					t.Fatalf("left behind: %v", left)
				}
				if _, err := a.Open(ctx, "u1"); !errors.Is(err, carupload.ErrNotFound) {
					t.Fatalf("open a refused upload: %v", err)
				}
			})
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		a, stored, _ := b.open(t, carupload.Limits{})
		cctx, cancel := context.WithCancel(ctx)
		r := &failingReader{b: big.Canonical, n: len(big.Canonical), err: io.EOF}
		body := readerFunc(func(p []byte) (int, error) {
			if len(big.Canonical)-r.n > 6<<20 {
				cancel()
			}
			return r.Read(p)
		})
		if _, err := a.Receive(cctx, "u1", big.Root, body); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want cancelled", err)
		}
		if left := stored(); len(left) > 0 {
			t.Fatalf("left behind: %v", left)
		}
	})

	t.Run("stops reading at the limit", func(t *testing.T) {
		d := caruploadtest.NewDAG(t, 1<<20, 5)
		r := bytes.NewReader(d.Canonical)
		a, _, _ := b.open(t, carupload.Limits{MaxCARBytes: 200 << 10})
		if _, err := a.Receive(ctx, "u1", d.Root, r); !errors.Is(err, carupload.ErrTooBig) {
			t.Fatalf("err %v, want too big", err)
		}
		// One read buffer past the limit at most.
		if read := int64(len(d.Canonical)) - int64(r.Len()); read > 200<<10+64<<10+70<<10 {
			t.Fatalf("read %d bytes of a body refused at %d", read, 200<<10)
		}
	})

	for _, tc := range []struct {
		name string
		d    caruploadtest.DAG
		body []byte
	}{
		{"small", small, small.Canonical},
		{"several parts", big, big.Canonical},
		{"blocks in another order", small, small.Reversed(t)},
	} {
		t.Run("read back/"+tc.name, func(t *testing.T) {
			a, stored, _ := b.open(t, carupload.Limits{})
			res, err := a.Receive(ctx, "u1", tc.d.Root, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if res.Key != "u1" || res.Bytes != int64(len(tc.body)) || res.Blocks != int64(len(tc.d.Blocks)) {
				t.Fatalf("received %+v, want u1, %d bytes, %d blocks", res, len(tc.body), len(tc.d.Blocks))
			}
			u, err := a.Open(ctx, "u1")
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			want := map[cid.Cid][]byte{}
			for _, blk := range tc.d.Blocks {
				want[blk.CID] = blk.Data
			}
			var order []cid.Cid
			err = u.Sections(func(c cid.Cid, s carupload.Section) error {
				order = append(order, c)
				data := make([]byte, s.Length)
				if _, err := u.ReadAt(data, s.Offset); err != nil {
					return fmt.Errorf("read %s at %d: %w", c, s.Offset, err)
				}
				if !bytes.Equal(data, want[c]) {
					return fmt.Errorf("block %s: other bytes", c)
				}
				return nil
			})
			if err != nil || len(order) != len(tc.d.Blocks) {
				t.Fatalf("sections: %d of %d (%v)", len(order), len(tc.d.Blocks), err)
			}
			// Reads out of order, and past the end.
			whole := make([]byte, len(tc.body))
			if _, err := u.ReadAt(whole[100:], 100); err != nil || !bytes.Equal(whole[100:], tc.body[100:]) {
				t.Fatalf("read from 100: %v", err)
			}
			if _, err := u.ReadAt(whole[:100], 0); err != nil || !bytes.Equal(whole, tc.body) {
				t.Fatalf("read from 0: %v", err)
			}
			if n, err := u.ReadAt(make([]byte, 10), int64(len(tc.body))-4); n != 4 || err != io.EOF {
				t.Fatalf("read over the end: %d, %v; want 4, EOF", n, err)
			}
			kept, err := a.List(ctx)
			if err != nil || len(kept) != 1 || kept[0].Key != "u1" || kept[0].Partial || kept[0].Modified.IsZero() {
				t.Fatalf("list: %+v, %v; want u1, whole", kept, err)
			}
			if err := a.Delete(ctx, "u1"); err != nil {
				t.Fatal(err)
			}
			if err := a.Delete(ctx, "u1"); err != nil {
				t.Fatalf("delete what is gone: %v", err)
			}
			if left := stored(); len(left) > 0 {
				t.Fatalf("left after delete: %v", left)
			}
			if _, err := a.Open(ctx, "u1"); !errors.Is(err, carupload.ErrNotFound) {
				t.Fatalf("open after delete: %v", err)
			}
		})
	}

	t.Run("partial", func(t *testing.T) {
		a, stored, kill := b.open(t, carupload.Limits{})
		if _, err := a.Receive(ctx, "whole", small.Root, bytes.NewReader(small.Canonical)); err != nil {
			t.Fatal(err)
		}
		kill("killed")
		kept, err := a.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var partial []string
		for _, k := range kept {
			switch {
			case k.Partial:
				partial = append(partial, k.Key)
			case k.Key != "whole":
				t.Errorf("listed %q as an upload", k.Key)
			}
		}
		if len(partial) == 0 {
			t.Fatalf("listed %+v: no partial upload", kept)
		}
		if _, err := a.Open(ctx, "killed"); !errors.Is(err, carupload.ErrNotFound) {
			t.Fatalf("open a partial upload: %v", err)
		}
		for _, name := range partial {
			if err := a.DeletePartial(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.DeletePartial(ctx, "whole"); err == nil {
			t.Errorf("DeletePartial took a whole upload's key")
		}
		if err := a.Delete(ctx, "whole"); err != nil {
			t.Fatal(err)
		}
		if left := stored(); len(left) > 0 {
			t.Fatalf("left: %v", left)
		}
	})

	t.Run("bad keys", func(t *testing.T) {
		a, _, _ := b.open(t, carupload.Limits{})
		for _, key := range []string{"", "a/b", `a\b`, ".hidden"} {
			if _, err := a.Receive(ctx, key, small.Root, bytes.NewReader(small.Canonical)); err == nil {
				t.Errorf("received as %q", key)
			}
			if _, err := a.Open(ctx, key); err == nil || errors.Is(err, carupload.ErrNotFound) {
				t.Errorf("open %q: %v", key, err)
			}
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		a, stored, _ := b.open(t, carupload.Limits{})
		keys := []string{"c1", "c2", "c3", "c4"}
		errs := make(chan error, len(keys))
		for _, k := range keys {
			go func() {
				_, err := a.Receive(ctx, k, small.Root, bytes.NewReader(small.Canonical))
				errs <- err
			}()
		}
		for range keys {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		kept, _ := a.List(ctx)
		var got []string
		for _, k := range kept {
			got = append(got, k.Key)
		}
		slices.Sort(got)
		if !slices.Equal(got, keys) {
			t.Fatalf("listed %v, want %v", got, keys)
		}
		for _, k := range keys {
			a.Delete(ctx, k)
		}
		if left := stored(); len(left) > 0 {
			t.Fatalf("left: %v", left)
		}
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// Receive never panics on any body, and what it keeps is what it was given,
// its index naming sections that lie inside it and hold the CIDs it names.
func FuzzReceive(f *testing.F) {
	d := caruploadtest.NewDAG(f, 200<<10, 11)
	f.Add(d.Canonical)
	f.Add(d.Canonical[:300])
	f.Add(d.Reversed(f))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xa2})
	f.Fuzz(func(t *testing.T, body []byte) {
		var car, idx bytes.Buffer
		res, err := carupload.Receive(bytes.NewReader(body), &car, &idx, d.Root, carupload.Limits{MaxCARBytes: 1 << 20, MaxBlockBytes: 1 << 18})
		if err != nil {
			if !errors.Is(err, carupload.ErrBadCAR) && !errors.Is(err, carupload.ErrTooBig) {
				t.Fatalf("an error of neither kind: %v", err)
			}
			return
		}
		if res.Bytes != int64(len(body)) || !bytes.Equal(car.Bytes(), body) {
			t.Fatalf("kept %d bytes of a body of %d, or other bytes", res.Bytes, len(body))
		}
		var n int64
		err = carupload.ReadIndex(&idx, func(c cid.Cid, s carupload.Section) error {
			n++
			if s.Offset < 0 || s.Length < 0 || s.Offset+s.Length > int64(len(body)) {
				t.Fatalf("section %+v of %s outside a body of %d bytes", s, c, len(body))
			}
			if !bytes.HasSuffix(body[:s.Offset], c.Bytes()) {
				t.Fatalf("the section at %d is not preceded by its CID %s", s.Offset, c)
			}
			return nil
		})
		if err != nil || n != res.Blocks {
			t.Fatalf("index of %d entries (%v), %d blocks received", n, err, res.Blocks)
		}
	})
}
