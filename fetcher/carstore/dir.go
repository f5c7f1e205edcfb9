package carstore

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
)

// The directories of a Dir store, under its root.
const (
	dirStaging = "staging" // staged CARs, at their keys
	dirCarpark = "carpark" // <carCid>/<carCid>.car and its metadata, <carCid>/<carCid>.json
	dirUploads = "uploads" // CARs being written
	dirTmp     = "tmp"     // metadata files being written
	dirLocks   = "locks"   // one lock file per live store: the owner of the files in uploads/ and tmp/
)

// writeBuffer batches the small writes of a CAR (one per block) into fewer
// system calls.
const writeBuffer = 1 << 20

// Dir is the store in a local directory: the embedded default. A CAR being
// written is a file in uploads/; Complete syncs it and renames it into
// staging/, and Promote, after reading it back to validate it, renames it
// into carpark/. A file is renamed into place only once whole and synced, so
// a crash never leaves a partial CAR where a reader would take it for a
// whole one. Metadata is a JSON file beside each carpark CAR, written before
// the CAR appears.
//
// It is safe for concurrent use, also by several processes sharing the
// directory.
//
// What a killed process left is removed when a store opens the directory
// (see the package doc, "What a killed attempt leaves"): each store holds a
// lock file of its own in locks/, locked (flock) while it lives, and names
// its files in uploads/ and tmp/ after it, so that NewDir can tell the files
// of a dead process from those of a live one sharing the directory.
type Dir struct {
	root string
	log  *slog.Logger
	// owner names this store's files in uploads/ and tmp/; lock is its
	// lock file, locks/<owner>, held until Close.
	owner string
	lock  *os.File
}

// NewDir returns the store in root, creating its directories as needed,
// and removes from uploads/ and tmp/ what processes that died left there
// (staged CARs wait for Sweep, which knows whose attempts are over).
func NewDir(root string, logger *slog.Logger) (*Dir, error) {
	if root == "" {
		return nil, fmt.Errorf("%w: no directory for the CAR store", ErrInvalid)
	}
	for _, d := range []string{dirStaging, dirCarpark, dirUploads, dirTmp, dirLocks} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("create CAR store in %s: %w", root, err)
		}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Dir{root: root, log: logger.With("component", "carstore", "store", "dir")}
	if err := d.takeOwnership(); err != nil {
		return nil, fmt.Errorf("create CAR store in %s: lock: %w", root, err)
	}
	n, err := d.removeDead()
	if err != nil {
		d.log.Warn("removing what dead processes left in uploads/ and tmp/", "err", err)
	}
	if n > 0 {
		d.log.Info("removed what dead processes left in uploads/ and tmp/", "files", n)
	}
	return d, nil
}

// Close releases the store's lock and removes its lock file; the store's
// files left in uploads/ and tmp/ are then any later store's to remove.
// The store must not be used afterwards. A process that exits without
// Close releases the lock all the same (the kernel does).
func (d *Dir) Close() error {
	if d.lock == nil {
		return nil
	}
	err := removeIfExists(d.lock.Name())
	if cerr := d.lock.Close(); err == nil {
		err = cerr
	}
	d.lock = nil
	return err
}

// takeOwnership creates and locks this store's lock file. A sweeper may
// lock a lock file between its creation and its locking, take its owner
// for dead, and remove it: the lock is taken again under a new name then.
func (d *Dir) takeOwnership() error {
	for try := 0; ; try++ {
		var b [6]byte
		_, _ = rand.Read(b[:])
		owner := "p" + strconv.Itoa(os.Getpid()) + "x" + hex.EncodeToString(b[:])
		path := filepath.Join(d.root, dirLocks, owner)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if err := lockOwner(f); err != nil {
			f.Close()
			_ = os.Remove(path)
			return err
		}
		at, err1 := os.Stat(path)
		held, err2 := f.Stat()
		if err1 == nil && err2 == nil && os.SameFile(at, held) {
			d.owner, d.lock = owner, f
			return nil
		}
		f.Close()
		if try == 2 {
			return fmt.Errorf("lock file %s removed as soon as created", path)
		}
	}
}

// ownerOf returns the owner a file of uploads/ or tmp/ is named after
// (<name>.<owner>-<random>), or "" for a file named before stores had
// owners.
func ownerOf(name string) string {
	suffix := name[strings.LastIndexByte(name, '.')+1:]
	owner, _, ok := strings.Cut(suffix, "-")
	if !ok || len(owner) < 2 || owner[0] != 'p' || strings.ContainsFunc(owner, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z')
	}) {
		return ""
	}
	return owner
}

