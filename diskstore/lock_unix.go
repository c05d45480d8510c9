//go:build unix

package diskstore

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// lockShared takes a shared (read) lock on the file name, which must exist.
// A process holding pebble's exclusive lock on it makes this fail with
// EAGAIN.
func lockShared(name string) (io.Closer, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoStore // pebble makes the file on the first open
	}
	if err != nil {
		return nil, err
	}
	spec := unix.Flock_t{Type: unix.F_RDLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &spec); err != nil {
		_ = f.Close() // opened for reading: nothing to lose
		return nil, &os.PathError{Op: "lock", Path: name, Err: err}
	}
	return f, nil
}
