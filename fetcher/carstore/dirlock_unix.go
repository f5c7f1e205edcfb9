//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package carstore

import (
	"errors"
	"os"
	"syscall"
)

// lockOwner takes the owner's lock on f, waiting for it: a sweeper that
// judges the owner dead holds it while it removes the lock file.
func lockOwner(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// tryLockOwner takes the lock on f if no live process holds it: the kernel
// drops a process's flock locks when it dies, SIGKILL included. held is true
// when another open file (in this process or another) holds it.
func tryLockOwner(f *os.File) (held bool, err error) {
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}