// ownerLive reports whether the store that owns files named after owner
// still runs: its lock file is there and locked. A lock file found
// unlocked is removed (its owner died).
func (d *Dir) ownerLive(owner string) (bool, error) {
	if owner == d.owner {
		return true, nil
	}
	path := filepath.Join(d.root, dirLocks, owner)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	held, err := tryLockOwner(f)
	if err != nil || held {
		return held, err
	}
	return false, removeIfExists(path)
}

// removeDead removes the files in uploads/ and tmp/ whose owner is dead (or
// that have none), and the lock files of dead owners. The directories are
// listed before the owners are checked: a store's lock file exists before
// any file named after it.
func (d *Dir) removeDead() (int, error) {
	byOwner := map[string][]string{}
	for _, dir := range []string{dirUploads, dirTmp} {
		entries, err := os.ReadDir(filepath.Join(d.root, dir))
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			owner := ownerOf(e.Name())
			byOwner[owner] = append(byOwner[owner], filepath.Join(d.root, dir, e.Name()))
		}
	}
	locks, err := os.ReadDir(filepath.Join(d.root, dirLocks))
	if err != nil {
		return 0, err
	}
	for _, e := range locks {
		if _, ok := byOwner[e.Name()]; !ok {
			byOwner[e.Name()] = nil
		}
	}
	n := 0
	var errs []error
	for owner, paths := range byOwner {
		if owner != "" {
			live, err := d.ownerLive(owner)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if live {
				continue
			}
		}
		for _, path := range paths {
			if err := removeIfExists(path); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

func (d *Dir) stagedPath(key string) string {
	return filepath.Join(d.root, dirStaging, filepath.FromSlash(key))
}

func (d *Dir) carPath(carCID cid.Cid) string {
	return filepath.Join(d.root, dirCarpark, filepath.FromSlash(CarKey(carCID)))
}

func (d *Dir) metaPath(carCID cid.Cid) string {
	s := carCID.String()
	return filepath.Join(d.root, dirCarpark, s, s+".json")
}

// uploadName is the pattern of the file name of an upload in progress: its
// key with slashes as tildes, so that OpenUploads and Discard can name it,
// then its owner and a random suffix.
func (d *Dir) uploadName(key string) string {
	return strings.ReplaceAll(key, "/", "~") + "." + d.owner + "-*"
}

// Stage begins writing a CAR to the staging key. meta is checked but not
// kept: Promote takes the metadata from Expected.
func (d *Dir) Stage(ctx context.Context, key string, meta Metadata) (Upload, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	if err := meta.validate(); err != nil {
		return nil, fmt.Errorf("stage %s: %w", key, err)
	}
	f, err := os.CreateTemp(filepath.Join(d.root, dirUploads), d.uploadName(key))
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", key, err)
	}
	u := &dirUpload{d: d, ctx: ctx, key: key, f: f, full: sha256.New()}
	u.w = bufio.NewWriterSize(io.MultiWriter(f, u.full), writeBuffer)
	return u, nil
}

// dirUpload writes a CAR to a temporary file.
type dirUpload struct {
	d    *Dir
	ctx  context.Context // Stage's: the upload's writes stop when it is done
	key  string
	full hash.Hash

	mu    sync.Mutex
	state uploadState
	f     *os.File
	w     *bufio.Writer
	total int64
}

func (u *dirUpload) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state != stateOpen {
		return 0, fmt.Errorf("write to upload of %s: %w", u.key, ErrClosed)
	}
	if err := u.ctx.Err(); err != nil {
		return 0, fmt.Errorf("write to upload of %s: %w", u.key, context.Cause(u.ctx))
	}
	n, err := u.w.Write(p)
	u.total += int64(n)
	if err != nil {
		return n, fmt.Errorf("write to upload of %s: %w", u.key, err)
	}
	return n, nil
}

// HashesCAR marks the upload as one that computes the CAR CID of what it is
// given (Staged.CarCID), so a writer need not hash the CAR again (see
// dag.HashingSink).
func (u *dirUpload) HashesCAR() {}

