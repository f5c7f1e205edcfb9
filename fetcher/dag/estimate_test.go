package dag_test

import (
	"bytes"
	"context"
	"math"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	dagpb "github.com/ipld/go-codec-dagpb"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/multiformats/go-multicodec"

	"github.com/pickup-ipfs/pickup/fetcher/dag"
	"github.com/pickup-ipfs/pickup/internal/ipfstest"
)

// What a DAG's root declares, fetched from a boxo gateway on loopback: for
// a UnixFS DAG, exactly its CAR's block bytes; for one whose chunks
// repeat, more (each repeated link counted, see dag.Estimate); for a root
// of a codec without sizes, nothing. The progress's block bytes end at
// the CAR's block bytes whatever the root.
func TestEstimateOfTheDAGsRoot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, dc := range dagCases() {
		t.Run(dc.name, func(t *testing.T) {
			t.Parallel()
			bs := ipfstest.NewMemBlockstore()
			root, err := dc.make(ctx, bs)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ipfstest.BlockBytes(export(t, bs, root))
			if err != nil {
				t.Fatal(err)
			}
			var s sinks
			var last dag.Progress
			f := newFetcher(t, dag.Limits{}, gatewaySource(t, ipfstest.NewGateway(t, bs, ipfstest.GatewayOptions{}).URL()))
			res, _, err := f.Fetch(ctx, dag.Request{Root: root}, s.open, func(p dag.Progress) { last = p })
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if last.BlockBytes != want || last.Bytes != res.Bytes || last.Expected != res.Expected {
				t.Errorf("last progress %+v, result %+v: want %d block bytes and the result's bytes and estimate", last, res, want)
			}
			switch {
			case root.Type() != cid.DagProtobuf:
				if res.Expected != 0 {
					t.Errorf("a %s root declares %d bytes, want none", multicodec.Code(root.Type()), res.Expected)
				}
			case dc.name == "unixfs of one repeated chunk":
				// 400 links to one 1 KiB chunk, under three nodes; the root
				// counts its distinct links once, the nodes under it count
				// their 174 links to the chunk each.
				if res.Expected <= want || res.Expected > 400<<10+want {
					t.Errorf("estimate %d of a DAG of %d block bytes whose chunk repeats, want more, up to %d", res.Expected, want, 400<<10+want)
				}
			default:
				if res.Expected != want {
					t.Errorf("estimate %d, want the CAR's %d block bytes", res.Expected, want)
				}
			}
		})
	}
}

// The rules of Estimate on dag-pb nodes made by hand: a link without a
// size leaves it unknown, a link twice counts once, and sizes past int64
// saturate.
func TestEstimateRules(t *testing.T) {
	leafA, leafB := merkledag.NewRawNode([]byte("a")), merkledag.NewRawNode([]byte("bb"))
	node := func(links ...*ipld.Link) (cid.Cid, []byte) {
		nd := merkledag.NodeWithData([]byte{0x08, 0x01})
		for i, l := range links {
			if err := nd.AddRawLink(string(rune('a'+i)), l); err != nil {
				t.Fatal(err)
			}
		}
		return nd.Cid(), nd.RawData()
	}
	c, data := node(&ipld.Link{Cid: leafA.Cid(), Size: 10}, &ipld.Link{Cid: leafB.Cid(), Size: 20}, &ipld.Link{Cid: leafA.Cid(), Size: 10})
	if n, ok := dag.Estimate(c, data); !ok || n != int64(len(data))+30 {
		t.Errorf("estimate %d, %v; want its %d bytes and 30 for two distinct links", n, ok, len(data))
	}
	c, data = node()
	if n, ok := dag.Estimate(c, data); !ok || n != int64(len(data)) {
		t.Errorf("estimate of a node without links %d, %v; want its %d bytes", n, ok, len(data))
	}
	c, data = node(&ipld.Link{Cid: leafA.Cid(), Size: math.MaxInt64 - 1}, &ipld.Link{Cid: leafB.Cid(), Size: math.MaxInt64 - 1})
	if n, ok := dag.Estimate(c, data); !ok || n != math.MaxInt64 {
		t.Errorf("estimate of a sum past int64: %d, %v; want MaxInt64", n, ok)
	}
	if n, ok := dag.Estimate(leafA.Cid(), leafA.RawData()); ok || n != 0 {
		t.Errorf("a raw block declares %d, %v; want nothing", n, ok)
	}
	// dag-pb's Tsize is optional: a node that omits it for a link.
	n, err := qp.BuildMap(dagpb.Type.PBNode, -1, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "Links", qp.List(-1, func(la datamodel.ListAssembler) {
			qp.ListEntry(la, qp.Map(-1, func(ma datamodel.MapAssembler) {
				qp.MapEntry(ma, "Hash", qp.Link(cidlink.Link{Cid: leafA.Cid()}))
			}))
		}))
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dagpb.Encode(n, &buf); err != nil {
		t.Fatal(err)
	}
	c, err = merkledag.V1CidPrefix().Sum(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := dag.Estimate(c, buf.Bytes()); ok || n != 0 {
		t.Errorf("a node with a link without Tsize declares %d, %v; want nothing", n, ok)
	}
}
