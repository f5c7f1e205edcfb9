// Package sqlite is the block-location lookup in one SQLite file (through
// internal/sqlite): the embedded deployment's store, data/locate.db by
// default.
//
// A CAR is a row of cars; each of its blocks a row of blocks keyed by
// (multihash, CAR id), so that a lookup is one search of the blocks' key
// joined to the CAR's row, and a block row holds the multihash, a small
// integer and two offsets.
package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pickup-ipfs/pickup/eventlog"
	db "github.com/pickup-ipfs/pickup/internal/sqlite"
	"github.com/pickup-ipfs/pickup/serve/locate"
)

// DefaultPath is where the embedded deployment keeps the lookup.
const DefaultPath = "data/locate.db"

// Options tune a Store. The zero value of each field means its default.
type Options struct {
	// Readers is the most connections reading at once. Default 8.
	Readers int
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.Readers < 0 {
		return fmt.Errorf("sqlite block lookup: negative reader count %d", o.Readers)
	}
	return nil
}

// Store is the lookup in a SQLite file. It is safe for concurrent use;
// several Stores, in one process or many, may share a file.
type Store struct {
	path    string
	readers *db.Pool

	mu     sync.Mutex // holds writer
	writer *db.Conn
}

var _ locate.Store = (*Store)(nil)

const schema = `
CREATE TABLE IF NOT EXISTS cars (
	id      INTEGER PRIMARY KEY,
	car_cid BLOB NOT NULL UNIQUE,
	root    BLOB NOT NULL,
	key     TEXT NOT NULL,
	bytes   INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS blocks (
	mh  BLOB NOT NULL,
	car INTEGER NOT NULL,
	off INTEGER NOT NULL,
	len INTEGER NOT NULL,
	PRIMARY KEY (mh, car)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blocks_car ON blocks (car);
CREATE TABLE IF NOT EXISTS checkpoint (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	position INTEGER NOT NULL
) STRICT;
INSERT OR IGNORE INTO checkpoint (id, position) VALUES (1, 0);
`

// Open opens the lookup in the file at path, creating the file and its
// directory if needed.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Readers == 0 {
		opts.Readers = 8
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open block lookup: %w", err)
		}
	}
	// 16 KiB pages: an Add writes thousands of rows a transaction, and
	// fewer, bigger pages suit that (internal/sqlite.OpenPaged).
	w, err := db.OpenPaged(ctx, path, 16<<10)
	if err != nil {
		return nil, fmt.Errorf("open block lookup: %w", err)
	}
	tx, err := w.BeginImmediate()
	if err == nil {
		if err = w.Exec(schema); err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
	}
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open block lookup %s: schema: %w", path, err)
	}
	return &Store{path: path, writer: w, readers: db.NewPool(path, opts.Readers, nil)}, nil
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Close closes the store's connections.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.readers.Close()
	if s.writer != nil {
		err = errors.Join(err, s.writer.Close())
		s.writer = nil
	}
	return err
}

// read runs fn on a reader connection.
func (s *Store) read(ctx context.Context, fn func(*db.Conn) error) error {
	c, err := s.readers.Get(ctx)
	if err != nil {
		return err
	}
	defer s.readers.Put(c)
	old := c.SetInterrupt(ctx)
	defer c.SetInterrupt(old)
	return fn(c)
}

