package carupload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/ipfs/go-cid"
)

// ErrNotFound: no upload has the key.
var ErrNotFound = errors.New("no such upload")

// Upload is one upload opened for reading. It is safe for concurrent
// ReadAt; Sections is for one goroutine.
type Upload interface {
	io.ReaderAt
	// Sections calls fn for each section of the upload, in its order.
	Sections(fn func(c cid.Cid, s Section) error) error
	Close() error
}

// Dir is the uploads area in a local directory (`<car-dir>/received` for
// `pickup run`): an upload is two files, <key>.car and <key>.idx (its
// section index), each written under a temporary name and renamed into
// place once whole and synced, so a reader never sees half an upload. It
// is safe for concurrent use, also by several processes sharing the
// directory (a gateway and a fetcher on one machine).
type Dir struct {
	root   string
	limits Limits
	log    *slog.Logger
}

// NewDir returns the uploads area in root, created if need be. Zero limits
// take their defaults; a nil logger discards.
func NewDir(root string, limits Limits, logger *slog.Logger) (*Dir, error) {
	if root == "" {
		return nil, errors.New("carupload: no directory for uploads")
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create the uploads area in %s: %w", root, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Dir{root: root, limits: limits.WithDefaults(), log: logger.With("component", "carupload", "store", "dir")}, nil
}

// Limits returns the limits in force.
func (d *Dir) Limits() Limits { return d.limits }

// NewKey names a new upload of the request id: <request id>.<8 hex
// digits, random>. Each upload has its own key, so that of two sent at once
// for one request (keyed twins), neither overwrites the other.
func NewKey(requestID uuid.UUID) string {
	nonce := uuid.New()
	return fmt.Sprintf("%s.%x", requestID, nonce[:4])
}

// RequestIDOf returns the request id an upload's key names.
func RequestIDOf(key string) (uuid.UUID, bool) {
	s, _, _ := strings.Cut(key, ".")
	id, err := uuid.Parse(s)
	return id, err == nil && len(s) == 36
}

func checkKey(key string) error {
	if key == "" || strings.ContainsAny(key, `/\`) || strings.HasPrefix(key, ".") {
		return fmt.Errorf("carupload: bad key %q", key)
	}
	return nil
}

func (d *Dir) path(key, ext string) string { return filepath.Join(d.root, key+ext) }

// Receive keeps the CARv1 body as the upload key, checked as it arrives
// (see the package doc and Receive). On any error nothing of it is left.
func (d *Dir) Receive(ctx context.Context, key string, root cid.Cid, body io.Reader) (Received, error) {
	if err := checkKey(key); err != nil {
		return Received{}, err
	}
	car, err := os.CreateTemp(d.root, "."+key+".car-*")
	if err != nil {
		return Received{}, fmt.Errorf("receive upload %s: %w", key, err)
	}
	idx, err := os.CreateTemp(d.root, "."+key+".idx-*")
	if err != nil {
		car.Close()
		os.Remove(car.Name())
		return Received{}, fmt.Errorf("receive upload %s: %w", key, err)
	}
	done := false
	defer func() {
		if !done {
			car.Close()
			idx.Close()
			os.Remove(car.Name())
			os.Remove(idx.Name())
		}
	}()
	res, err := Receive(ctxReader{ctx: ctx, r: body}, car, idx, root, d.limits)
	if err != nil {
		return Received{}, err
	}
	res.Key = key
	for _, f := range []*os.File{car, idx} {
		if err := f.Sync(); err != nil {
			return Received{}, fmt.Errorf("receive upload %s: %w", key, err)
		}
		if err := f.Close(); err != nil {
			return Received{}, fmt.Errorf("receive upload %s: %w", key, err)
		}
	}
	// The index goes first: an upload whose .car is there is whole.
	if err := os.Rename(idx.Name(), d.path(key, ".idx")); err != nil {
		return Received{}, fmt.Errorf("receive upload %s: %w", key, err)
	}
	if err := os.Rename(car.Name(), d.path(key, ".car")); err != nil {
		os.Remove(d.path(key, ".idx"))
		return Received{}, fmt.Errorf("receive upload %s: %w", key, err)
	}
	done = true
	d.log.InfoContext(ctx, "upload received", "key", key, "bytes", res.Bytes, "blocks", res.Blocks)
	return res, nil
}

// Open opens the upload key for reading, or ErrNotFound.
func (d *Dir) Open(ctx context.Context, key string) (Upload, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(d.path(key, ".car"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open upload %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open upload %s: %w", key, err)
	}
	return &dirUpload{File: f, index: d.path(key, ".idx")}, nil
}

// Delete removes the upload key; one that is not there is no error.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	var errs []error
	for _, ext := range []string{".car", ".idx"} {
		if err := os.Remove(d.path(key, ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete upload %s: %w", key, err)
	}
	return nil
}

// Kept is an upload in the area, as List finds it.
type Kept struct {
	Key string
	// Modified is when it was received (or, for Partial, last written).
	Modified time.Time
	// Partial marks what a receiving process killed mid-body left: never
	// a whole upload.
	Partial bool
}

// List returns what the area holds: its uploads, and what receiving
// processes killed mid-body left (Partial, named by the file).
func (d *Dir) List(ctx context.Context) ([]Kept, error) {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	var out []Kept
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue // removed since
		}
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "."):
			out = append(out, Kept{Key: name, Modified: info.ModTime(), Partial: true})
		case strings.HasSuffix(name, ".car"):
			out = append(out, Kept{Key: strings.TrimSuffix(name, ".car"), Modified: info.ModTime()})
		}
	}
	return out, nil
}

// DeletePartial removes what List reported as Partial.
func (d *Dir) DeletePartial(ctx context.Context, name string) error {
	if !strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return fmt.Errorf("carupload: %q is no partial upload", name)
	}
	if err := os.Remove(filepath.Join(d.root, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete partial upload: %w", err)
	}
	return nil
}

type dirUpload struct {
	*os.File
	index string
}

func (u *dirUpload) Sections(fn func(cid.Cid, Section) error) error {
	f, err := os.Open(u.index)
	if err != nil {
		return fmt.Errorf("open upload index: %w", err)
	}
	defer f.Close()
	return ReadIndex(f, fn)
}

// ctxReader ends a body's reads when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
