package gateway

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/boxo/verifcid"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"
	mh "github.com/multiformats/go-multihash"
)

// maxCIDLength bounds the text of a CID before it is decoded: the longest
// acceptable CID (a 128-byte digest in base2) is far shorter.
const maxCIDLength = 2048

// parseCID decodes a CID as a client sent it (v0, or v1 in any multibase) and
// refuses what pickup cannot fetch and verify: hashes outside boxo's
// verifcid allow-list (too weak, too short or too long digests) and codecs
// the fetchers cannot walk, whose DAGs could never be checked complete. It
// refuses whitespace and control characters anywhere, which no multibase
// alphabet holds but Go's base32 and base64 decoders skip (CR and LF): a
// CID is kept and echoed as the client wrote it.
func parseCID(s string) (cid.Cid, error) {
	switch {
	case s == "":
		return cid.Undef, errors.New("empty CID")
	case len(s) > maxCIDLength:
		return cid.Undef, fmt.Errorf("CID of %d characters, at most %d", len(s), maxCIDLength)
	case strings.ContainsFunc(s, notInCID):
		return cid.Undef, fmt.Errorf("%.80q is not a CID: it holds whitespace, a control character or bytes that are not UTF-8", s)
	}
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%q is not a CID: %w", s, err)
	}
	p := c.Prefix()
	if !walkable(p.Codec) {
		return cid.Undef, fmt.Errorf("CID %s has codec %s, which pickup cannot walk and verify (want dag-pb, raw, dag-cbor or dag-json)", s, codecName(p.Codec))
	}
	if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, c); err != nil {
		return cid.Undef, fmt.Errorf("CID %s has hash %s: %w", s, hashName(p.MhType), err)
	}
	return c, nil
}

// notInCID reports the runes no CID's text holds: whitespace, control and
// format characters (bidirectional overrides, zero-width spaces), and the
// replacement of bytes that are not UTF-8. base256emoji's alphabet, the
// one multibase beyond ASCII, has none of them.
func notInCID(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

// walkable reports whether the fetchers can decode blocks of the codec and
// follow their links, which verifying a whole DAG needs.
func walkable(codec uint64) bool {
	switch multicodec.Code(codec) {
	case multicodec.DagPb, multicodec.Raw, multicodec.DagCbor, multicodec.DagJson:
		return true
	}
	return false
}

func codecName(code uint64) string {
	if name := multicodec.Code(code).String(); !strings.HasPrefix(name, "Code(") {
		return name
	}
	return fmt.Sprintf("0x%x", code)
}

func hashName(code uint64) string {
	if name, ok := mh.Codes[code]; ok {
		return name
	}
	return fmt.Sprintf("0x%x", code)
}

// canonicalCID is the form views index CIDs by: CIDv1 in base32, so that a
// v0 and a v1 of the same content, or two multibases, compare equal.
func canonicalCID(c cid.Cid) string {
	return cid.NewCidV1(c.Type(), c.Hash()).String()
}
