// Package dag gets a DAG from untrusted sources and turns it into a verified
// CAR.
//
// Sources (trustless gateways, bitswap peers, a kubo RPC endpoint) yield
// blocks in the order they claim is depth-first. Nothing they send is
// trusted: as the blocks stream, the Fetcher walks the DAG itself from the
// requested root and checks that every block is the one its walk expects
// next, that its bytes hash to its CID, that it is within the size limits,
// and that the stream neither ends early nor carries anything more. What
// passes is written, as it arrives, as the CARv1 that `ipfs dag export`
// writes for the same DAG (root in the header, blocks depth-first, each once,
// identity blocks included), and the CAR's own CID and its block index
// (Result.Index, the CARv2 index go-car builds for those bytes) are
// computed on the way, with no second read of the CAR.
//
// A source that breaks any rule is dropped for this attempt with a precise
// pin.Reason, and the next source is tried; see Fetcher.Fetch for how the
// reason of an attempt that fails everywhere is chosen.
//
// Sources live in subpackages (trustless, kubo, bitswap) so that libp2p is
// linked only where bitswap is used.
package dag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multiaddr"

	"github.com/pickup-ipfs/pickup/pin"
)

// Request names the DAG to fetch.
type Request struct {
	// Root is the CID the CAR must be rooted at.
	Root cid.Cid
	// Origins are peers the requester says have the DAG (the Pinning
	// Service API's origins); the bitswap source dials them.
	Origins []multiaddr.Multiaddr
	// Upload names the CAR the tenant sent (its key in the uploads area,
	// package carupload), when the pin came with one: the upload source
	// reads the DAG from it, and no other source is asked.
	Upload string
	// Resume, when not nil, gives back the CAR an earlier try or attempt
	// left (see ResumableSink), for the next try to go on from; ok is
	// false when there is none to go on from, and the try starts over.
	// Sources never see it.
	Resume func(ctx context.Context) (kept Kept, ok bool, err error)
}

// Defaults of Limits, with web3-storage/pickup's names.
const (
	// DefaultMaxCARBytes is MAX_CAR_BYTES: 31 GiB.
	DefaultMaxCARBytes int64 = 31 << 30
	// DefaultMaxBlockBytes is the block size every IPFS implementation
	// agrees to move: 2 MiB.
	DefaultMaxBlockBytes = 2 << 20
	// DefaultFetchTimeout is FETCH_TIMEOUT: 4 hours per attempt.
	DefaultFetchTimeout = 4 * time.Hour
	// DefaultChunkTimeout is FETCH_CHUNK_TIMEOUT: 2 minutes without progress.
	DefaultChunkTimeout = 2 * time.Minute
)

// Limits bound one attempt. Zero fields take their defaults.
type Limits struct {
	// MaxCARBytes bounds the CAR written. Over it the attempt fails
	// permanently as too_big: the DAG is what it is, wherever it comes from.
	// A root that declares a bigger DAG (see Estimate) fails so once it
	// has arrived, before the rest is fetched.
	MaxCARBytes int64
	// MaxBlockBytes bounds each block (block_too_big).
	MaxBlockBytes int
	// FetchTimeout bounds the whole attempt, across sources (timeout).
	FetchTimeout time.Duration
	// ChunkTimeout bounds the time a source may go without sending a byte
	// (stalled, or root_not_found if it never sent the root).
	ChunkTimeout time.Duration
}

// WithDefaults returns l with its zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxCARBytes == 0 {
		l.MaxCARBytes = DefaultMaxCARBytes
	}
	if l.MaxBlockBytes == 0 {
		l.MaxBlockBytes = DefaultMaxBlockBytes
	}
	if l.FetchTimeout == 0 {
		l.FetchTimeout = DefaultFetchTimeout
	}
	if l.ChunkTimeout == 0 {
		l.ChunkTimeout = DefaultChunkTimeout
	}
	return l
}

