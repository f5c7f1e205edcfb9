package locate

import (
	"bytes"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"
)

// ErrBadBlock: the bytes read at a Location are not a section holding the
// block asked for (a corrupted CAR, or an index that lies).
var ErrBadBlock = fmt.Errorf("stored block does not match its CID")

// Block parses section, the bytes a range read of a Location returned
// (Length bytes from Offset), as a CARv1 section, and checks that its CID
// names multihash mh and that its data hashes to it. It returns the CID
// and the data (a sub-slice of section). A section shorter than the range
// (the index left the next one out) is fine: the varint says where it
// ends. Anything else wraps ErrBadBlock.
func Block(section []byte, mh multihash.Multihash) (cid.Cid, []byte, error) {
	n, vn, err := varint.FromUvarint(section)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("%w: section length: %v", ErrBadBlock, err)
	}
	if n > uint64(len(section)-vn) {
		return cid.Undef, nil, fmt.Errorf("%w: a section of %d bytes in a range of %d", ErrBadBlock, n, len(section)-vn)
	}
	body := section[vn : vn+int(n)]
	cn, c, err := cid.CidFromBytes(body)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("%w: CID: %v", ErrBadBlock, err)
	}
	if !bytes.Equal(c.Hash(), mh) {
		return cid.Undef, nil, fmt.Errorf("%w: the section holds %s, not a block of %s", ErrBadBlock, c, mh.B58String())
	}
	data := body[cn:]
	got, err := c.Prefix().Sum(data)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("%w: hash %s: %v", ErrBadBlock, c, err)
	}
	if !got.Equals(c) {
		return cid.Undef, nil, fmt.Errorf("%w: the data of %s hash to %s", ErrBadBlock, c, got)
	}
	return c, data, nil
}
