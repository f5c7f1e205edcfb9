// Package carstore is where CAR files are kept: a staging area for CARs being
// written, and the carpark for validated ones.
//
// A fetcher streams a CAR into the staging area through an Upload (Stage,
// Write, Complete), never holding more than a few parts of it in memory.
// Promote then validates the staged CAR as a step of its own: its size and
// bytes must match what the fetcher recorded (the byte count and the CAR
// CID, the SHA-256 of the whole CAR), and only then does it become visible
// in the carpark, with its metadata. A CAR that fails validation, or an
// attempt that fails or is killed before Promote, leaves nothing visible
// there. No CAR in the carpark is ever replaced, and nothing validated
// there is deleted but through DeleteRoot, which the garbage collector
// calls for a root no pin holds (decided from the event log, elsewhere).
//
// Two stores keep the same contract, proved by the suite in carstoretest:
// S3 (multipart uploads straight into the carpark bucket, a marker per
// attempt in the staging bucket) and Dir (a local directory, for the
// embedded default).
//
// # Each byte written once
//
// S3 has no rename: a CAR staged as one object and promoted as another is
// written twice, and the copy cost as much as the upload (on versitygw's
// posix backend, 256 MiB: 0.68 s for one CopyObject, 0.47 s for a
// multipart copy of 64 MiB ranges 4 at once, the server hashing everything
// it writes anew; 1.0-1.4 s of a 4.2 s pin end to end). But an S3
// multipart upload is a staging area of its own: nothing of it is visible
// until CompleteMultipartUpload, which makes the whole object visible at
// once, or never, when the upload is aborted. So the S3 store writes each
// CAR where it stays: Stage begins a multipart upload in the carpark
// bucket, Complete sends the last part (the upload stays open, invisible),
// and Promote, after validating, completes it.
//
// An upload's key is fixed when it begins, and the CAR CID is known only
// at the end, so the S3 carpark keys CARs by their root instead:
// RootKey, <rootCid>/<rootCid>.car, with the root as requested. One root
// has one CAR (the fetch admits only the root's DAG, depth first, each
// block once, written as `ipfs dag export` writes it), so the root names
// the CAR as well as its CAR CID does, and the same root pinned twice is
// one object. The completion is conditional on no object at the key
// (If-None-Match), so a CAR there is never replaced; a second request's
// Promote finds it, checks it is the same bytes, and discards its own.
// S3 fixes an object's metadata when its upload begins, before the CAR CID
// is known: the CAR CID is a tag on the object (car-cid), set by Promote
// before it returns, and recorded, as always, in the event log. CARs put
// in the carpark before this layout, at CarKey (<carCid>/<carCid>.car),
// are still found by Stat. The directory store keeps CarKey: a rename
// moves a staged file into place without writing it again.
//
// The staging bucket holds, at each attempt's staging key, a small marker
// (JSON) that names its upload, written when the upload begins, so that
// Discard finds the upload of a killed attempt by its request's id, and
// rewritten by Complete with what was written (size, checksum token).
// Open multipart uploads cost storage until they are aborted: Discard and
// Abort abort them, and a lifecycle rule aborting incomplete uploads after
// a day cleans up after what neither reached.
//
// # What a killed attempt leaves
//
// An attempt killed mid-way runs no Abort. What it leaves is removed by
// the next fetcher to touch its request, and by every fetcher when it
// starts, by one rule: an attempt's leftovers go once no one can still run
// that attempt. DiscardThrough(request, n) removes what attempts 1 to n
// left, and nothing of a later attempt, which another fetcher may be
// running; a fetcher calls it through attempt n-1 when it begins attempt
// n, and through n when attempt n ends, whichever way (pinned, fetched or
// from the carpark, failed, claim lost, handed back). Sweep, when a
// fetcher pool starts, asks for each request with something in staging
// through which attempt it is over: every attempt of a pin that is final
// (pinned, failed for good, removed) or that the log does not hold, and
// every attempt but the current one while an attempt holds the claim.
//
// The directory store removes, in NewDir, the files in uploads/ (CARs
// being written, empty ones too) and tmp/ (metadata of a Promote that did
// not finish) of every process that is dead, whatever their request: each
// store holds a lock file in locks/, flock-ed while its process lives
// (the kernel drops the lock of a killed process), and names its files
// after it; a file named after no live lock (or after none, as before
// stores had owners) is a dead process's. So several processes may share
// a directory (the end-to-end tests run several fetchers on one), and a
// start never takes a live process's upload. Staged CARs in staging/ wait
// for Sweep or DiscardThrough, which know whose attempt is over. Nothing
// in carpark/ is deleted but by DeleteRoot (a metadata file whose CAR
// never arrived is rewritten by the next Promote of that CAR).
//
// The S3 store's Sweep finds requests by their staging markers and
// discards as above: the marker's upload is aborted, the marker deleted.
// An upload killed between its creation and its marker is found by
// nothing but the carpark bucket's lifecycle rule, which aborts uploads
// left incomplete for a day (OpenUploads counts it meanwhile); the staging
// bucket's rule expires markers after a day too.
//
// # Going on from a kept upload
//
// An S3 upload is a dag.ResumableSink: the bytes of the parts the server
// has taken, from the first without a gap, are durable, and Checkpoint
// keeps a point of them with the fetcher's note (the blocks written and
// the walk's position) in a small object beside the marker,
// <staging key>.ck/<parts>: the parts taken since the checkpoint before
// (ETag, SHA-256, size) and the whole stream's SHA-256 state after them,
// one PUT per checkpoint. A try that stops suspends its upload (Suspend)
// instead of aborting it; a process killed leaves it as it was. Resume
// goes on from it, for the same attempt or, on any fetcher, the next: it
// adds the checkpoints up, checks every part they record against what the
// server lists, restores the hash, and for another attempt's key writes
// the marker and one checkpoint of everything there before deleting the
// old key's, so that the upload is always named by one attempt that a
// discard keeps (DiscardThroughKeeping, SweepKeeping) while the pin
// records it as kept (pin.State.Kept). Whatever does not match (the
// upload aborted, a part replaced, another root) is ErrNoCheckpoint: it
// is discarded and the attempt starts over. The resumed upload sends part
// after part from the last checkpoint's; parts a killed try sent past it
// are overwritten, or, past the CAR's end, left out of the completion,
// which names exactly the parts Complete counted (the marker's parts).
// The directory store keeps no checkpoints: a retry there starts over.
//
// # Validation without reading back
//
// S3 keeps a checksum of each object, given back by HeadObject with
// checksum mode on. For a multipart upload, AWS keeps a whole-object
// checksum only with CRC algorithms; with SHA-256 it keeps a composite:
// the SHA-256 of the parts' SHA-256s, with the part count ("<base64>-<n>").
// versitygw (v1.8.0, the test server) does the same, and checks each
// part's bytes against the SHA-256 sent with it, as AWS does.
//
// The S3 store therefore sends a SHA-256 with every part, and hashes the
// whole stream as it goes. Complete returns, in Staged.Checksum, both the
// composite and the whole-stream SHA-256. Promote checks that the
// whole-stream SHA-256 is the CAR CID's, that the parts the server lists
// for the upload add up to the size and make the same composite (same
// part digests, so the same bytes, so bytes that hash to the CAR CID), and
// completes the upload naming each part's ETag and SHA-256 and the
// composite, which the server checks once more: a part replaced in
// between fails the completion. A CRC would prove no such thing against a
// chosen change, which is why the parts carry SHA-256. Where the carpark
// already holds a CAR for the root, its tag, or else its composite, or
// else its bytes read back, must prove it the same. The directory store
// reads the staged file back and hashes it, from local disk.
//
// # The block index
//
// Beside each CAR is its block index, at IndexKey (the CAR's key and
// ".idx"): a CARv2 index (go-car/v2, MultihashIndexSorted) of every
// block's multihash and the offset of its section from the start of the
// CAR, computed by the fetcher from the bytes as it wrote them (no second
// read) and stored by PutIndex; and the root's mapping, an empty object
// at RootMapKey (<rootCid>/<carCid>, the DUDEWHERE layout of Storacha's
// freeway gateway), written after the index, so that a mapping names a
// CAR whose index is there. Listing <rootCid>/ finds a root's CARs, and
// DeleteRoot deletes through it. Readers take what they need by range
// (ReadRange: an index, a block's section, a whole CAR), and ListCars
// walks every CAR in key order, for pickup reindex (which builds, with
// BuildIndex, the indexes of CARs stored before there were any) and for
// rebuilding a block lookup from the indexes.
//
// The index sits beside the CAR's key, not always at
// <carCid>/<carCid>.car.idx: the S3 CAR is written once at RootKey, fixed
// before its CAR CID is known (a copy to a CarKey would write it twice:
// 0.68 s for 256 MiB above), so an index at CarKey would sit in a
// directory with no CAR in it, and a reader holding a CAR's key (from
// Stat, ListCars or an event) would need its CAR CID and a second rule to
// find the index. One rule, the CAR's key and ".idx", holds for both
// layouts (RootKey in S3, CarKey in the directory store and for CARs S3
// stored before it wrote CARs once), and the mapping gives the CAR CID
// for whoever starts from a root.
//
// An index is deterministic (the sorted entries of a CAR's sections, one
// encoding), so PutIndex writes conditionally and keeps what is there if
// it is the same bytes or the same entries; anything else at the key
// (truncated, corrupted, another CAR's) is not an index of this CAR, and
// is replaced by the one computed from the CAR's bytes.
//
// This package stores; it appends no events. The caller records CarUploaded
// after Complete and CarValidated (or PinFailed with pin.ReasonValidation
// when Promote returns ErrValidation) after Promote.
package carstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// CodecCAR is the multicodec of a CAR CID: a CID whose multihash is the hash
// of the whole CAR file.
const CodecCAR = 0x0202

