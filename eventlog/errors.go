package eventlog

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by a store after Close.
	ErrClosed = errors.New("event log closed")
	// ErrInvalid marks input a store refuses: a bad stream name or event.
	ErrInvalid = errors.New("invalid")
	// ErrDuplicateID is returned when an appended event's id is already in
	// its stream, and the append is not a retry of the one that put it there.
	ErrDuplicateID = errors.New("event id already used")
)

// WrongRevisionError is the refusal of an append whose expected state did not
// match the stream's.
type WrongRevisionError struct {
	Stream   string
	Expected Expected
	// Current is the revision of the stream's last event; Exists is false
	// when the stream has no events.
	Current uint64
	Exists  bool
}

func (e *WrongRevisionError) Error() string {
	actual := "no stream"
	if e.Exists {
		actual = fmt.Sprintf("revision %d", e.Current)
	}
	return fmt.Sprintf("append to %s: expected %s, stream is at %s", e.Stream, e.Expected, actual)
}

// IsWrongRevision reports whether err is, or wraps, a *WrongRevisionError.
func IsWrongRevision(err error) bool {
	var w *WrongRevisionError
	return errors.As(err, &w)
}
