package carstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
)

// carparkPath is the file of a carpark key.
func (d *Dir) carparkPath(key string) string {
	return filepath.Join(d.root, dirCarpark, filepath.FromSlash(key))
}

// PutIndex stores idx, the CARv2 index of the CAR st, at IndexKey(st.Key)
// beside it, and the root's mapping at RootMapKey; its outcomes and its
// rule for an index already there are S3.PutIndex's. The index is written
// whole and synced in tmp/, then linked into place (a link never replaces
// a file), or renamed over what is there when that is not an index of
// this CAR.
func (d *Dir) PutIndex(ctx context.Context, st Stored, idx []byte) (string, error) {
	idxKey, mapKey, entries, err := indexArgs(st, idx)
	if err != nil {
		return "", fmt.Errorf("put index of %s: %w", st.Key, err)
	}
	fail := func(err error) (string, error) { return "", fmt.Errorf("put index %s: %w", idxKey, err) }
	if _, err := os.Stat(d.carparkPath(st.Key)); errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Errorf("CAR %s: %w", st.Key, ErrNotFound))
	} else if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	dst := d.carparkPath(idxKey)
	if have, err := os.ReadFile(dst); err == nil && (bytes.Equal(have, idx) || sameIndex(have, entries)) {
		return d.putMapping(idxKey, mapKey)
	}
	f, err := os.CreateTemp(filepath.Join(d.root, dirTmp), strings.ReplaceAll(idxKey, "/", "~")+"."+d.owner+"-*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(idx)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	err = os.Link(f.Name(), dst)
	switch {
	case err == nil:
		err = syncDir(filepath.Dir(dst))
	case errors.Is(err, fs.ErrExist):
		have, rerr := os.ReadFile(dst)
		if rerr == nil && (bytes.Equal(have, idx) || sameIndex(have, entries)) {
			err = nil
			break
		}
		d.log.WarnContext(ctx, "replacing a file that is not the CAR's index", "key", idxKey, "bytes", len(have))
		err = renameSynced(f.Name(), dst)
	}
	if err != nil {
		return fail(err)
	}
	return d.putMapping(idxKey, mapKey)
}

func (d *Dir) putMapping(idxKey, mapKey string) (string, error) {
	path := d.carparkPath(mapKey)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("put mapping %s: %w", mapKey, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return idxKey, nil
	}
	if err != nil {
		return "", fmt.Errorf("put mapping %s: %w", mapKey, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("put mapping %s: %w", mapKey, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("put mapping %s: %w", mapKey, err)
	}
	return idxKey, nil
}

// ReadRange returns length bytes from offset of the carpark file at key;
// its outcomes are S3.ReadRange's.
func (d *Dir) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := checkReadKey(key); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if err := checkRange(offset, length); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	f, err := os.Open(d.carparkPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err == nil && offset > fi.Size() {
		err = fmt.Errorf("%w: offset %d past the end (%d bytes)", ErrInvalid, offset, fi.Size())
	}
	if err == nil {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// DeleteRoot deletes the CARs of root that its mappings name (each with
// its metadata and index), then the mappings, and returns how many
// objects (CARs, indexes, mappings) it deleted; its outcomes are
// S3.DeleteRoot's.
func (d *Dir) DeleteRoot(ctx context.Context, root cid.Cid) (int, error) {
	if !root.Defined() {
		return 0, fmt.Errorf("delete root: %w: no root CID", ErrInvalid)
	}
	rootDir := d.carparkPath(root.String())
	entries, err := os.ReadDir(rootDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("delete root %s: %w", root, err)
	}
	n := 0
	remove := func(path string, count bool) error {
		err := os.Remove(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil && count {
			n++
		}
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("delete root %s: %w", root, err)
		}
		c, err := cid.Decode(e.Name())
		if err != nil || c.String() != e.Name() || c.Type() != CodecCAR {
			continue
		}
		key := CarKey(c)
		for _, p := range []struct {
			path  string
			count bool
		}{{d.carparkPath(key), true}, {d.carparkPath(IndexKey(key)), true}, {d.metaPath(c), false}} {
			if err := remove(p.path, p.count); err != nil {
				return n, fmt.Errorf("delete root %s: %w", root, err)
			}
		}
		_ = os.Remove(filepath.Dir(d.carPath(c))) // if empty
		if err := remove(filepath.Join(rootDir, e.Name()), true); err != nil {
			return n, fmt.Errorf("delete root %s: %w", root, err)
		}
	}
	_ = os.Remove(rootDir) // if empty
	if err := syncDir(filepath.Join(d.root, dirCarpark)); err != nil {
		return n, fmt.Errorf("delete root %s: %w", root, err)
	}
	if n > 0 {
		d.log.InfoContext(ctx, "root deleted from the carpark", "root", root, "objects", n)
	}
	return n, nil
}

// ListCars calls fn for every CAR in the carpark whose key sorts after
// after, in key order; its outcomes are S3.ListCars'.
func (d *Dir) ListCars(ctx context.Context, after string, fn func(Stored) error) error {
	entries, err := os.ReadDir(filepath.Join(d.root, dirCarpark))
	if err != nil {
		return fmt.Errorf("list CARs: %w", err)
	}
	var cars []cid.Cid
	for _, e := range entries {
		c, err := cid.Decode(e.Name())
		if err != nil || c.String() != e.Name() || c.Type() != CodecCAR || CarKey(c) <= after {
			continue
		}
		cars = append(cars, c)
	}
	slices.SortFunc(cars, func(a, b cid.Cid) int { return strings.Compare(CarKey(a), CarKey(b)) })
	for _, c := range cars {
		st, ok, err := d.Stat(ctx, cid.Undef, c)
		if err != nil {
			return fmt.Errorf("list CARs: %w", err)
		}
		if !ok {
			continue // a directory without its CAR, or deleted since
		}
		if err := fn(st); err != nil {
			return err
		}
	}
	return nil
}