// StructureComplete is the value of the structure metadata of every stored
// CAR: the CAR holds the whole DAG under its root (the convention of the
// carpark buckets that E-IPFS indexes).
const StructureComplete = "Complete"

// The metadata names of stored CARs (S3 user metadata, x-amz-meta-*).
const (
	MetaRoot      = "root-cid"
	MetaRequestID = "request-id"
	MetaCarCID    = "car-cid"
	MetaStructure = "structure"
)

// maxKeyLen bounds keys so that a key, with its slashes replaced, fits in a
// file name of the directory store.
const maxKeyLen = 200

// Errors callers branch on with errors.Is. Each is wrapped with what was
// being done.
var (
	// ErrValidation: the staged CAR is not what the caller recorded (missing,
	// another size, bytes that do not hash to the CAR CID). The staged object
	// is deleted and nothing enters the carpark. Record it as
	// pin.ReasonValidation.
	ErrValidation = errors.New("stored CAR does not match what was uploaded")
	// ErrNotFound: no such CAR in the carpark.
	ErrNotFound = errors.New("CAR not found")
	// ErrInvalid: a bad argument (key, CID, metadata); nothing was done.
	ErrInvalid = errors.New("invalid CAR store argument")
	// ErrClosed: a Write or Complete on an upload already completed or
	// aborted.
	ErrClosed = errors.New("upload already completed or aborted")
)

