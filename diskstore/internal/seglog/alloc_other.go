//go:build !unix

package seglog

import "os"

// allocated returns the length of a file.
func allocated(st os.FileInfo) int64 { return st.Size() }
