//go:build unix

package backup

import (
	"os"
	"syscall"
)

// device returns the filesystem a file is on, 0 when unknown.
func device(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev) //nolint:unconvert // Dev is int32 on some systems
	}
	return 0
}
