//go:build unix

package seglog

import (
	"os"
	"syscall"
)

// shared reports whether the file has other names (hard links) than the
// one it was found by: a backup shares the segments it links.
func shared(st os.FileInfo) bool {
	s, ok := st.Sys().(*syscall.Stat_t)
	return ok && s.Nlink > 1
}
