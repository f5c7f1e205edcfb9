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

// Section reads a CARv1 section at the start of section and checks that
// its data hashes to its own CID. It returns the CID (defined once it
// parses, even when the data does not hash to it) and the data (a
// sub-slice of section). Bytes after the section are ignored: the varint
// says where it ends. Anything else wraps ErrBadBlock.
func Section(section []byte) (cid.Cid, []byte, error) {
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
	data := body[cn:]
	got, err := c.Prefix().Sum(data)
	if err != nil {
		return c, nil, fmt.Errorf("%w: hash %s: %v", ErrBadBlock, c, err)
	}
	if !got.Equals(c) {
		return c, nil, fmt.Errorf("%w: the data of %s hash to %s", ErrBadBlock, c, got)
	}
	return c, data, nil
}

// Block reads the section of a block found in the lookup (Length bytes
// from Offset) as Section does, and checks besides that its CID names
// multihash mh. A section shorter than the range (the index left the next
// one out) is fine. Anything else wraps ErrBadBlock.
func Block(section []byte, mh multihash.Multihash) (cid.Cid, []byte, error) {
	c, data, err := Section(section)
	if c.Defined() && !bytes.Equal(c.Hash(), mh) {
		return cid.Undef, nil, fmt.Errorf("%w: the section holds %s, not a block of %s", ErrBadBlock, c, mh.B58String())
	}
	if err != nil {
		return cid.Undef, nil, err
	}
	return c, data, nil
}
