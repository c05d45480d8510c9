//go:build !unix

package seglog

import "github.com/cockroachdb/pebble/v2/vfs"

// mapFile maps nothing on these systems: reads use pread.
func mapFile(f vfs.File, n int64) []byte { return nil }

func unmapFile(b []byte) {}
