//go:build !unix

package mmap

import "github.com/cockroachdb/pebble/v2/vfs"

// Map maps nothing on these systems: the caller reads with pread.
func Map(f vfs.File, n int64) []byte { return nil }

// Unmap does nothing on these systems.
func Unmap(b []byte) {}
