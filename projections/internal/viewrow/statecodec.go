package viewrow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/pickup-ipfs/pickup/pin"
)

// The views keep each pin's folded state (pin.State) in its row, so that
// the next event can be folded in without reading the stream. The state is
// written in a compact binary form rather than JSON: a rebuild writes a row
// for most of its events, and JSON made the rows three times bigger and
// their encoding the largest cost after SQLite's own. TestStateCodec holds
// the codec to pin.State: it fails when pin.State gains a field.
//
// The form is a version byte, then every field in order: integers as
// varints, strings and slices with their length first, UUIDs as 16 bytes,
// times as a zero flag, Unix seconds, nanoseconds and zone offset, maps
// with their keys sorted, pointers as a presence flag.

// stateVersion is the first byte of an encoded state. Version 2 added
// CarValidated's index (Index, IndexBytes, IndexSHA256); the views'
// schema versions changed with it (embedded 8, PostgreSQL 6), so no row
// of version 1 is read. Version 3 added the DAG's declared size
// (FetchStartedAt, BlockBytes, ExpectedBytes, CarUploaded.ExpectedBytes);
// a row of version 2 is still read, those fields zero (unknown), so the
// views need no rebuild: an attempt in flight at the upgrade shows no
// time left until its next attempt, and every later one shows it all.
// Version 4 added the request's CAR upload (Requested.Upload); rows of
// versions 2 and 3 are still read, with no upload (none were made before).
// Version 5 added what an attempt kept for a later one to go on from
// (Kept, CarUploaded.ResumedFrom); rows of versions 2 to 4 are still
// read, with nothing kept (a retry of an attempt in flight at the upgrade
// starts over, as every retry did before).
const (
	stateVersion         = 5
	stateVersionNoKept   = 4
	stateVersionNoUpload = 3
	stateVersionNoSize   = 2
)

type stateWriter struct{ b []byte }

func (w *stateWriter) uint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *stateWriter) int(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *stateWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}
func (w *stateWriter) str(s string)   { w.uint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *stateWriter) id(u uuid.UUID) { w.b = append(w.b, u[:]...) }
func (w *stateWriter) strs(s []string) {
	w.uint(uint64(len(s)))
	for _, x := range s {
		w.str(x)
	}
}
func (w *stateWriter) time(t time.Time) {
	if t.IsZero() {
		w.bool(false)
		return
	}
	w.bool(true)
	_, off := t.Zone()
	w.int(t.Unix())
	w.uint(uint64(t.Nanosecond()))
	w.int(int64(off))
}

// encodeState writes a state in the views' binary form.
func encodeState(s pin.State) []byte {
	w := stateWriter{b: make([]byte, 0, 256)}
	w.b = append(w.b, stateVersion)
	w.bool(s.Exists)
	w.uint(s.Revision)
	w.id(s.LastEventID)
	r := s.Request
	w.id(r.RequestID)
	w.str(r.Tenant)
	w.str(r.CID)
	w.str(r.Name)
	w.strs(r.Origins)
	w.uint(uint64(len(r.Meta)))
	for _, k := range slices.Sorted(maps.Keys(r.Meta)) {
		w.str(k)
		w.str(r.Meta[k])
	}
	w.time(r.Created)
	w.id(r.Replaces)
	w.str(r.Upload)
	w.str(string(s.Phase))
	w.bool(s.Removed)
	w.id(s.ReplacedBy)
	w.time(s.QueuedSince)
	w.time(s.NotBefore)
	w.int(int64(s.Attempt))
	w.int(int64(s.Failures))
	w.str(s.Fetcher)
	w.time(s.LeaseUntil)
	w.int(s.Bytes)
	w.int(s.Blocks)
	w.str(s.Source)
	w.time(s.FetchStartedAt)
	w.int(s.BlockBytes)
	w.int(s.ExpectedBytes)
	w.int(int64(s.Kept.Attempt))
	w.int(s.Kept.Bytes)
	st := s.Staged
	w.int(int64(st.Attempt))
	w.str(st.Fetcher)
	w.str(st.Key)
	w.int(st.Bytes)
	w.int(st.Blocks)
	w.str(st.CarCID)
	w.str(st.Checksum)
	w.str(st.Source)
	w.int(st.ExpectedBytes)
	w.int(st.ResumedFrom)
	c := s.Car
	w.int(int64(c.Attempt))
	w.str(c.Key)
	w.int(c.Bytes)
	w.str(c.CarCID)
	w.bool(c.Reused)
	w.str(c.Index)
	w.int(c.IndexBytes)
	w.str(c.IndexSHA256)
	w.bool(s.LastFailure != nil)
	if f := s.LastFailure; f != nil {
		w.int(int64(f.Attempt))
		w.str(string(f.Reason))
		w.str(f.Message)
		w.bool(f.Permanent)
		w.time(f.At)
		w.id(f.EventID)
	}
	w.bool(s.DeadLetter != nil)
	if d := s.DeadLetter; d != nil {
		w.int(int64(d.Failures))
		w.str(string(d.Reason))
		w.str(d.Message)
	}
	w.time(s.UpdatedAt)
	return w.b
}

