package projections

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// CanonicalCID returns the one string the views index a CID by: CIDv1 in
// base32, with the same codec and multihash. A CIDv0 becomes the dag-pb
// CIDv1 of the same hash, so that a pin requested as Qm... is found by a
// filter given as bafy... and the other way round.
func CanonicalCID(s string) (string, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return "", fmt.Errorf("canonical cid %q: %w", s, err)
	}
	if !c.Defined() {
		return "", fmt.Errorf("canonical cid %q: undefined cid", s)
	}
	return cid.NewCidV1(c.Type(), c.Hash()).String(), nil
}

// cidKey is the key a pin's CID is indexed by: the canonical form, or, for
// a CID that does not parse (events are facts, whoever wrote them), the
// string as recorded, so that the pin is still findable by exactly that.
func cidKey(s string) string {
	if k, err := CanonicalCID(s); err == nil {
		return k
	}
	return s
}
