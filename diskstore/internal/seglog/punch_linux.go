package seglog

import (
	"errors"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
)

// preallocate extends f to off+n bytes of allocated space that reads as
// zeros. ok is false when the filesystem cannot (the file is then extended
// by the writes themselves).
func preallocate(f vfs.File, off, n int64) (ok bool, err error) {
	fd := f.Fd()
	if fd == vfs.InvalidFd {
		return false, nil
	}
	err = syscall.Fallocate(int(fd), 0, off, n)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return false, nil
	}
	return err == nil, err
}

// punchHole frees the blocks of f in [off, off+n) without changing its
// size; reads of the range return zeros. It does nothing on a filesystem
// without file descriptors (an in-memory one) or without hole punching.
func punchHole(f vfs.File, off, n int64) error {
	fd := f.Fd()
	if fd == vfs.InvalidFd {
		return nil
	}
	err := syscall.Fallocate(int(fd), fallocKeepSize|fallocPunchHole, off, n)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return nil
	}
	return err
}
