// Package locatetest is the conformance suite every locate.Store passes
// (Run), its benchmarks (Bench), and what they are built from: real CARs
// written with go-car, their CARv2 indexes (MultihashIndexSorted) built
// with go-car/v2, and synthetic lookups of any size.
package locatetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/index"
	"github.com/ipld/go-car/v2/storage"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/serve/locate"
)

// Car is a CARv1 written for a test, with its index object.
type Car struct {
	CAR    locate.CAR
	Bytes  []byte
	Index  []byte
	Blocks []blocks.Block
}

// NewCar writes a CARv1 of n raw blocks (sizes from 8 bytes to 4 KiB, drawn
// from seed), the first its root, plus the blocks of shared (to make CARs
// that share blocks), with go-car/v2, and builds its MultihashIndexSorted
// with go-car/v2's GenerateIndex, written with index.WriteTo: the object
// the carpark keeps beside a CAR.
func NewCar(t testing.TB, seed uint64, n int, shared ...blocks.Block) Car {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var bs []blocks.Block
	for i := range n {
		data := make([]byte, 8+rng.IntN(4089))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		// Unique within and across seeds: no block is two CARs' unless
		// shared on purpose.
		binary.LittleEndian.PutUint64(data, seed<<20|uint64(i))
		h, err := multihash.Sum(data, multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := blocks.NewBlockWithCid(data, cid.NewCidV1(cid.Raw, h))
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	bs = append(bs, shared...)
	return WriteCar(t, bs)
}

// WriteCar writes bs, the first the root, as a CARv1 and indexes it.
func WriteCar(t testing.TB, bs []blocks.Block) Car {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	w, err := storage.NewWritable(&buf, []cid.Cid{bs[0].Cid()}, carv2.WriteAsCarV1(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if err := w.Put(ctx, b.Cid().KeyString(), b.RawData()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finalize(); err != nil {
		t.Fatal(err)
	}
	car := buf.Bytes()
	idx, err := carv2.GenerateIndex(bytes.NewReader(car), carv2.UseIndexCodec(multicodec.CarMultihashIndexSorted))
	if err != nil {
		t.Fatal(err)
	}
	var ib bytes.Buffer
	if _, err := index.WriteTo(idx, &ib); err != nil {
		t.Fatal(err)
	}
	sum, _ := multihash.Sum(car, multihash.SHA2_256, -1)
	carCID := cid.NewCidV1(uint64(multicodec.Car), sum)
	return Car{
		CAR:    locate.CAR{CarCID: carCID, Root: bs[0].Cid(), Key: carCID.String() + "/" + carCID.String() + ".car", Bytes: int64(len(car))},
		Bytes:  car,
		Index:  ib.Bytes(),
		Blocks: bs,
	}
}

// Entries decodes the car's index with locate.Entries, failing the test on
// error.
func (c Car) Entries(t testing.TB) []locate.Entry {
	t.Helper()
	es, err := locate.Entries(bytes.NewReader(c.Index), c.CAR.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// Synthetic is a CAR that exists only as a lookup's rows: n blocks of
// sections of 100 to 1,100 bytes, multihashes derived from (car, i), so
// that SyntheticMultihash names block i of CAR car without keeping them.
func Synthetic(car, n int) (locate.CAR, []locate.Entry) {
	sum := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("car"), uint64(car)))
	h, _ := multihash.Encode(sum[:], multihash.SHA2_256)
	carCID := cid.NewCidV1(uint64(multicodec.Car), h)
	entries := make([]locate.Entry, n)
	off := int64(59) // a CARv1 header with one root
	for i := range entries {
		length := 100 + int64(i%1000)
		entries[i] = locate.Entry{Multihash: SyntheticMultihash(car, i), Offset: off, Length: length}
		off += length
	}
	return locate.CAR{CarCID: carCID, Root: cid.NewCidV1(cid.DagProtobuf, entries[0].Multihash), Key: carCID.String() + "/" + carCID.String() + ".car", Bytes: off}, entries
}

// SyntheticMultihash is the multihash of block i of Synthetic CAR car.
func SyntheticMultihash(car, i int) multihash.Multihash {
	var in [16]byte
	binary.BigEndian.PutUint64(in[:8], uint64(car))
	binary.BigEndian.PutUint64(in[8:], uint64(i))
	sum := sha256.Sum256(in[:])
	h, _ := multihash.Encode(sum[:], multihash.SHA2_256)
	return h
}