// Upload is a CAR being written into the staging area. Write streams bytes
// in; Complete makes them the staged object; Abort discards them. Memory
// does not grow with the CAR.
//
// Write and Complete must not be called concurrently with each other. Abort
// may be called at any time, from any goroutine, also while a Write is
// blocked: it makes the Write return.
type Upload interface {
	// Write appends p to the CAR. After it returns an error the upload is
	// lost: call Abort.
	Write(p []byte) (int, error)
	// Complete stores everything written as the staged object at the key
	// given to Stage, and reports what was stored. On an error, nothing is
	// left behind: the upload is aborted, as if by Abort.
	Complete(ctx context.Context) (Staged, error)
	// Abort discards the upload: afterwards no staged object and no open
	// upload is left. It is idempotent, and after Complete it deletes the
	// staged object. It works even if ctx is already done (it uses ctx's
	// values, not its deadline, bounded by its own timeout), so that a
	// failed attempt can always clean up. An error means something may be
	// left; calling Abort again retries.
	Abort(ctx context.Context) error
	// HashesCAR marks every upload as one that computes the CAR CID of the
	// bytes it is given (Staged.CarCID): a fetch writing into it need not
	// hash them too (dag.HashingSink).
	HashesCAR()
}

// Metadata describes a CAR: which request it was fetched for, and its root.
type Metadata struct {
	Root      cid.Cid
	RequestID string
}

func (m Metadata) validate() error {
	if !m.Root.Defined() {
		return fmt.Errorf("%w: no root CID", ErrInvalid)
	}
	return checkRequestID(m.RequestID)
}

// checkRequestID accepts request ids fit for S3 user metadata (printable
// ASCII) and for the first element of a staging key.
func checkRequestID(id string) error {
	if id == "" || len(id) > maxKeyLen || strings.ContainsFunc(id, func(r rune) bool { return r < ' ' || r > '~' }) {
		return fmt.Errorf("%w: request id %q: want 1 to %d printable ASCII characters", ErrInvalid, id, maxKeyLen)
	}
	if err := checkKey(id); err != nil || strings.Contains(id, "/") {
		return fmt.Errorf("%w: request id %q: want a single key element", ErrInvalid, id)
	}
	return nil
}

