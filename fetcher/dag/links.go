package dag

import (
	"bytes"
	"fmt"
	"io"
	"math"

	"github.com/ipfs/boxo/verifcid"
	"github.com/ipfs/go-cid"
	dagpb "github.com/ipld/go-codec-dagpb"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	"github.com/ipld/go-ipld-prime/datamodel"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/pin"
)

// The codecs pickup can walk. Anything else could hide links it cannot
// see, so a DAG that uses one cannot be proven complete.
const (
	codecRaw     = uint64(multicodec.Raw)
	codecDagPB   = uint64(multicodec.DagPb)
	codecDagCBOR = uint64(multicodec.DagCbor)
	codecDagJSON = uint64(multicodec.DagJson)
)

// CheckCID reports, as an unsupported_codec *Failure, a CID whose codec
// pickup cannot walk or whose hash boxo's verifcid does not accept (an
// unknown or insecure function, a digest too short, an identity digest too
// long).
func CheckCID(c cid.Cid) error {
	switch c.Type() {
	case codecRaw, codecDagPB, codecDagCBOR, codecDagJSON:
	default:
		return Fail(pin.ReasonUnsupportedCodec, "%s: codec %s cannot be walked", c, multicodec.Code(c.Type()))
	}
	if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, c); err != nil {
		return Fail(pin.ReasonUnsupportedCodec, "%s: %v", c, err)
	}
	return nil
}

// IdentityData returns the bytes an identity CID carries inline, and
// whether c is one. Identity blocks need no source: their data is the
// digest.
func IdentityData(c cid.Cid) ([]byte, bool) {
	if c.Prefix().MhType != multihash.IDENTITY {
		return nil, false
	}
	dec, err := multihash.Decode(c.Hash())
	if err != nil {
		return nil, false
	}
	return dec.Digest, true
}

// Links returns the CIDs a block links to, in the order a depth-first walk
// of the decoded block meets them: list and map entries in their encoded
// order, nested structures before their later siblings. That is the order
// in which go-ipld-prime's traversal, and so `ipfs dag export`, visits
// them. The block must already be verified against c. A block its codec
// cannot decode is reported as unsupported_codec: its bytes are right, so
// no source can do better.
func Links(c cid.Cid, data []byte) ([]cid.Cid, error) {
	var (
		links []cid.Cid
		err   error
	)
	switch c.Type() {
	case codecRaw:
		return nil, nil
	case codecDagPB:
		links, err = dagPBLinks(data)
	case codecDagCBOR:
		links, err = decodedLinks(data, dagcbor.Decode)
	case codecDagJSON:
		links, err = decodedLinks(data, dagjson.Decode)
	default:
		return nil, CheckCID(c)
	}
	if err != nil {
		return nil, FailDetail(pin.ReasonUnsupportedCodec, err.Error(), "block %s does not decode as %s", c, multicodec.Code(c.Type()))
	}
	return links, nil
}

func dagPBLinks(data []byte) ([]cid.Cid, error) {
	nb := dagpb.Type.PBNode.NewBuilder()
	// DecodeBytes keeps sub-slices of data instead of copying: leaves are
	// most of a UnixFS DAG's bytes, and their Data is never looked at.
	if err := dagpb.DecodeBytes(nb, data); err != nil {
		return nil, err
	}
	node, ok := nb.Build().(dagpb.PBNode)
	if !ok {
		return nil, fmt.Errorf("dag-pb decoder built %T", nb.Build())
	}
	pbLinks := node.FieldLinks()
	links := make([]cid.Cid, 0, pbLinks.Length())
	for it := pbLinks.Iterator(); !it.Done(); {
		_, l := it.Next()
		lnk, ok := l.FieldHash().Link().(cidlink.Link)
		if !ok {
			return nil, fmt.Errorf("dag-pb link of type %T", l.FieldHash().Link())
		}
		links = append(links, lnk.Cid)
	}
	return links, nil
}

// Estimate returns the size of the DAG under a verified block as the
// block declares it, and whether it declares one: a dag-pb block's own
// bytes plus the cumulative sizes (Tsize) of its links, each distinct link
// counted once. For a UnixFS DAG that is the sum of its blocks' bytes,
// without a CAR's framing (about 40 bytes a block more), exactly, unless
// a sub-DAG is shared below the block: a block linked from two places
// deeper down (a file of repeated chunks) is counted each time, so the
// estimate is then above what is fetched, never below. A file of one
// repeated 256 KiB chunk (a sparse disk image) shares whole subtrees
// below its root, which counts each distinct one once: up to 1.29 TiB of
// file (174^3 chunks) it declares under 15 GiB, two subtrees of 7.4 GiB
// at most, though its CAR is a few hundred KiB; a longer one declares
// more than MAX_CAR_BYTES and is refused as too_big.
//
// A root may lie: nothing of what it declares is checked, and the CAR's
// byte count bounds what is fetched all the same. Raw, dag-cbor and
// dag-json blocks declare no size, nor does a dag-pb block one of whose
// links has no Tsize. A sum past the int64 range is math.MaxInt64.
func Estimate(c cid.Cid, data []byte) (int64, bool) {
	if c.Type() != codecDagPB {
		return 0, false
	}
	nb := dagpb.Type.PBNode.NewBuilder()
	if err := dagpb.DecodeBytes(nb, data); err != nil {
		return 0, false
	}
	node, ok := nb.Build().(dagpb.PBNode)
	if !ok {
		return 0, false
	}
	total := int64(len(data))
	seen := map[cid.Cid]struct{}{}
	for it := node.FieldLinks().Iterator(); !it.Done(); {
		_, l := it.Next()
		tsize := l.FieldTsize()
		if !tsize.Exists() {
			return 0, false
		}
		if lnk, ok := l.FieldHash().Link().(cidlink.Link); ok {
			if _, dup := seen[lnk.Cid]; dup {
				continue
			}
			seen[lnk.Cid] = struct{}{}
		}
		n := tsize.Must().Int()
		if n < 0 || n > math.MaxInt64-total {
			// dag-pb sizes are unsigned: one past int64 is past any limit.
			return math.MaxInt64, true
		}
		total += n
	}
	return total, true
}

func decodedLinks(data []byte, decode func(datamodel.NodeAssembler, io.Reader) error) ([]cid.Cid, error) {
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := decode(nb, bytes.NewReader(data)); err != nil {
		return nil, err
	}
	var links []cid.Cid
	if err := collectLinks(nb.Build(), &links); err != nil {
		return nil, err
	}
	return links, nil
}

// collectLinks appends n's links in pre-order, iterating maps and lists in
// their decoded (encoded) order, as the traversal's segment iterator does.
func collectLinks(n datamodel.Node, links *[]cid.Cid) error {
	switch n.Kind() {
	case datamodel.Kind_Link:
		l, err := n.AsLink()
		if err != nil {
			return err
		}
		cl, ok := l.(cidlink.Link)
		if !ok {
			return fmt.Errorf("link of type %T", l)
		}
		*links = append(*links, cl.Cid)
	case datamodel.Kind_Map:
		for it := n.MapIterator(); !it.Done(); {
			_, v, err := it.Next()
			if err != nil {
				return err
			}
			if err := collectLinks(v, links); err != nil {
				return err
			}
		}
	case datamodel.Kind_List:
		for it := n.ListIterator(); !it.Done(); {
			_, v, err := it.Next()
			if err != nil {
				return err
			}
			if err := collectLinks(v, links); err != nil {
				return err
			}
		}
	}
	return nil
}