// Complete syncs the file and renames it to the staging key.
func (u *dirUpload) Complete(ctx context.Context) (Staged, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state != stateOpen {
		return Staged{}, fmt.Errorf("complete upload of %s: %w", u.key, ErrClosed)
	}
	if err := u.complete(ctx); err != nil {
		u.state = stateBroken
		if cerr := u.cleanup(); cerr != nil {
			u.d.log.WarnContext(ctx, "cleanup of a failed upload failed; Abort retries it", "key", u.key, "err", cerr)
		}
		return Staged{}, fmt.Errorf("complete upload of %s: %w", u.key, err)
	}
	u.state = stateCompleted
	return Staged{Key: u.key, Bytes: u.total, CarCID: CarCID(u.full.Sum(nil))}, nil
}

func (u *dirUpload) complete(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := u.ctx.Err(); err != nil {
		return context.Cause(u.ctx)
	}
	if err := u.w.Flush(); err != nil {
		return err
	}
	if err := u.f.Sync(); err != nil {
		return err
	}
	if err := u.f.Close(); err != nil {
		return err
	}
	dst := u.d.stagedPath(u.key)
	// Promote prunes emptied staging directories; one may vanish between
	// the MkdirAll and the rename, so try again.
	for try := 0; ; try++ {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		err := renameSynced(u.f.Name(), dst)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || try == 2 {
			return err
		}
	}
}

// Abort removes the file, written or staged.
func (u *dirUpload) Abort(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state == stateAborted {
		return nil
	}
	if err := u.cleanup(); err != nil {
		u.state = stateBroken
		return fmt.Errorf("abort upload of %s: %w", u.key, err)
	}
	u.state = stateAborted
	return nil
}

func (u *dirUpload) cleanup() error {
	_ = u.f.Close() // already closed after a Complete; its error is moot
	err := os.Remove(u.f.Name())
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if u.state == stateCompleted || u.state == stateBroken {
		if rerr := removeIfExists(u.d.stagedPath(u.key)); rerr != nil {
			err = errors.Join(err, rerr)
		}
		u.d.pruneStaging(u.d.stagedPath(u.key))
	}
	return err
}

// Promote validates the staged CAR by reading it back (its size, and that
// its bytes hash to want.CarCID), writes its metadata, and renames it into
// the carpark. Its outcomes are those of S3.Promote; a rename being atomic,
// there is no half-promoted state.
func (d *Dir) Promote(ctx context.Context, stagedKey string, want Expected) (Stored, error) {
	stored, err := promotion(stagedKey, want)
	if err != nil {
		return Stored{}, err
	}
	fail := func(err error) (Stored, error) {
		return Stored{}, fmt.Errorf("promote %s to %s: %w", stagedKey, stored.Key, err)
	}
	staged := d.stagedPath(stagedKey)

	if have, ok, err := d.Stat(ctx, want.Root, want.CarCID); err != nil {
		return fail(err)
	} else if ok && have.Bytes == want.Bytes && have.Root == want.Root {
		if err := removeIfExists(staged); err != nil {
			return fail(err)
		}
		d.pruneStaging(staged)
		return have, nil
	}

	if err := d.validate(staged, want); err != nil {
		if errors.Is(err, ErrValidation) {
			if rerr := removeIfExists(staged); rerr != nil {
				d.log.WarnContext(ctx, "delete of a CAR that failed validation failed", "key", stagedKey, "err", rerr)
			}
			d.pruneStaging(staged)
		}
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	dst := d.carPath(want.CarCID)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fail(err)
	}
	if err := d.writeMeta(ctx, stagedKey, want); err != nil {
		return fail(err)
	}
	step(ctx, StepMetadataPlaced)
	if err := renameSynced(staged, dst); err != nil {
		return fail(err)
	}
	d.pruneStaging(staged)
	d.log.DebugContext(ctx, "CAR promoted", "key", stored.Key, "staged", stagedKey, "bytes", want.Bytes)
	return stored, nil
}

func (d *Dir) validate(staged string, want Expected) error {
	f, err := os.Open(staged)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: no staged CAR", ErrValidation)
	}
	if err != nil {
		return fmt.Errorf("read staged CAR back: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read staged CAR back: %w", err)
	}
	if fi.Size() != want.Bytes {
		return fmt.Errorf("%w: staged CAR has %d bytes, want %d", ErrValidation, fi.Size(), want.Bytes)
	}
	ok, err := hashMatches(f, want.CarCID, want.Bytes)
	if err != nil {
		return fmt.Errorf("read staged CAR back: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w: stored bytes do not hash to %s", ErrValidation, want.CarCID)
	}
	return nil
}