// Staged is what Complete stored.
type Staged struct {
	// Key is the staging key the upload was given.
	Key string
	// Bytes is the size of the CAR.
	Bytes int64
	// CarCID is the CID of the bytes written: SHA-256 of the whole CAR,
	// codec CodecCAR.
	CarCID cid.Cid
	// Checksum, when not empty, lets Promote confirm the stored bytes from
	// the server's own checksums instead of reading them back. It binds the
	// composite SHA-256 of the parts the server checked to the SHA-256 of
	// the bytes written. Record it with the CAR CID and pass it in Expected.
	Checksum string
}

// Expected is what the caller recorded of a staged CAR, for Promote to
// check.
type Expected struct {
	Bytes  int64
	CarCID cid.Cid
	Metadata
	// Checksum is Staged.Checksum, or empty. With it, validation can rest on
	// the server's checksums; without it, the S3 store takes the one its
	// staging marker holds, and the directory store reads the CAR back.
	Checksum string
}

func (e Expected) validate() error {
	if e.Bytes < 0 {
		return fmt.Errorf("%w: negative size %d", ErrInvalid, e.Bytes)
	}
	if err := checkCarCID(e.CarCID); err != nil {
		return err
	}
	return e.Metadata.validate()
}

// Stored is a CAR in the carpark.
type Stored struct {
	// Key is where it is: RootKey(Root) in the S3 store (CarKey for what it
	// stored before it wrote CARs once), CarKey(CarCID) in the directory
	// store.
	Key   string
	Bytes int64
	// CarCID, Root, RequestID and Structure are its metadata. RequestID is
	// the request that first put it there.
	CarCID    cid.Cid
	Root      cid.Cid
	RequestID string
	Structure string
}

// Area names a part of a store.
type Area string

const (
	AreaStaging Area = "staging"
	AreaCarpark Area = "carpark"
)

// OpenUpload is an upload begun and neither completed nor aborted: one in
// progress, or one left by a crashed process.
type OpenUpload struct {
	Area Area
	// Key is the object's key within its area.
	Key string
	// Initiated is when the upload began (the directory store gives the
	// last write instead).
	Initiated time.Time
}

// StagingKey is the staging key of an attempt of a request:
// <requestID>/<attempt>.car. Each attempt has a key of its own, so that a
// late writer of an old attempt never overwrites a newer one.
func StagingKey(requestID string, attempt int) string {
	return requestID + "/" + strconv.Itoa(attempt) + ".car"
}

// CarKey is the directory store's carpark key of a CAR (and the S3 store's,
// before it wrote CARs once): <carCid>/<carCid>.car.
func CarKey(carCID cid.Cid) string {
	s := carCID.String()
	return s + "/" + s + ".car"
}

// RootKey is the S3 store's carpark key of the CAR of a root:
// <rootCid>/<rootCid>.car, with the root as requested (a CIDv0 stays one:
// its CAR's header names it so). It is known when the upload begins, so
// the CAR is written there once, and one root has one CAR: the fetch
// verifies a CAR that is the root's DAG in one order, written one way.
func RootKey(root cid.Cid) string {
	s := root.String()
	return s + "/" + s + ".car"
}

// parseCarparkKey returns the CID c of a carpark key, <c>/<c>.car: a root
// (RootKey) or a CAR CID (CarKey).
func parseCarparkKey(key string) (cid.Cid, error) {
	dir, file, ok := strings.Cut(key, "/")
	if !ok || file != dir+".car" {
		return cid.Undef, fmt.Errorf("%w: %q is not a carpark key, <cid>/<cid>.car", ErrInvalid, key)
	}
	c, err := cid.Decode(dir)
	if err != nil || c.String() != dir {
		return cid.Undef, fmt.Errorf("%w: %q is not a carpark key, <cid>/<cid>.car", ErrInvalid, key)
	}
	return c, nil
}

// CarCID returns the CAR CID of a SHA-256 digest of a CAR file.
func CarCID(sha256Digest []byte) cid.Cid {
	h, _ := mh.Encode(sha256Digest, mh.SHA2_256)
	return cid.NewCidV1(CodecCAR, h)
}

