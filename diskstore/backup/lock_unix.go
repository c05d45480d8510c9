//go:build unix

package backup

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive lock of the file name, creating it.
func lockFile(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close() // nothing written
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errors.New("another backup is writing to this set")
		}
		return nil, err
	}
	return f, nil
}