// dirMeta is the JSON metadata file of a carpark CAR.
type dirMeta struct {
	Root      string `json:"root-cid"`
	RequestID string `json:"request-id"`
	CarCID    string `json:"car-cid"`
	Structure string `json:"structure"`
}

// writeMeta writes the metadata file of a CAR about to enter the carpark,
// through tmp/, under a name Discard finds by the staged key's request.
func (d *Dir) writeMeta(ctx context.Context, stagedKey string, want Expected) error {
	b, err := json.Marshal(dirMeta{
		Root: want.Root.String(), RequestID: want.RequestID,
		CarCID: want.CarCID.String(), Structure: StructureComplete,
	})
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(d.root, dirTmp), strings.ReplaceAll(stagedKey, "/", "~")+".json."+d.owner+"-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		step(ctx, StepMetadataWritten)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = renameSynced(f.Name(), d.metaPath(want.CarCID))
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write metadata: %w", err)
	}
	return nil
}

// Stat reports whether the carpark holds the CAR carCID (of root: the
// directory store keeps CARs by their CAR CID alone), and its size and
// metadata.
func (d *Dir) Stat(ctx context.Context, root, carCID cid.Cid) (Stored, bool, error) {
	if err := checkCarCID(carCID); err != nil {
		return Stored{}, false, fmt.Errorf("stat: %w", err)
	}
	key := CarKey(carCID)
	fi, err := os.Stat(d.carPath(carCID))
	if errors.Is(err, fs.ErrNotExist) {
		return Stored{}, false, nil
	}
	if err != nil {
		return Stored{}, false, fmt.Errorf("stat %s: %w", key, err)
	}
	st := Stored{Key: key, Bytes: fi.Size(), CarCID: carCID}
	b, err := os.ReadFile(d.metaPath(carCID))
	if errors.Is(err, fs.ErrNotExist) {
		// A CAR put there by hand: present, with no metadata (so Promote
		// replaces it, and writes its metadata).
		return st, true, nil
	}
	if err != nil {
		return Stored{}, false, fmt.Errorf("stat %s: metadata: %w", key, err)
	}
	var m dirMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return Stored{}, false, fmt.Errorf("stat %s: metadata: %w", key, err)
	}
	st.Root, _ = cid.Decode(m.Root)
	st.RequestID, st.Structure = m.RequestID, m.Structure
	return st, true, nil
}

// Open returns the bytes of the CAR at key in the carpark, or ErrNotFound.
func (d *Dir) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	carCID, err := dirCarCID(key)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	f, err := os.Open(d.carPath(carCID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", CarKey(carCID), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", CarKey(carCID), err)
	}
	return f, nil
}

// dirCarCID is the CAR CID of a carpark key of the directory store, which
// keeps CARs at <carCid>/<carCid>.car: a rename moves a staged CAR into
// place without writing it again, so its key can wait for its CAR CID.
func dirCarCID(key string) (cid.Cid, error) {
	c, err := parseCarparkKey(key)
	if err != nil {
		return cid.Undef, err
	}
	if err := checkCarCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

// OpenUploads lists the CARs being written, and those a crashed process
// left in uploads/.
func (d *Dir) OpenUploads(ctx context.Context) ([]OpenUpload, error) {
	entries, err := os.ReadDir(filepath.Join(d.root, dirUploads))
	if err != nil {
		return nil, fmt.Errorf("list open uploads: %w", err)
	}
	out := make([]OpenUpload, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			name = name[:i]
		}
		u := OpenUpload{Area: AreaStaging, Key: strings.ReplaceAll(name, "~", "/")}
		if fi, err := e.Info(); err == nil {
			u.Initiated = fi.ModTime()
		}
		out = append(out, u)
	}
	return out, nil
}

// renameSynced renames src to dst and syncs the directories involved, so
// that the rename survives a crash.
func renameSynced(src, dst string) error {
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	if filepath.Dir(src) != filepath.Dir(dst) {
		return syncDir(filepath.Dir(src))
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// pruneStaging removes the directories above a staged file that it left
// empty (one per request), so that staging/ does not fill with them.
func (d *Dir) pruneStaging(staged string) {
	top := filepath.Join(d.root, dirStaging)
	for dir := filepath.Dir(staged); dir != top && strings.HasPrefix(dir, top); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // not empty, or gone
			return
		}
	}
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
