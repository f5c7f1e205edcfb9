package viewrow_test

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
	"github.com/pickup-ipfs/pickup/projections/internal/viewrow"
	"github.com/pickup-ipfs/pickup/projections/viewtest"
)

// The codec writes every field of pin.State by hand: when pin.State (or a
// struct in it) gains a field, this fails until the codec writes it too.
func TestStateCodecCoversPinState(t *testing.T) {
	for _, c := range []struct {
		v      any
		fields int
	}{
		{pin.State{}, 25}, {pin.Requested{}, 9}, {pin.CarUploaded{}, 10}, {pin.CarValidated{}, 8}, {pin.Failure{}, 6}, {pin.DeadLettered{}, 3},
	} {
		if n := reflect.TypeOf(c.v).NumField(); n != c.fields {
			t.Errorf("%T has %d fields, the state codec writes %d: update encodeState and decodeState", c.v, n, c.fields)
		}
	}
}

// Every state of long random histories survives the codec unchanged, and
// encodes to the same bytes again.
func TestStateCodecRoundTrip(t *testing.T) {
	evs := viewtest.Events(viewtest.History(viewtest.HistoryConfig{Events: 20000, Seed: 3, Junk: true}))
	states := map[string]pin.State{}
	checked := 0
	for _, e := range evs {
		if _, ok := pin.RequestIDOf(e.Stream); !ok {
			continue
		}
		s, err := pinlog.Apply(states[e.Stream], e)
		if err != nil {
			continue
		}
		states[e.Stream] = s
		b := viewrow.EncodeState(s)
		back, err := viewrow.DecodeState(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("state changed by the codec:\n got %+v\nwant %+v", back, s)
		}
		if again := viewrow.EncodeState(back); !bytes.Equal(again, b) {
			t.Fatalf("state encodes differently after a round trip")
		}
		checked++
	}
	if checked < 15000 {
		t.Errorf("only %d states checked", checked)
	}
	// Times keep their instant and offset, whatever their zone.
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600))
	back, err := viewrow.DecodeState(viewrow.EncodeState(pin.State{Request: pin.Requested{Created: at}}))
	if _, off := back.Request.Created.Zone(); err != nil || !back.Request.Created.Equal(at) || off != 3600 {
		t.Errorf("time %v came back as %v (%v)", at, back.Request.Created, err)
	}
	for _, bad := range [][]byte{nil, {9}, viewrow.EncodeState(pin.State{Exists: true})[:10], append(viewrow.EncodeState(pin.State{}), 0)} {
		if _, err := viewrow.DecodeState(bad); err == nil {
			t.Errorf("decoded %x", bad)
		}
	}
}

