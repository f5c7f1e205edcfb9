package gateway

import (
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"
	mh "github.com/multiformats/go-multihash"
)

// testCID returns a CID of data with the given codec and hash.
func testCID(t testing.TB, codec uint64, hash uint64, data string) cid.Cid {
	t.Helper()
	h, err := mh.Sum([]byte(data), hash, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(codec, h)
}

func encode(t testing.TB, c cid.Cid, base multibase.Encoding) string {
	t.Helper()
	s, err := c.StringOfBase(base)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseCID(t *testing.T) {
	raw := testCID(t, cid.Raw, mh.SHA2_256, "hello")
	pb := testCID(t, cid.DagProtobuf, mh.SHA2_256, "hello")
	v0 := cid.NewCidV0(pb.Hash()).String()
	weakDigest, _ := mh.Encode(make([]byte, 16), mh.SHA2_256)
	md5, _ := mh.Encode(make([]byte, 16), mh.MD5)
	blake3 := testCID(t, cid.DagCBOR, mh.BLAKE3, "x")
	identity, _ := mh.Sum([]byte("tiny"), mh.IDENTITY, -1)
	for _, tc := range []struct {
		name, in  string
		canonical string // "" when the CID must be refused
		problem   string // part of the refusal's message
	}{
		{"v0", v0, pb.String(), ""},
		{"v1 base32", pb.String(), pb.String(), ""},
		{"v1 base58btc", encode(t, raw, multibase.Base58BTC), raw.String(), ""},
		{"v1 base36", encode(t, raw, multibase.Base36), raw.String(), ""},
		{"v1 base16", encode(t, raw, multibase.Base16), raw.String(), ""},
		{"v1 base64url", encode(t, raw, multibase.Base64url), raw.String(), ""},
		{"blake3 dag-cbor", blake3.String(), blake3.String(), ""},
		{"identity hash", cid.NewCidV1(cid.Raw, identity).String(), cid.NewCidV1(cid.Raw, identity).String(), ""},
		{"dag-json", testCID(t, cid.DagJSON, mh.SHA2_256, "j").String(), testCID(t, cid.DagJSON, mh.SHA2_256, "j").String(), ""},
		{"empty", "", "", "empty CID"},
		{"garbage", "not-a-cid", "", "is not a CID"},
		{"space", " " + pb.String(), "", "is not a CID"},
		{"trailing bytes", pb.String() + "aa", "", "is not a CID"},
		{"too long", "b" + strings.Repeat("a", maxCIDLength), "", "at most"},
		{"md5", cid.NewCidV1(cid.Raw, md5).String(), "", "potentially insecure"},
		{"short digest", cid.NewCidV1(cid.Raw, weakDigest).String(), "", "digest too small"},
		{"libp2p-key codec", testCID(t, cid.Libp2pKey, mh.SHA2_256, "k").String(), "", "codec libp2p-key"},
		{"git-raw codec", testCID(t, cid.GitRaw, mh.SHA1, "g").String(), "", "codec git-raw"},
		{"unknown codec", testCID(t, 0x300001, mh.SHA2_256, "u").String(), "", "codec 0x300001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseCID(tc.in)
			if tc.canonical == "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("parseCID(%q) = %v, %v; want an error mentioning %q", tc.in, c, err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseCID(%q): %v", tc.in, err)
			}
			if got := canonicalCID(c); got != tc.canonical {
				t.Errorf("canonical form of %q = %s, want %s", tc.in, got, tc.canonical)
			}
		})
	}
}
