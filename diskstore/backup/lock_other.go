//go:build !unix

package backup

import (
	"io"
	"os"
)

// lockFile creates the file name; where flock is missing, a set is not
// locked against a second backup.
func lockFile(name string) (io.Closer, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
}