// write runs fn on the writer inside one immediate transaction, committed
// if fn returns nil.
func (s *Store) write(ctx context.Context, fn func(*db.Conn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writer == nil {
		return db.ErrPoolClosed
	}
	w := s.writer
	old := w.SetInterrupt(ctx)
	defer w.SetInterrupt(old)
	tx, err := w.BeginImmediate()
	if err != nil {
		return err
	}
	if err := fn(w); err != nil {
		tx.Rollback()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return tx.Commit()
}

// Locate answers with one query: the blocks' key, joined to the CARs'.
func (s *Store) Locate(ctx context.Context, mh multihash.Multihash) ([]locate.Location, error) {
	var out []locate.Location
	err := s.read(ctx, func(c *db.Conn) error {
		q, err := c.Stmt(`SELECT c.car_cid, c.root, c.key, b.off, b.len FROM blocks b JOIN cars c ON c.id = b.car WHERE b.mh = ?`)
		if err != nil {
			return err
		}
		defer q.Reset()
		q.BindBlob(1, mh)
		for q.Step() {
			carCID, err := cid.Cast(q.ColumnBlob(0, nil))
			if err != nil {
				return fmt.Errorf("CAR CID: %w", err)
			}
			root, err := cid.Cast(q.ColumnBlob(1, nil))
			if err != nil {
				return fmt.Errorf("root: %w", err)
			}
			out = append(out, locate.Location{CarCID: carCID, Root: root, Key: q.ColumnText(2), Offset: q.ColumnInt64(3), Length: q.ColumnInt64(4)})
		}
		return q.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("locate %s: %w", mh.B58String(), err)
	}
	return out, nil
}

// Add writes the CAR and its blocks in one transaction.
func (s *Store) Add(ctx context.Context, car locate.CAR, entries []locate.Entry) error {
	entries, err := locate.Check(car, entries)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(w *db.Conn) error {
		q, err := w.Stmt(`INSERT INTO cars (car_cid, root, key, bytes) VALUES (?, ?, ?, ?) ON CONFLICT (car_cid) DO NOTHING`)
		if err != nil {
			return err
		}
		q.BindBlob(1, car.CarCID.Bytes())
		q.BindBlob(2, car.Root.Bytes())
		q.BindText(3, car.Key)
		q.BindInt64(4, car.Bytes)
		if err := q.Exec(); err != nil {
			return err
		}
		if w.Changes() == 0 {
			return nil // recorded before
		}
		id := w.LastInsertRowID()
		ins, err := w.Stmt(`INSERT INTO blocks (mh, car, off, len) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		for i, e := range entries {
			if i%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			ins.BindBlob(1, e.Multihash)
			ins.BindInt64(2, id)
			ins.BindInt64(3, e.Offset)
			ins.BindInt64(4, e.Length)
			if err := ins.Exec(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add CAR %s: %w", car.CarCID, err)
	}
	return nil
}

// Remove deletes the CAR's blocks, then the CAR.
func (s *Store) Remove(ctx context.Context, carCID cid.Cid) error {
	err := s.write(ctx, func(w *db.Conn) error {
		q, err := w.Stmt(`SELECT id FROM cars WHERE car_cid = ?`)
		if err != nil {
			return err
		}
		q.BindBlob(1, carCID.Bytes())
		if !q.Step() {
			return q.Err()
		}
		id := q.ColumnInt64(0)
		if err := q.Reset(); err != nil {
			return err
		}
		for _, sql := range []string{`DELETE FROM blocks WHERE car = ?`, `DELETE FROM cars WHERE id = ?`} {
			d, err := w.Stmt(sql)
			if err != nil {
				return err
			}
			d.BindInt64(1, id)
			if err := d.Exec(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove CAR %s: %w", carCID, err)
	}
	return nil
}

// Has reports whether the CAR is recorded.
func (s *Store) Has(ctx context.Context, carCID cid.Cid) (bool, error) {
	var has bool
	err := s.read(ctx, func(c *db.Conn) error {
		q, err := c.Stmt(`SELECT 1 FROM cars WHERE car_cid = ?`)
		if err != nil {
			return err
		}
		defer q.Reset()
		q.BindBlob(1, carCID.Bytes())
		has = q.Step()
		return q.Err()
	})
	if err != nil {
		return false, fmt.Errorf("has CAR %s: %w", carCID, err)
	}
	return has, nil
}

// Checkpoint is the loader's position.
func (s *Store) Checkpoint(ctx context.Context) (eventlog.Position, error) {
	var pos eventlog.Position
	err := s.read(ctx, func(c *db.Conn) error {
		q, err := c.Stmt(`SELECT position FROM checkpoint WHERE id = 1`)
		if err != nil {
			return err
		}
		defer q.Reset()
		if q.Step() {
			pos = eventlog.Position(q.ColumnInt64(0))
		}
		return q.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("block lookup checkpoint: %w", err)
	}
	return pos, nil
}

// SetCheckpoint moves the loader's position forwards.
func (s *Store) SetCheckpoint(ctx context.Context, pos eventlog.Position) error {
	err := s.write(ctx, func(w *db.Conn) error {
		q, err := w.Stmt(`UPDATE checkpoint SET position = max(position, ?) WHERE id = 1`)
		if err != nil {
			return err
		}
		q.BindInt64(1, int64(pos))
		return q.Exec()
	})
	if err != nil {
		return fmt.Errorf("set block lookup checkpoint: %w", err)
	}
	return nil
}