// FuzzDecodeState: a state blob read back from a store decodes or fails,
// and never panics.
func FuzzDecodeState(f *testing.F) {
	f.Add(viewrow.EncodeState(pin.State{Exists: true, Request: pin.Requested{Meta: map[string]string{"a": "b"}, Origins: []string{"x"}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := viewrow.DecodeState(b)
		if err == nil && !bytes.Equal(viewrow.EncodeState(s), b) && len(b) > 0 {
			// Different bytes may decode to one state (non-minimal varints);
			// the state must then be stable.
			if again, err := viewrow.DecodeState(viewrow.EncodeState(s)); err != nil || !reflect.DeepEqual(again, s) {
				t.Errorf("unstable state from %x", b)
			}
		}
	})
}

// A pinned state naming its CAR's index survives the codec.
func TestStateCodecKeepsTheIndex(t *testing.T) {
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	s := pin.State{Exists: true, Phase: pin.PhasePinned, UpdatedAt: at,
		Car: pin.CarValidated{Attempt: 1, Key: "r/r.car", Bytes: 10, CarCID: "bagcar", Index: "r/r.car.idx", IndexBytes: 77, IndexSHA256: "ab12"}}
	back, err := viewrow.DecodeState(viewrow.EncodeState(s))
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Errorf("decoded %+v, %v; want %+v", back, err, s)
	}
}

// A row written before the state carried the DAG's declared size (form 2,
// these bytes as that codec wrote them) is still read, the size unknown,
// and written again in the new form.
func TestStateCodecReadsRowsFromBeforeTheDeclaredSize(t *testing.T) {
	v2, err := hex.DecodeString("02010311111111222233334444555555555555aaaaaaaa22223333444455555555555505616c696365086261666b716161610000000180b49f9f0d000000000000000000000000000000000000086665746368696e6700000000000000000000000000000000000000020002663101f8b49f9f0d000080400607676174657761790200016b000000000173000000000000000000000180b49f9f0d0000")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	want := pin.State{Exists: true, Revision: 3, LastEventID: uuid.MustParse("11111111-2222-3333-4444-555555555555"),
		Request: pin.Requested{RequestID: uuid.MustParse("aaaaaaaa-2222-3333-4444-555555555555"), Tenant: "alice", CID: "bafkqaaa", Created: at},
		Phase:   pin.PhaseFetching, Attempt: 1, Fetcher: "f1", LeaseUntil: at.Add(time.Minute), Bytes: 4096, Blocks: 3, Source: "gateway",
		Staged: pin.CarUploaded{Attempt: 1, Key: "k", Source: "s"}, UpdatedAt: at}
	got, err := viewrow.DecodeState(v2)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, want)
	}
	sized := want
	sized.FetchStartedAt, sized.BlockBytes, sized.ExpectedBytes, sized.Staged.ExpectedBytes = at, 4000, 9000, 9000
	b := viewrow.EncodeState(sized)
	if back, err := viewrow.DecodeState(b); b[0] != 5 || err != nil || !reflect.DeepEqual(back, sized) {
		t.Errorf("form %d decoded %+v, %v; want %+v", b[0], back, err, sized)
	}
}

// A row written before requests could name a CAR upload (form 3, these
// bytes as that codec wrote them) is still read, with no upload; a state
// whose request names one keeps it.
func TestStateCodecReadsRowsFromBeforeUploads(t *testing.T) {
	v3, err := hex.DecodeString("03010311111111222233334444555555555555aaaaaaaa22223333444455555555555505616c696365086261666b716161610000000180b49f9f0d000000000000000000000000000000000000086665746368696e6700000000000000000000000000000000000000020002663101f8b49f9f0d000080400607676174657761790180b49f9f0d0000c03ed08c010200016b000000000173d08c01000000000000000000000180b49f9f0d0000")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	want := pin.State{Exists: true, Revision: 3, LastEventID: uuid.MustParse("11111111-2222-3333-4444-555555555555"),
		Request: pin.Requested{RequestID: uuid.MustParse("aaaaaaaa-2222-3333-4444-555555555555"), Tenant: "alice", CID: "bafkqaaa", Created: at},
		Phase:   pin.PhaseFetching, Attempt: 1, Fetcher: "f1", LeaseUntil: at.Add(time.Minute), Bytes: 4096, Blocks: 3, Source: "gateway",
		FetchStartedAt: at, BlockBytes: 4000, ExpectedBytes: 9000,
		Staged: pin.CarUploaded{Attempt: 1, Key: "k", Source: "s", ExpectedBytes: 9000}, UpdatedAt: at}
	got, err := viewrow.DecodeState(v3)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, want)
	}
	uploaded := want
	uploaded.Request.Upload = "uploads/aaaaaaaa.1"
	if back, err := viewrow.DecodeState(viewrow.EncodeState(uploaded)); err != nil || back.Request.Upload != uploaded.Request.Upload || !reflect.DeepEqual(back, uploaded) {
		t.Errorf("decoded %+v, %v; want %+v", back, err, uploaded)
	}
}

// What an attempt kept for a later one to go on from survives the codec.
func TestStateCodecKeepsWhatAnAttemptKept(t *testing.T) {
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	s := pin.State{Exists: true, Phase: pin.PhaseUploaded, UpdatedAt: at, Attempt: 3, Kept: pin.Kept{Attempt: 2, Bytes: 64 << 20},
		Staged: pin.CarUploaded{Attempt: 3, Key: "k", Bytes: 100 << 20, ResumedFrom: 64 << 20}}
	back, err := viewrow.DecodeState(viewrow.EncodeState(s))
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Errorf("decoded %+v, %v; want %+v", back, err, s)
	}
}
