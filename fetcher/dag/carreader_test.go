package dag_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
)

func section(parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	return append(varint.ToUvarint(uint64(len(body))), body...)
}

func rawCID(t testing.TB, data []byte) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: uint64(multicodec.Raw), MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCARReaderFraming proves that the reader turns every way a CAR
// stream can be broken into the reason the worker records, without
// reading more than a block's limit into memory.
func TestCARReaderFraming(t *testing.T) {
	t.Parallel()
	data := []byte("hello")
	c := rawCID(t, data)
	header := headerFor(t, c)
	tests := []struct {
		name   string
		stream []byte
		blocks int
		want   pin.Reason // "" for a clean end
	}{
		{"header and one block", cat(header, section(c.Bytes(), data)), 1, ""},
		{"empty response", nil, 0, pin.ReasonRootNotFound},
		{"header only", header, 0, ""},
		{"header not dag-cbor", section([]byte("not cbor at all")), 0, pin.ReasonSourcesFailed},
		{"header too long", append(varint.ToUvarint(1<<20), make([]byte, 10)...), 0, pin.ReasonSourcesFailed},
		{"CARv2", carV2Pragma(), 0, pin.ReasonSourcesFailed},
		{"header cut short", header[:len(header)-3], 0, pin.ReasonMissingBlock},
		{"empty section", cat(header, []byte{0}), 0, pin.ReasonSourcesFailed},
		{"section not a CID", cat(header, section([]byte{0x0b, 0x55, 0x12, 0x20}, data)), 0, pin.ReasonSourcesFailed},
		{"section over the block limit", cat(header, varint.ToUvarint(1<<30)), 0, pin.ReasonBlockTooBig},
		{"block over the block limit", cat(header, section(c.Bytes(), make([]byte, 4097))), 0, pin.ReasonBlockTooBig},
		{"cut inside a block", cat(header, section(c.Bytes(), data)[:10]), 0, pin.ReasonMissingBlock},
		{"cut inside a length", cat(header, section(c.Bytes(), data), []byte{0x80}), 1, pin.ReasonMissingBlock},
		{"gateway marks the stream cut short", cat(header, section(c.Bytes(), data), []byte("\n\n[Gateway Error: CAR stream truncated, response is incomplete]")), 1, pin.ReasonMissingBlock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := dag.NewCARReader(bytes.NewReader(tt.stream), 4096)
			var n int
			var err error
			for {
				var blk dag.Block
				blk, err = r.Next()
				if err != nil {
					break
				}
				if blk.CID != c || !bytes.Equal(blk.Data, data) {
					t.Fatalf("block %d is %s %q", n, blk.CID, blk.Data)
				}
				n++
			}
			if n != tt.blocks {
				t.Errorf("read %d blocks, want %d", n, tt.blocks)
			}
			switch {
			case tt.want == "" && err != io.EOF:
				t.Errorf("ended with %v, want io.EOF", err)
			case tt.want != "" && dag.ReasonOf(err) != tt.want:
				t.Errorf("ended with %v (%s), want %s", err, dag.ReasonOf(err), tt.want)
			}
		})
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// headerFor is the CARv1 header go-car writes for root.
func headerFor(t testing.TB, root cid.Cid) []byte {
	t.Helper()
	bs := ipfstest.NewMemBlockstore()
	data := []byte("header probe")
	c, err := ipfstest.PutRaw(context.Background(), bs, uint64(multicodec.Raw), multihash.SHA2_256, data)
	if err != nil {
		t.Fatal(err)
	}
	car := export(t, bs, c)
	// The header is the first section; swap the root's bytes for ours
	// (both CIDv1 raw sha2-256, so the same length).
	n, l, err := varint.FromUvarint(car)
	if err != nil {
		t.Fatal(err)
	}
	header := append([]byte(nil), car[:l+int(n)]...)
	return bytes.Replace(header, c.Bytes(), root.Bytes(), 1)
}

// carV2Pragma is how every CARv2 starts: a header claiming version 2.
func carV2Pragma() []byte {
	return []byte{0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02}
}

// FuzzCARReader feeds the reader arbitrary streams: it must end every one
// with io.EOF or an error, never panic, and never return a block over the
// limit.
func FuzzCARReader(f *testing.F) {
	bs, root := hostileDAG(f)
	ref := export(f, bs, root)
	f.Add(ref)
	f.Add(ref[:len(ref)/2])
	f.Add(headerFor(f, root))
	f.Add(carV2Pragma())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, stream []byte) {
		const limit = 2048
		r := dag.NewCARReader(bytes.NewReader(stream), limit)
		for i := 0; ; i++ {
			blk, err := r.Next()
			if err != nil {
				if err != io.EOF {
					var fl *dag.Failure
					if !errors.As(err, &fl) {
						t.Fatalf("error %v is not a *Failure", err)
					}
				}
				return
			}
			if len(blk.Data) > limit {
				t.Fatalf("block of %d bytes over the %d limit", len(blk.Data), limit)
			}
			if i > len(stream) {
				t.Fatal("more blocks than bytes")
			}
		}
	})
}