func checkCarCID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: no CAR CID", ErrInvalid)
	}
	if c.Type() != CodecCAR {
		return fmt.Errorf("%w: CAR CID %s has codec 0x%x, not car (0x%x)", ErrInvalid, c, c.Type(), CodecCAR)
	}
	if _, err := mh.GetHasher(c.Prefix().MhType); err != nil {
		return fmt.Errorf("%w: CAR CID %s: %v", ErrInvalid, c, err)
	}
	return nil
}

// checkKey accepts keys that are the same on S3 and on a file system:
// relative, slash-separated, of letters, digits and "-_.", with no empty, "."
// or ".." element, at most maxKeyLen bytes.
func checkKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("%w: key %q: empty or over %d bytes", ErrInvalid, key, maxKeyLen)
	}
	for _, r := range key {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.' || r == '/'
		if !ok {
			return fmt.Errorf("%w: key %q: character %q", ErrInvalid, key, r)
		}
	}
	for elem := range strings.SplitSeq(key, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return fmt.Errorf("%w: key %q: empty, . or .. element", ErrInvalid, key)
		}
	}
	return nil
}

// hashMatches reads r to its end and reports whether it holds exactly size
// bytes that hash to want's multihash.
func hashMatches(r io.Reader, want cid.Cid, size int64) (bool, error) {
	dec, err := mh.Decode(want.Hash())
	if err != nil {
		return false, fmt.Errorf("%w: CAR CID %s: %v", ErrInvalid, want, err)
	}
	h, err := mh.GetHasher(dec.Code)
	if err != nil {
		return false, fmt.Errorf("%w: CAR CID %s: %v", ErrInvalid, want, err)
	}
	n, err := io.Copy(h, r)
	if err != nil {
		return false, err
	}
	sum := h.Sum(nil)
	if dec.Length >= 0 && dec.Length < len(sum) {
		sum = sum[:dec.Length]
	}
	return n == size && bytes.Equal(sum, dec.Digest), nil
}

// promotion checks Promote's arguments and returns what a Promote of them
// stores.
func promotion(stagedKey string, want Expected) (Stored, error) {
	if err := checkKey(stagedKey); err != nil {
		return Stored{}, fmt.Errorf("promote: %w", err)
	}
	if err := want.validate(); err != nil {
		return Stored{}, fmt.Errorf("promote %s: %w", stagedKey, err)
	}
	return Stored{
		Key: CarKey(want.CarCID), Bytes: want.Bytes, CarCID: want.CarCID,
		Root: want.Root, RequestID: want.RequestID, Structure: StructureComplete,
	}, nil
}

// checksumToken is the content of Staged.Checksum: the SHA-256 of the whole
// CAR as its writer computed it, and the composite SHA-256 (the SHA-256 of
// the parts' SHA-256s, with the part count) the server confirmed for the
// same bytes when it completed the multipart upload. The server checks each
// part's bytes against the part's SHA-256, so a stored object with the same
// composite holds the same bytes, and those hash to the CAR CID.
type checksumToken struct {
	full      [sha256.Size]byte
	composite string // base64 "<digest>-<parts>", as S3 reports it
}

const tokenVersion = "v1"

func (t checksumToken) String() string {
	return tokenVersion + ":" + hex.EncodeToString(t.full[:]) + ":" + t.composite
}

func parseChecksumToken(s string) (checksumToken, error) {
	var t checksumToken
	v, rest, ok := strings.Cut(s, ":")
	if !ok || v != tokenVersion {
		return t, fmt.Errorf("%w: checksum %q: unknown form", ErrInvalid, s)
	}
	full, composite, ok := strings.Cut(rest, ":")
	d, err := hex.DecodeString(full)
	if !ok || err != nil || len(d) != sha256.Size || !validComposite(composite) {
		return t, fmt.Errorf("%w: checksum %q: malformed", ErrInvalid, s)
	}
	copy(t.full[:], d)
	t.composite = composite
	return t, nil
}

// compositeChecksum is how S3 reports the checksum of a multipart object
// uploaded with SHA-256 part checksums: base64 of the SHA-256 of the
// concatenated part digests, a dash, and the number of parts.
func compositeChecksum(partDigests [][sha256.Size]byte) string {
	h := sha256.New()
	for _, d := range partDigests {
		h.Write(d[:])
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(partDigests))
}

func validComposite(s string) bool {
	b64, n, ok := strings.Cut(s, "-")
	if !ok {
		return false
	}
	d, err := base64.StdEncoding.DecodeString(b64)
	count, err2 := strconv.Atoi(n)
	return err == nil && err2 == nil && len(d) == sha256.Size && count > 0
}
