package viewrow

import "github.com/pickup-ipfs/pickup/projections/views"

// cidKey is the key a pin's CID is indexed by: the canonical form, or, for
// a CID that does not parse (events are facts, whoever wrote them), the
// string as recorded, so that the pin is still findable by exactly that.
func cidKey(s string) string {
	if k, err := views.CanonicalCID(s); err == nil {
		return k
	}
	return s
}
