//go:build unix

package seglog

import (
	"os"
	"syscall"
)

// allocated returns the bytes a file takes on disk: its blocks, which holes
// do not count in, or its length when the filesystem does not say.
func allocated(st os.FileInfo) int64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Blocks * 512
	}
	return st.Size()
}
