//go:build !unix

package diskstore

import (
	"errors"
	"io"
	"os"
)

// lockShared opens the file name without locking it: on this system a
// read-only open does not exclude a writer.
func lockShared(name string) (io.Closer, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoStore
	}
	return f, err
}
