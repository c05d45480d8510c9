//go:build unix

package mmap

import (
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Map maps n bytes of f read-only, shared (so that what is appended to
// the file later reads through the mapping), or returns nil when it
// cannot: a file of a filesystem without descriptors (an in-memory one),
// or a failed mmap. n may exceed the file's length: the pages past its end
// must not be read.
func Map(f vfs.File, n int64) []byte {
	fd := f.Fd()
	if fd == vfs.InvalidFd || n <= 0 || int64(int(n)) != n {
		return nil
	}
	b, err := syscall.Mmap(int(fd), 0, int(n), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	return b
}

// Unmap unmaps what Map mapped; nil is left alone.
func Unmap(b []byte) {
	if b != nil {
		_ = syscall.Munmap(b)
	}
}
