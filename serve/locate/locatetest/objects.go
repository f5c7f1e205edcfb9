package locatetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrNotFound is Objects' answer for a key it does not hold.
var ErrNotFound = errors.New("object not found")

// Objects is a carpark in memory, keys to bytes, for the tests of what
// reads index objects by key (the lookup's loader, the IPNI publisher);
// the carpark's own backends pass their conformance suite
// (fetcher/carstore/carstoretest) against versitygw and a directory. It is
// safe for concurrent use.
type Objects struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewObjects returns an empty carpark.
func NewObjects() *Objects { return &Objects{m: make(map[string][]byte)} }

// Put stores b at key.
func (o *Objects) Put(key string, b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m[key] = b
}

// Remove deletes the object at key.
func (o *Objects) Remove(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, key)
}

// ReadRange returns length bytes from offset of the object at key (to its
// end for a negative length), as fetcher/carstore's stores do; a key not
// held wraps ErrNotFound.
func (o *Objects) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, ok := o.m[key]
	if !ok {
		return nil, fmt.Errorf("read %s: %w", key, ErrNotFound)
	}
	b = b[offset:]
	if length >= 0 {
		b = b[:min(int64(len(b)), length)]
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
