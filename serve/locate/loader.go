package locate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/pickup-ipfs/pickup/eventlog"
	"github.com/pickup-ipfs/pickup/pin"
	"github.com/pickup-ipfs/pickup/pin/pinlog"
)

// IndexSource reads objects of the carpark (fetcher/carstore's S3 and Dir
// are ones): length bytes from offset, length < 0 for all to the end.
type IndexSource interface {
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
}

// Log is the event log as the loader reads it.
type Log interface {
	pinlog.Reader
	Subscribe(ctx context.Context, after eventlog.Position, filter eventlog.Filter, handle func([]eventlog.Event) error) error
	Head(ctx context.Context) (eventlog.Position, error)
}

// Lister lists the CARs of the carpark whose keys sort after after, in key
// order, stopping at fn's first error (fetcher/carstore's ListCars, its
// carstore.Stored given as a CAR). A CAR whose CAR CID is not known has
// an undefined CarCID.
type Lister interface {
	ListCars(ctx context.Context, after string, fn func(CAR) error) error
}

// LoaderConfig is what a Loader reads and writes.
type LoaderConfig struct {
	Log     Log
	Objects IndexSource
	Store   Store
	Logger  *slog.Logger
	// IsNotFound reports an error of Objects that means the object is not
	// there (carstore.ErrNotFound): the CAR is skipped, counted as
	// missing. Default: no error does; every read error is tried again.
	IsNotFound func(error) bool
	// IndexKey is the key of the index object beside the CAR at carKey,
	// for Rebuild. Default: carKey + ".idx" (carstore.IndexKey's rule).
	IndexKey func(carKey string) string
	// RetryDelay is the first wait before trying again a read of the
	// carpark or a write of the store that failed; it doubles up to a
	// minute. Default one second.
	RetryDelay time.Duration
}

// Validate reports a configuration that cannot work.
func (c LoaderConfig) Validate() error {
	switch {
	case c.Log == nil || c.Objects == nil || c.Store == nil:
		return errors.New("block lookup loader: a log, a carpark and a store are needed")
	case c.RetryDelay < 0:
		return fmt.Errorf("block lookup loader: negative retry delay %v", c.RetryDelay)
	}
	return nil
}

// Loader keeps a Store up with the log: every CAR that a CarValidated
// names, with its index object, is added, and the CARs of a root that a
// RootDeleted names are removed. It is safe for concurrent use;
// run one Run per Store at a time (two are correct, since Add is
// idempotent, but do the work twice).
type Loader struct {
	cfg    LoaderConfig
	logger *slog.Logger
	stats  struct{ added, known, noIndex, badIndex, missing, badEvent, removed atomic.Int64 }
}

// LoaderStats count what a Loader did with the CarValidated events (or
// Rebuild with the CARs) it met.
type LoaderStats struct {
	// Added were added; Known were in the store already.
	Added, Known int64
	// NoIndex named no index object (written before indexes were).
	NoIndex int64
	// BadIndex had an index object Entries refused, or one not of the
	// size and SHA-256 its CarValidated names; Missing had none
	// where it was named; BadEvent could not be read (no CAR CID, no
	// root).
	BadIndex, Missing, BadEvent int64
	// Removed were forgotten: CARs of roots the garbage collector deleted.
	Removed int64
}

// NewLoader returns a loader; Run starts it.
func NewLoader(cfg LoaderConfig) (*Loader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IsNotFound == nil {
		cfg.IsNotFound = func(error) bool { return false }
	}
	if cfg.IndexKey == nil {
		cfg.IndexKey = func(carKey string) string { return carKey + ".idx" }
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Second
	}
	return &Loader{cfg: cfg, logger: cfg.Logger.With("component", "locate")}, nil
}

// Stats returns the counts so far.
func (l *Loader) Stats() LoaderStats {
	s := &l.stats
	return LoaderStats{Added: s.added.Load(), Known: s.known.Load(), NoIndex: s.noIndex.Load(),
		BadIndex: s.badIndex.Load(), Missing: s.missing.Load(), BadEvent: s.badEvent.Load(), Removed: s.removed.Load()}
}

