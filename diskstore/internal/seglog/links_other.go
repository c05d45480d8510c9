//go:build !unix

package seglog

import "os"

// shared reports whether the file has other names (hard links); where the
// system does not say, it has none.
func shared(os.FileInfo) bool { return false }
