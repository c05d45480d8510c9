package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// chunkBytes is the size of the reads and writes of a copy, and of the
// chunks a server sends.
const chunkBytes = 1 << 20

// readerAt is what a copy reads from.
type readerAt interface{ io.ReaderAt }

// copyRange copies the bytes of src from from to size to dst, through
// buf. Zeros are not written: the space the log allocates ahead of its
// frames, and the holes compaction punched, stay holes in the copy once it
// is given its length. progress is called with the bytes of each chunk.
func copyRange(ctx context.Context, dst io.WriterAt, src readerAt, from, size int64, buf []byte, progress func(int64)) error {
	for off := from; off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := buf[:min(int64(len(buf)), size-off)]
		if err := readFull(src, p, off); err != nil {
			return err
		}
		if !allZero(p) {
			if _, err := dst.WriteAt(p, off); err != nil {
				return err
			}
		}
		off += int64(len(p))
		progress(int64(len(p)))
	}
	return nil
}

// readFull reads len(p) bytes at off.
func readFull(src readerAt, p []byte, off int64) error {
	n, err := src.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("the file ends at %d, before %d", off+int64(n), off+int64(len(p)))
	}
	return err
}

func allZero(p []byte) bool {
	for len(p) >= 8 {
		if p[0]|p[1]|p[2]|p[3]|p[4]|p[5]|p[6]|p[7] != 0 {
			return false
		}
		p = p[8:]
	}
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// sameDevice reports whether the files a and b are on one filesystem,
// where a hard link between them can be made.
func sameDevice(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false
	}
	return device(sa) == device(sb) && device(sa) != 0
}
