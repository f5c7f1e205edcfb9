package dag_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
	"github.com/pickup-ipfs/pickup/pin"
)

// buildCAR writes a CARv1 rooted at root with the given blocks, in order,
// whatever they are: the bytes a source could send.
func buildCAR(t testing.TB, root cid.Cid, blocks ...dag.Block) []byte {
	t.Helper()
	car := headerFor(t, root)
	if len(root.Bytes()) != len(rawCID(t, nil).Bytes()) {
		// headerFor swaps CIDs of equal length only; make the header anew.
		car = headerOf(t, root)
	}
	for _, b := range blocks {
		car = append(car, section(b.CID.Bytes(), b.Data)...)
	}
	return car
}

// headerOf encodes a CARv1 header for any root.
func headerOf(t testing.TB, root cid.Cid) []byte {
	t.Helper()
	n, err := qp.BuildMap(basicnode.Prototype.Any, -1, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "roots", qp.List(-1, func(la datamodel.ListAssembler) {
			qp.ListEntry(la, qp.Link(cidlink.Link{Cid: root}))
		}))
		qp.MapEntry(ma, "version", qp.Int(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	return section(encodeCBOR(t, n))
}

func mustCID(t testing.TB, codec multicodec.Code, mhType uint64, data []byte) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: uint64(codec), MhType: mhType, MhLength: -1}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUnsupportedDAGs proves that a DAG pickup cannot prove complete (a
// codec it cannot walk, a hash verifcid refuses, a block its codec cannot
// decode) fails permanently as unsupported_codec, and that no other source
// is asked: the DAG is the same everywhere.
func TestUnsupportedDAGs(t *testing.T) {
	t.Parallel()
	md5Data := []byte("hashed with md5")
	sum := md5.Sum(md5Data)
	md5Hash, err := multihash.Encode(sum[:], multihash.MD5)
	if err != nil {
		t.Fatal(err)
	}
	md5CID := cid.NewCidV1(uint64(multicodec.Raw), md5Hash)
	linking := func(l cid.Cid) dag.Block {
		n, err := qp.BuildMap(basicnode.Prototype.Any, -1, func(ma datamodel.MapAssembler) {
			qp.MapEntry(ma, "l", qp.Link(cidlink.Link{Cid: l}))
		})
		if err != nil {
			t.Fatal(err)
		}
		data := encodeCBOR(t, n)
		return dag.Block{CID: mustCID(t, multicodec.DagCbor, multihash.SHA2_256, data), Data: data}
	}
	gitRaw := dag.Block{CID: mustCID(t, multicodec.GitRaw, multihash.SHA1, []byte("blob 0\x00")), Data: []byte("blob 0\x00")}
	notCBOR := dag.Block{CID: mustCID(t, multicodec.DagCbor, multihash.SHA2_256, []byte{0xff, 0x00}), Data: []byte{0xff, 0x00}}
	notPB := dag.Block{CID: mustCID(t, multicodec.DagPb, multihash.SHA2_256, []byte{0x0a, 0x05}), Data: []byte{0x0a, 0x05}}
	longIdentity := mustCID(t, multicodec.Raw, multihash.IDENTITY, bytes.Repeat([]byte("x"), 200))
	shortHash, err := cid.Prefix{Version: 1, Codec: uint64(multicodec.Raw), MhType: multihash.SHA2_256, MhLength: 8}.Sum([]byte("short"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		root   cid.Cid
		blocks []dag.Block
	}{
		{"root of a codec pickup cannot walk", gitRaw.CID, []dag.Block{gitRaw}},
		{"root hashed with md5", md5CID, []dag.Block{{CID: md5CID, Data: md5Data}}},
		{"root with a truncated digest", shortHash, nil},
		{"link to a block hashed with md5", linking(md5CID).CID, []dag.Block{linking(md5CID), {CID: md5CID, Data: md5Data}}},
		{"link to a codec pickup cannot walk", linking(gitRaw.CID).CID, []dag.Block{linking(gitRaw.CID), gitRaw}},
		{"identity link over 128 bytes", linking(longIdentity).CID, []dag.Block{linking(longIdentity)}},
		{"dag-cbor block that is not CBOR", notCBOR.CID, []dag.Block{notCBOR}},
		{"dag-pb block that is not dag-pb", notPB.CID, []dag.Block{notPB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			second := ipfstest.NewGateway(t, ipfstest.NewMemBlockstore(), ipfstest.GatewayOptions{})
			var s sinks
			f := newFetcher(t, dag.Limits{}, carSource{name: "memory", car: buildCAR(t, tt.root, tt.blocks...)}, gatewaySource(t, second.URL()))
			_, _, err := f.Fetch(context.Background(), dag.Request{Root: tt.root}, s.open, nil)
			if got := reasonOf(t, err); got != pin.ReasonUnsupportedCodec {
				t.Fatalf("reason %s, want unsupported_codec (%v)", got, err)
			}
			if !pin.ReasonUnsupportedCodec.Permanent() {
				t.Error("unsupported_codec is not permanent")
			}
			if second.Requests() != 0 {
				t.Errorf("the second source was asked %d times", second.Requests())
			}
		})
	}
}

// FuzzFetch feeds the whole pipeline arbitrary CAR bytes for a DAG with
// every kind of link. Whatever the bytes, Fetch either fails with a
// *Failure and keeps no sink, or returns exactly the CAR `ipfs dag export`
// writes: nothing a source sends can make pickup store anything else.
func FuzzFetch(f *testing.F) {
	ctx := context.Background()
	bs := ipfstest.NewMemBlockstore()
	root, err := ipfstest.Mixed(ctx, bs, 11)
	if err != nil {
		f.Fatal(err)
	}
	want := export(f, bs, root)
	f.Add(want)
	f.Add(want[:len(want)-7])
	f.Add(append(append([]byte(nil), want...), want[len(want)-40:]...))
	flipped := append([]byte(nil), want...)
	flipped[len(flipped)/2] ^= 1
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, stream []byte) {
		var s sinks
		fr := newFetcher(t, dag.Limits{}, carSource{name: "fuzz", car: stream})
		res, sink, err := fr.Fetch(ctx, dag.Request{Root: root}, s.open, nil)
		if err != nil {
			reasonOf(t, err)
			for _, sk := range s.opened {
				if !sk.aborted {
					t.Fatal("a failed fetch left its sink")
				}
			}
			return
		}
		got := sink.(*memorySink).buf.Bytes()
		if !bytes.Equal(got, want) {
			t.Fatalf("fetch accepted a CAR that is not the DAG's: %d bytes, want %d", len(got), len(want))
		}
		if res.CarCID != carCID(t, want) {
			t.Fatalf("CAR CID %s, want %s", res.CarCID, carCID(t, want))
		}
	})
}

func encodeCBOR(t testing.TB, n datamodel.Node) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := dagcbor.Encode(n, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
