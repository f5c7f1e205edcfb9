package carupload_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/carupload"
	"github.com/pickup-ipfs/pickup/internal/caruploadtest"
)

func TestReceiveRefusesBadUploadsAndLeavesNothing(t *testing.T) {
	d := caruploadtest.NewDAG(t, 1<<20, 3)
	other := caruploadtest.NewDAG(t, 64<<10, 4)
	for _, tc := range []struct {
		name   string
		body   []byte
		limits carupload.Limits
		want   error
	}{
		{"truncated", d.Canonical[:len(d.Canonical)-100], carupload.Limits{}, carupload.ErrBadCAR},
		{"truncated in a section length", d.Canonical[:len(d.Canonical)-len(d.Blocks[len(d.Blocks)-1].Data)-37], carupload.Limits{}, carupload.ErrBadCAR},
		{"wrong root", caruploadtest.CAR(t, []cid.Cid{other.Root}, d.Blocks), carupload.Limits{}, carupload.ErrBadCAR},
		{"over the limit", d.Canonical, carupload.Limits{MaxCARBytes: 512 << 10}, carupload.ErrTooBig},
		{"empty", nil, carupload.Limits{}, carupload.ErrBadCAR},
		{"not a CAR", []byte("{\"cid\":\"bafy\"}"), carupload.Limits{}, carupload.ErrBadCAR},
		{"header only", caruploadtest.CAR(t, []cid.Cid{d.Root}, nil), carupload.Limits{}, carupload.ErrBadCAR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			area, err := carupload.NewDir(dir, tc.limits, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = area.Receive(context.Background(), "u1", d.Root, bytes.NewReader(tc.body))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			left, _ := filepath.Glob(filepath.Join(dir, "*"))
			hidden, _ := filepath.Glob(filepath.Join(dir, ".*"))
			if len(left)+len(hidden) > 0 {
				t.Fatalf("left behind: %v %v", left, hidden)
			}
		})
	}
}

func TestReceiveStopsReadingAtTheLimit(t *testing.T) {
	d := caruploadtest.NewDAG(t, 1<<20, 5)
	r := bytes.NewReader(d.Canonical)
	area, err := carupload.NewDir(t.TempDir(), carupload.Limits{MaxCARBytes: 200 << 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := area.Receive(context.Background(), "u1", d.Root, r); !errors.Is(err, carupload.ErrTooBig) {
		t.Fatalf("err %v, want too big", err)
	}
	// One read buffer past the limit at most.
	if read := int64(len(d.Canonical)) - int64(r.Len()); read > 200<<10+64<<10+70<<10 {
		t.Fatalf("read %d bytes of a body refused at %d", read, 200<<10)
	}
}

func TestDeleteRemovesTheUpload(t *testing.T) {
	d := caruploadtest.NewDAG(t, 256<<10, 6)
	dir := t.TempDir()
	area, _ := carupload.NewDir(dir, carupload.Limits{}, nil)
	res, err := area.Receive(context.Background(), "u1", d.Root, bytes.NewReader(d.Canonical))
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != int64(len(d.Canonical)) || res.Blocks != int64(len(d.Blocks)) {
		t.Fatalf("received %+v, want %d bytes, %d blocks", res, len(d.Canonical), len(d.Blocks))
	}
	if err := area.Delete(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
	if _, err := area.Open(context.Background(), "u1"); !errors.Is(err, carupload.ErrNotFound) {
		t.Fatalf("open after delete: %v", err)
	}
}

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