// Validate reports a limit that cannot work.
func (l Limits) Validate() error {
	switch {
	case l.MaxCARBytes <= 0:
		return fmt.Errorf("dag limits: max CAR bytes must be positive, got %d", l.MaxCARBytes)
	case l.MaxBlockBytes <= 0:
		return fmt.Errorf("dag limits: max block bytes must be positive, got %d", l.MaxBlockBytes)
	case l.FetchTimeout <= 0:
		return fmt.Errorf("dag limits: fetch timeout must be positive, got %s", l.FetchTimeout)
	case l.ChunkTimeout <= 0:
		return fmt.Errorf("dag limits: chunk timeout must be positive, got %s", l.ChunkTimeout)
	}
	return nil
}

// Block is one block as a source sent it: a claim, not yet verified.
type Block struct {
	CID  cid.Cid
	Data []byte
	// after is the walk's position once the verifier has visited this
	// block: what a checkpoint after it records. Sources leave it zero.
	after Position
}

// Source is a place to get a DAG from. Implementations must be safe for
// concurrent use: one Source serves every fetch of a process.
type Source interface {
	// Name identifies the source in results, failures and logs
	// (e.g. "gateway https://trustless-gateway.link").
	Name() string
	// Fetch starts getting req's DAG. The stream lives until ctx ends or it
	// is closed. Fetch should not wait for the network: waiting belongs in
	// Blocks.Next, where the Fetcher's stall watchdog sees it. An error,
	// from Fetch or from Next, may be a *Failure to name its reason;
	// any other error counts as sources_failed.
	Fetch(ctx context.Context, req Request, limits Limits) (Blocks, error)
}

// Blocks is a stream of blocks in the order the source claims is the
// depth-first order of the DAG, each block once, identity blocks optional.
// It is used by one goroutine; the context given to Fetch ends a Next that
// waits.
type Blocks interface {
	// Next returns the next block, or io.EOF after the last one. The
	// caller owns the returned Data.
	Next() (Block, error)
	// Close releases the stream; Next fails after it.
	Close() error
}

// Progressor is implemented by streams that can tell progress finer than
// whole blocks: the number grows with every byte (or response) received.
// The stall watchdog polls it, so a 2 MiB block trickling in slowly is not
// mistaken for a stall. It must be safe to call from any goroutine.
type Progressor interface {
	Progress() int64
}

// Recycler is implemented by streams that can reuse the buffers of blocks
// the Fetcher is done with, sparing an allocation (and its zeroing) per
// block. The Fetcher calls Recycle once a block is written, from another
// goroutine than Next's, and never touches the buffer again.
type Recycler interface {
	Recycle(data []byte)
}

// Sink is where one try's CAR bytes go (the storage upload). The Fetcher
// writes to it from one goroutine and, when the try fails, calls Abort
// instead of whatever completes it.
type Sink interface {
	io.Writer
	// Abort discards what was written.
	Abort(ctx context.Context) error
}

// HashingSink is a Sink that computes the CAR CID itself, over every byte
// it is given (carstore's uploads do, to prove what they store). The
// Fetcher then leaves the CAR's bytes to it unhashed, sparing a second
// SHA-256 pass over the whole CAR, and the Result's CarCID is undefined:
// the sink's answer is the CAR CID.
type HashingSink interface {
	Sink
	// HashesCAR marks the sink as one that hashes what it is given.
	HashesCAR()
}

// BufferingSink is a Sink that copies whatever it is given into buffers of
// its own (carstore's S3 upload fills its parts), so that a small write
// costs it no more than its bytes. The Fetcher writes a CAR's sections
// straight into it, sparing a copy of every byte through a buffer of its
// own.
type BufferingSink interface {
	Sink
	// BuffersWrites marks the sink as one that buffers what it is given.
	BuffersWrites()
}

