package locate_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/index"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"

	"github.com/pickup-ipfs/pickup/serve/locate"
	"github.com/pickup-ipfs/pickup/serve/locate/locatetest"
)

// Entries gives go-car's own entries, each with the exact length of its
// section, in the CAR's order.
func TestEntriesOfARealCar(t *testing.T) {
	car := locatetest.NewCar(t, 1, 300)
	es := car.Entries(t)
	idx, err := index.ReadFrom(bytes.NewReader(car.Index))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	if err := idx.(index.IterableIndex).ForEach(func(mh multihash.Multihash, off uint64) error {
		want[string(mh)] = off
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(es) != len(want) || len(es) != len(car.Blocks) {
		t.Fatalf("%d entries, go-car lists %d, the CAR has %d blocks", len(es), len(want), len(car.Blocks))
	}
	for i, e := range es {
		if uint64(e.Offset) != want[string(e.Multihash)] {
			t.Fatalf("entry %d at %d, go-car says %d", i, e.Offset, want[string(e.Multihash)])
		}
		if i > 0 && es[i-1].Offset+es[i-1].Length != e.Offset {
			t.Fatalf("entry %d at %d does not follow the one before", i, e.Offset)
		}
		section := car.Bytes[e.Offset : e.Offset+e.Length]
		n, vn, err := varint.FromUvarint(section)
		if err != nil || int64(vn)+int64(n) != e.Length {
			t.Fatalf("entry %d: length %d, the section says %d+%d (%v)", i, e.Length, vn, n, err)
		}
		if !bytes.Equal(e.Multihash, car.Blocks[i].Cid().Hash()) {
			t.Fatalf("entry %d is not block %d", i, i)
		}
	}
	if last := es[len(es)-1]; last.Offset+last.Length != car.CAR.Bytes {
		t.Fatal("the last section does not end the CAR")
	}
}

// go-car leaves identity CIDs out of its indexes: the section before one
// then holds it too, and Block still reads the block asked for.
func TestEntriesAcrossAnIdentityBlock(t *testing.T) {
	a := locatetest.NewCar(t, 2, 3)
	idh, _ := multihash.Sum([]byte("inline"), multihash.IDENTITY, -1)
	inline, err := blocks.NewBlockWithCid([]byte("inline"), cid.NewCidV1(cid.Raw, idh))
	if err != nil {
		t.Fatal(err)
	}
	car := locatetest.WriteCar(t, []blocks.Block{a.Blocks[0], a.Blocks[1], inline, a.Blocks[2]})
	es := car.Entries(t)
	if len(es) != 3 {
		t.Fatalf("%d entries, want 3 (the identity block left out)", len(es))
	}
	for i, b := range []blocks.Block{a.Blocks[0], a.Blocks[1], a.Blocks[2]} {
		c, data, err := locate.Block(car.Bytes[es[i].Offset:es[i].Offset+es[i].Length], b.Cid().Hash())
		if err != nil || !c.Equals(b.Cid()) || !bytes.Equal(data, b.RawData()) {
			t.Fatalf("block %d: %s, %v", i, c, err)
		}
	}
}

// record is one record of a hand-written index.
type record struct {
	digest []byte
	off    uint64
}

// encode writes a MultihashIndexSorted by hand: one hash function, one
// width.
func encode(codec multicodec.Code, code uint64, width uint32, recs []record) []byte {
	b := varint.ToUvarint(uint64(codec))
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint64(b, code)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, width)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(recs))*uint64(width))
	for _, r := range recs {
		b = append(b, r.digest...)
		b = binary.LittleEndian.AppendUint64(b, r.off)
	}
	return b
}

func digest(i byte) []byte { return bytes.Repeat([]byte{i}, 32) }

func TestEntriesRefuses(t *testing.T) {
	car := locatetest.NewCar(t, 3, 10)
	sorted, err := carv2.GenerateIndex(bytes.NewReader(car.Bytes), carv2.UseIndexCodec(multicodec.CarIndexSorted))
	if err != nil {
		t.Fatal(err)
	}
	var other bytes.Buffer
	if _, err := index.WriteTo(sorted, &other); err != nil {
		t.Fatal(err)
	}
	ok := []record{{digest(1), 100}, {digest(2), 200}}
	for _, c := range []struct {
		name  string
		index []byte
		bytes int64
	}{
		{"another codec", other.Bytes(), car.CAR.Bytes},
		{"empty", nil, 1000},
		{"bytes after the end", append(encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 40, ok), 0), 1000},
		{"a CAR of no bytes", encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 40, ok), 0},
		{"an offset past the CAR", encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 40, ok), 200},
		{"an offset at 0", encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 40, []record{{digest(1), 0}}), 1000},
		{"two blocks at one offset", encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 40, []record{{digest(1), 100}, {digest(2), 100}}), 1000},
		{"digests out of order", encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 40, []record{{digest(2), 100}, {digest(1), 200}}), 1000},
		{"a section too short for its CID", encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 40, []record{{digest(1), 100}, {digest(2), 120}}), 1000},
		{"width of no digest", encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 8, nil), 1000},
		{"more records than the CAR holds", encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 40, ok), 60},
		{"a record count that lies", func() []byte {
			b := encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 40, ok)
			binary.LittleEndian.PutUint64(b[len(b)-2*40-8:], 1<<62)
			return b
		}(), 1 << 62},
		{"too many hash functions", func() []byte {
			b := encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 40, ok)
			binary.LittleEndian.PutUint32(b[2:], 1<<30)
			return b
		}(), 1000},
	} {
		es, err := locate.Entries(bytes.NewReader(c.index), c.bytes)
		if !errors.Is(err, locate.ErrBadIndex) {
			t.Errorf("%s: %d entries, %v; want ErrBadIndex", c.name, len(es), err)
		}
	}
	// Every truncation of a real index.
	for n := range len(car.Index) {
		if _, err := locate.Entries(bytes.NewReader(car.Index[:n]), car.CAR.Bytes); !errors.Is(err, locate.ErrBadIndex) {
			t.Fatalf("index cut at %d of %d bytes: %v, want ErrBadIndex", n, len(car.Index), err)
		}
	}
}

