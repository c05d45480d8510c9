//go:build !linux

package seglog

import "github.com/cockroachdb/pebble/v2/vfs"

// punchHole does nothing where the engine cannot punch holes: the space of
// removed events comes back when their whole segment goes.
func punchHole(f vfs.File, off, n int64) error { return nil }

// preallocate does nothing: the file is extended by the writes themselves.
func preallocate(f vfs.File, off, n int64) (bool, error) { return false, nil }