// Run follows the log from the store's checkpoint for CarValidated, adds
// each CAR (and forgets those of roots deleted: RootDeleted), and moves
// the checkpoint after each batch of events: a restart takes up where the
// last checkpoint was, and an event met again is a CAR already there. A bad or missing index object is logged and skipped; a
// failed read of the carpark or write of the store is tried again until
// it works or ctx is done; so is the subscription when the log fails
// (from the last checkpoint, after RetryDelay). It returns when ctx is
// done, with ctx's error.
func (l *Loader) Run(ctx context.Context) error {
	filter := eventlog.Filter{StreamPrefixes: []string{pin.StreamPrefix, pin.RootStreamPrefix}, Types: []string{pin.TypeCarValidated, pin.TypeRootDeleted}}
	for {
		var from eventlog.Position
		err := l.retry(ctx, "read checkpoint", func() (err error) {
			from, err = l.cfg.Store.Checkpoint(ctx)
			return err
		})
		if err != nil {
			return err
		}
		l.logger.InfoContext(ctx, "following the log", "after", from)
		err = l.cfg.Log.Subscribe(ctx, from, filter, func(batch []eventlog.Event) error {
			for _, e := range batch {
				if err := l.take(ctx, e); err != nil {
					return err
				}
			}
			return l.retry(ctx, "set checkpoint", func() error {
				return l.cfg.Store.SetCheckpoint(ctx, batch[len(batch)-1].Position)
			})
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.logger.ErrorContext(ctx, "following the log failed; resuming", "err", err, "after", l.cfg.RetryDelay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(l.cfg.RetryDelay):
		}
	}
}

// take adds the CAR one CarValidated names, or forgets the CARs of the
// root a RootDeleted names; only ctx's end is an error.
func (l *Loader) take(ctx context.Context, e eventlog.Event) error {
	log := l.logger.With("position", e.Position, "stream", e.Stream)
	if e.Type == pin.TypeRootDeleted {
		return l.forget(ctx, log, e)
	}
	r, err := pinlog.Decode(e)
	v, ok := r.Payload.(pin.CarValidated)
	if err != nil || !ok {
		l.stats.badEvent.Add(1)
		log.WarnContext(ctx, "skipped an event that does not decode as CarValidated", "err", err)
		return nil
	}
	if v.Index == "" {
		l.stats.noIndex.Add(1)
		log.DebugContext(ctx, "skipped a CAR validated without an index", "key", v.Key)
		return nil
	}
	carCID, err := cid.Parse(v.CarCID)
	if err != nil {
		l.stats.badEvent.Add(1)
		log.WarnContext(ctx, "skipped a CarValidated whose CAR CID does not parse", "car_cid", v.CarCID, "err", err)
		return nil
	}
	var known bool
	if err := l.retry(ctx, "look up CAR", func() (err error) { known, err = l.cfg.Store.Has(ctx, carCID); return err }); err != nil {
		return err
	}
	if known {
		l.stats.known.Add(1)
		return nil
	}
	root, err := l.root(ctx, e)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.stats.badEvent.Add(1)
		log.WarnContext(ctx, "skipped a CarValidated whose pin names no root", "err", err)
		return nil
	}
	return l.add(ctx, log, CAR{CarCID: carCID, Root: root, Key: v.Key, Bytes: v.Bytes}, v.Index, objectSum{v.IndexBytes, v.IndexSHA256})
}

// forget removes the CARs of the root whose stream holds e, a RootDeleted:
// the collector deleted their objects, so their rows would name nothing.
// They are found by the root's own block, which every CAR of the root
// holds; a CAR of the root validated again later comes after e in the log,
// and is added again. Only ctx's end is an error.
func (l *Loader) forget(ctx context.Context, log *slog.Logger, e eventlog.Event) error {
	canonical, ok := pin.RootOf(e.Stream)
	root, err := cid.Parse(canonical)
	if !ok || err != nil {
		l.stats.badEvent.Add(1)
		log.WarnContext(ctx, "skipped a RootDeleted whose stream names no root", "err", err)
		return nil
	}
	var locs []Location
	if err := l.retry(ctx, "look up root", func() (err error) { locs, err = l.cfg.Store.Locate(ctx, root.Hash()); return err }); err != nil {
		return err
	}
	for _, loc := range locs {
		if pinlog.CanonicalRoot(loc.Root) != canonical {
			continue // a CAR of another root that holds this block
		}
		if err := l.retry(ctx, "remove CAR", func() error { return l.cfg.Store.Remove(ctx, loc.CarCID) }); err != nil {
			return err
		}
		l.stats.removed.Add(1)
		log.InfoContext(ctx, "forgot the blocks of a deleted CAR", "car_cid", loc.CarCID, "root", loc.Root)
	}
	return nil
}

// root is the root CID of the pin whose stream holds e.
func (l *Loader) root(ctx context.Context, e eventlog.Event) (cid.Cid, error) {
	id, ok := pin.RequestIDOf(e.Stream)
	if !ok {
		return cid.Undef, fmt.Errorf("stream %q is not a pin's", e.Stream)
	}
	var s pin.State
	err := l.retry(ctx, "read pin", func() (err error) { s, _, err = pinlog.Read(ctx, l.cfg.Log, id); return err })
	if err != nil {
		return cid.Undef, err
	}
	return cid.Parse(s.Request.CID)
}

// objectSum is the size and SHA-256 (hex) an index object was validated
// with, when the event says (zero: not known).
type objectSum struct {
	bytes  int64
	sha256 string
}

// check reports, wrapping ErrBadIndex, an object of n bytes hashing to sum
// that is not the one validated.
func (o objectSum) check(n int64, sum []byte) error {
	if o.bytes > 0 && n != o.bytes {
		return fmt.Errorf("%w: the index object is %d bytes, %d were validated", ErrBadIndex, n, o.bytes)
	}
	if o.sha256 != "" && hex.EncodeToString(sum) != o.sha256 {
		return fmt.Errorf("%w: the index object's SHA-256 is %x, %s was validated", ErrBadIndex, sum, o.sha256)
	}
	return nil
}

// ValidatedEntries decodes, with Entries, an index object read from r
// (to its end) of a CAR of carBytes bytes, and checks that it is the
// object validated: of wantBytes bytes and SHA-256 wantSHA256 (hex), each
// unchecked when zero. An object that is not wraps ErrBadIndex.
func ValidatedEntries(r io.Reader, carBytes, wantBytes int64, wantSHA256 string) ([]Entry, error) {
	h := sha256.New()
	if wantBytes > 0 {
		r = io.LimitReader(r, wantBytes+1)
	}
	counted := &countingWriter{w: h}
	entries, err := Entries(io.TeeReader(r, counted), carBytes)
	if err == nil {
		err = objectSum{wantBytes, wantSHA256}.check(counted.n, h.Sum(nil))
	}
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// add reads the CAR's index object, checks it against what was validated
// (want), and adds its entries; only ctx's end is an error.
func (l *Loader) add(ctx context.Context, log *slog.Logger, car CAR, indexKey string, want objectSum) error {
	log = log.With("car_cid", car.CarCID, "index", indexKey)
	var entries []Entry
	var bad, missing error
	err := l.retry(ctx, "read index", func() error {
		rc, err := l.cfg.Objects.ReadRange(ctx, indexKey, 0, -1)
		if err != nil {
			if l.cfg.IsNotFound(err) {
				missing = err
				return nil
			}
			return err
		}
		defer rc.Close()
		entries, err = ValidatedEntries(rc, car.Bytes, want.bytes, want.sha256)
		if errors.Is(err, ErrBadIndex) {
			bad = err
			return nil
		}
		return err
	})
	switch {
	case err != nil:
		return err
	case missing != nil:
		l.stats.missing.Add(1)
		log.WarnContext(ctx, "skipped a CAR whose index object is missing", "err", missing)
		return nil
	case bad != nil:
		l.stats.badIndex.Add(1)
		log.ErrorContext(ctx, "skipped a CAR whose index object is bad", "err", bad)
		return nil
	}
	err = l.retry(ctx, "add CAR", func() error {
		err := l.cfg.Store.Add(ctx, car, entries)
		if errors.Is(err, ErrInvalid) {
			bad = err
			return nil
		}
		return err
	})
	switch {
	case err != nil:
		return err
	case bad != nil:
		l.stats.badIndex.Add(1)
		log.ErrorContext(ctx, "skipped a CAR the store refuses", "err", bad)
		return nil
	}
	l.stats.added.Add(1)
	log.DebugContext(ctx, "added", "blocks", len(entries))
	return nil
}

// retry runs fn until it returns nil or ctx is done, waiting RetryDelay,
// doubled each time up to a minute, between tries.
func (l *Loader) retry(ctx context.Context, what string, fn func() error) error {
	wait := l.cfg.RetryDelay
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.logger.WarnContext(ctx, "failed; trying again", "op", what, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// Rebuild adds to the store every CAR lister lists, with its index object
// (at IndexKey of its key), skipping those already there: on an empty
// store, it rebuilds the whole lookup from the carpark alone; interrupted,
// it is resumed by running it again. It then moves the store's checkpoint
// to the log's head as it was before the listing began (every CAR
// validated by then was in the carpark to be listed), so that Run goes on
// from there. A CAR without a known CAR CID or root, or with a bad or
// missing index, is logged, counted and skipped.
func (l *Loader) Rebuild(ctx context.Context, lister Lister) (LoaderStats, error) {
	before := l.Stats()
	head, err := l.cfg.Log.Head(ctx)
	if err != nil {
		return LoaderStats{}, fmt.Errorf("rebuild block lookup: %w", err)
	}
	err = lister.ListCars(ctx, "", func(car CAR) error {
		log := l.logger.With("key", car.Key)
		if !car.CarCID.Defined() || !car.Root.Defined() {
			l.stats.badEvent.Add(1)
			log.WarnContext(ctx, "skipped a CAR without its CAR CID or root")
			return nil
		}
		var known bool
		if err := l.retry(ctx, "look up CAR", func() (err error) { known, err = l.cfg.Store.Has(ctx, car.CarCID); return err }); err != nil {
			return err
		}
		if known {
			l.stats.known.Add(1)
			return nil
		}
		return l.add(ctx, log, car, l.cfg.IndexKey(car.Key), objectSum{})
	})
	if err == nil {
		err = l.cfg.Store.SetCheckpoint(ctx, head)
	}
	after := l.Stats()
	done := LoaderStats{
		Added: after.Added - before.Added, Known: after.Known - before.Known, NoIndex: after.NoIndex - before.NoIndex,
		BadIndex: after.BadIndex - before.BadIndex, Missing: after.Missing - before.Missing, BadEvent: after.BadEvent - before.BadEvent,
	}
	if err != nil {
		return done, fmt.Errorf("rebuild block lookup: %w", err)
	}
	l.logger.InfoContext(ctx, "rebuilt", "added", done.Added, "known", done.Known, "bad_index", done.BadIndex, "missing", done.Missing, "skipped", done.BadEvent)
	return done, nil
}

// countingWriter counts what it passes on.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