// A read error that is not the input's end is the reader's, not a bad
// index: the loader tries it again.
func TestEntriesReadError(t *testing.T) {
	car := locatetest.NewCar(t, 4, 5)
	boom := errors.New("connection reset")
	_, err := locate.Entries(&failingReader{b: car.Index[:20], err: boom}, car.CAR.Bytes)
	if !errors.Is(err, boom) || errors.Is(err, locate.ErrBadIndex) {
		t.Fatalf("Entries on a failing reader: %v", err)
	}
}

type failingReader struct {
	b   []byte
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, r.err
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestBlockRefuses(t *testing.T) {
	car := locatetest.NewCar(t, 5, 3)
	e := car.Entries(t)[1]
	mh := car.Blocks[1].Cid().Hash()
	section := car.Bytes[e.Offset : e.Offset+e.Length]
	corrupt := bytes.Clone(section)
	corrupt[len(corrupt)-1] ^= 1
	for _, c := range []struct {
		name    string
		section []byte
		mh      multihash.Multihash
	}{
		{"a corrupted byte", corrupt, mh},
		{"another block", section, car.Blocks[0].Cid().Hash()},
		{"cut short", section[:len(section)-1], mh},
		{"empty", nil, mh},
		{"no CID", []byte{1, 0}, mh},
	} {
		if _, _, err := locate.Block(c.section, c.mh); !errors.Is(err, locate.ErrBadBlock) {
			t.Errorf("%s: %v, want ErrBadBlock", c.name, err)
		}
	}
}

// FuzzEntries: any input is refused or gives entries that tile the CAR
// after its first offset.
func FuzzEntries(f *testing.F) {
	car := locatetest.NewCar(f, 6, 4)
	f.Add(car.Index, car.CAR.Bytes)
	f.Add(encode(multicodec.CarMultihashIndexSorted, multihash.SHA2_256, 40, []record{{digest(1), 100}, {digest(2), 200}}), int64(1000))
	f.Add([]byte{0x81, 0x08}, int64(10))
	f.Fuzz(func(t *testing.T, b []byte, carBytes int64) {
		es, err := locate.Entries(bytes.NewReader(b), carBytes)
		if err != nil {
			if !errors.Is(err, locate.ErrBadIndex) {
				t.Fatalf("an error that is not ErrBadIndex: %v", err)
			}
			return
		}
		for i, e := range es {
			if e.Offset <= 0 || e.Length < int64(1+len(e.Multihash)) {
				t.Fatalf("entry %d: [%d, +%d)", i, e.Offset, e.Length)
			}
			end := carBytes
			if i+1 < len(es) {
				end = es[i+1].Offset
			}
			if e.Offset+e.Length != end {
				t.Fatalf("entry %d ends at %d, the next begins at %d", i, e.Offset+e.Length, end)
			}
			if _, err := multihash.Decode(e.Multihash); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
		}
	})
}

// FuzzBlock: any bytes are refused or are a section of the block asked
// for.
func FuzzBlock(f *testing.F) {
	car := locatetest.NewCar(f, 7, 2)
	e := car.Entries(f)[1]
	mh := car.Blocks[1].Cid().Hash()
	f.Add(car.Bytes[e.Offset : e.Offset+e.Length])
	f.Add([]byte{0x05, 0x01, 0x55, 0x12, 0x20})
	f.Fuzz(func(t *testing.T, section []byte) {
		c, data, err := locate.Block(section, mh)
		if err != nil {
			if !errors.Is(err, locate.ErrBadBlock) {
				t.Fatalf("an error that is not ErrBadBlock: %v", err)
			}
			return
		}
		if !bytes.Equal(c.Hash(), mh) || !bytes.Equal(data, car.Blocks[1].RawData()) {
			t.Fatalf("Block took %s with %d bytes", c, len(data))
		}
	})
}