// Progress is how far a try has come, as Fetch reports it.
type Progress struct {
	// Bytes is the CAR's length so far (header and framing included) and
	// Blocks its blocks; BlockBytes is the blocks' own bytes among Bytes.
	Bytes, Blocks, BlockBytes int64
	// Expected is the DAG's size as its root declares it (see Estimate),
	// to compare with BlockBytes; 0 when the root declares none.
	Expected int64
	// Source is the Name of the source being tried.
	Source string
	// Checkpoint is the CAR bytes its sink keeps for good with a note of
	// how to go on from them (see ResumableSink): what a later try keeps
	// if this one fails. 0: none.
	Checkpoint int64
	// ResumedFrom is the CAR bytes this try found kept by an earlier one,
	// and went on from, and ResumedBlocks the blocks they hold whole; 0
	// when it began at the start. Bytes and Blocks count them too.
	ResumedFrom, ResumedBlocks int64
}

// Result describes the CAR of a successful fetch.
type Result struct {
	// CarCID is the CID of the CAR's bytes: sha2-256, multicodec car
	// (0x0202); undefined when the sink was a HashingSink.
	CarCID cid.Cid
	// Bytes is the CAR's length; Blocks the number of blocks in it.
	Bytes, Blocks int64
	// Source is the Name of the source that served the DAG.
	Source string
	// Expected is the DAG's size as its root declared it (see Estimate),
	// 0 when it declared none.
	Expected int64
	// ResumedFrom is the CAR bytes the try found kept by an earlier one
	// and went on from; 0 when it wrote the CAR from the start.
	ResumedFrom int64
	// Index is the CAR's block index, recorded as it was written (no
	// second read): the CARv2 index go-car/v2 builds for these bytes
	// (index.MultihashIndexSorted as index.WriteTo writes it: every
	// block's multihash but identity ones, and the offset of its section
	// from the start of the CAR), about 40 bytes a block.
	Index []byte
}

// Failure is why a source, or a whole attempt, failed. Callers record
// Reason; Reason.Permanent says whether to try again.
//
// Its Error is the pin's failure message, which the tenant reads (and
// webhooks carry): it names the source, the reason and what went wrong in
// pickup's own words and values (a status code, a CID, a count), never
// text a remote sent. Sources put that in Detail, and Fetch turns any
// error that is not a *Failure into a fixed phrase (see Phrase): an
// error's text can quote a remote (a redirect's target, a malformed
// answer's first line).
type Failure struct {
	Reason pin.Reason
	// Source names the source that failed; for an attempt that failed
	// everywhere, the source whose failure gave the reason.
	Source string
	Err    error
	// Detail is what the remote said (a body, a header, a transport error
	// that may quote either), for the process's logs only: Fetch logs it
	// truncated and quoted.
	Detail string
	// Kept is the CAR bytes the attempt's sink keeps, suspended, for a
	// later attempt to go on from (see ResumableSink); 0: nothing kept.
	Kept int64
}

func (f *Failure) Error() string {
	if f.Source == "" {
		return fmt.Sprintf("%s: %v", f.Reason, f.Err)
	}
	return fmt.Sprintf("%s: %s: %v", f.Source, f.Reason, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

// Fail returns a *Failure for reason with a formatted message, for sources
// to say why they failed. The message is the tenant's to read: format and
// args carry pickup's words and values only; what a remote sent goes
// through FailDetail.
func Fail(reason pin.Reason, format string, args ...any) error {
	return &Failure{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// FailDetail is Fail with what the remote sent, for the logs only.
func FailDetail(reason pin.Reason, detail, format string, args ...any) error {
	return &Failure{Reason: reason, Err: fmt.Errorf(format, args...), Detail: detail}
}

// ReasonOf returns the reason err carries, or sources_failed if it carries
// none.
func ReasonOf(err error) pin.Reason {
	if f, ok := errors.AsType[*Failure](err); ok {
		return f.Reason
	}
	return pin.ReasonSourcesFailed
}