var errShortState = errors.New("truncated state")

type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *stateReader) uint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errShortState)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errShortState)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *stateReader) bool() bool {
	if len(r.b) < 1 {
		r.fail(errShortState)
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v != 0
}

func (r *stateReader) str() string {
	n := r.uint()
	if n > uint64(len(r.b)) {
		r.fail(errShortState)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *stateReader) id() uuid.UUID {
	var u uuid.UUID
	if len(r.b) < len(u) {
		r.fail(errShortState)
		return u
	}
	copy(u[:], r.b)
	r.b = r.b[len(u):]
	return u
}

func (r *stateReader) strs() []string {
	n := r.uint()
	if n == 0 || n > uint64(len(r.b)) {
		if n != 0 {
			r.fail(errShortState)
		}
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

func (r *stateReader) time() time.Time {
	if !r.bool() {
		return time.Time{}
	}
	sec, nsec, off := r.int(), r.uint(), r.int()
	t := time.Unix(sec, int64(nsec))
	if off == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(off)))
}

// decodeState reads what encodeState wrote.
func decodeState(b []byte) (pin.State, error) {
	var s pin.State
	if len(b) == 0 || b[0] < stateVersionNoSize || b[0] > stateVersion {
		return s, fmt.Errorf("decode state: unknown form %x", b[:min(len(b), 1)])
	}
	sized, uploaded, kept := b[0] >= stateVersionNoUpload, b[0] >= stateVersionNoKept, b[0] >= stateVersion
	r := stateReader{b: b[1:]}
	s.Exists = r.bool()
	s.Revision = r.uint()
	s.LastEventID = r.id()
	q := &s.Request
	q.RequestID = r.id()
	q.Tenant = r.str()
	q.CID = r.str()
	q.Name = r.str()
	q.Origins = r.strs()
	if n := r.uint(); n > 0 && n <= uint64(len(r.b)) {
		q.Meta = make(map[string]string, n)
		for range n {
			k := r.str()
			q.Meta[k] = r.str()
		}
	} else if n > 0 {
		r.fail(errShortState)
	}
	q.Created = r.time()
	q.Replaces = r.id()
	if uploaded {
		q.Upload = r.str()
	}
	s.Phase = pin.Phase(r.str())
	s.Removed = r.bool()
	s.ReplacedBy = r.id()
	s.QueuedSince = r.time()
	s.NotBefore = r.time()
	s.Attempt = int(r.int())
	s.Failures = int(r.int())
	s.Fetcher = r.str()
	s.LeaseUntil = r.time()
	s.Bytes = r.int()
	s.Blocks = r.int()
	s.Source = r.str()
	if sized {
		s.FetchStartedAt = r.time()
		s.BlockBytes = r.int()
		s.ExpectedBytes = r.int()
	}
	if kept {
		s.Kept = pin.Kept{Attempt: int(r.int()), Bytes: r.int()}
	}
	st := &s.Staged
	st.Attempt = int(r.int())
	st.Fetcher = r.str()
	st.Key = r.str()
	st.Bytes = r.int()
	st.Blocks = r.int()
	st.CarCID = r.str()
	st.Checksum = r.str()
	st.Source = r.str()
	if sized {
		st.ExpectedBytes = r.int()
	}
	if kept {
		st.ResumedFrom = r.int()
	}
	c := &s.Car
	c.Attempt = int(r.int())
	c.Key = r.str()
	c.Bytes = r.int()
	c.CarCID = r.str()
	c.Reused = r.bool()
	c.Index = r.str()
	c.IndexBytes = r.int()
	c.IndexSHA256 = r.str()
	if r.bool() {
		s.LastFailure = &pin.Failure{Attempt: int(r.int()), Reason: pin.Reason(r.str()), Message: r.str(), Permanent: r.bool(), At: r.time(), EventID: r.id()}
	}
	if r.bool() {
		s.DeadLetter = &pin.DeadLettered{Failures: int(r.int()), Reason: pin.Reason(r.str()), Message: r.str()}
	}
	s.UpdatedAt = r.time()
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the state", len(r.b))
	}
	if r.err != nil {
		return pin.State{}, fmt.Errorf("decode state: %w", r.err)
	}
	return s, nil
}
