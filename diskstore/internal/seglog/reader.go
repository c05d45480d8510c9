package seglog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cairndb/cairn"
)

// Reader reads event records from the log through a window, so that
// reading many small neighbouring ranges costs few reads.
type Reader struct {
	log    *Log
	seg    uint64
	base   int64
	buf    []byte
	window int  // the least a read reads
	sparse bool // read through mappings where there are
	grow   bool // a read ahead of the window doubles it (NewGrowingReader)
}

// NewReader returns a reader of l's records. Release it when done.
func (l *Log) NewReader() Reader { return Reader{log: l, window: readWindow} }

// NewSparseReader returns a reader of l's records for reads that jump
// about the log, such as those of the events of one tag. It reads through
// a mapping of the segment (see Log.mapping), which spares each read a
// system call; where there is none, each read reads what it needs, and at
// least sparseWindow bytes, rather than a window of readWindow that the
// next read would not use. The bytes it returns are valid until the next
// call, as with any reader. Release it when done.
func (l *Log) NewSparseReader() Reader { return Reader{log: l, window: sparseWindow, sparse: true} }

// NewGrowingReader returns a reader for reads that may stay few or go on
// through the log, such as those of one stream: the first read reads what
// it needs and at least sparseWindow bytes, and each read that lands
// ahead of the window, in the same segment and within readWindow of its
// end, doubles the least the next reads, up to readWindow. A read of one
// event of a stream then reads a few kilobytes, where a window of
// readWindow would copy a quarter of a megabyte for it, and a read of a
// whole stream reads as a reader of readWindow does after a few reads.
// Release it when done.
func (l *Log) NewGrowingReader() Reader { return Reader{log: l, window: sparseWindow, grow: true} }

const (
	readWindow   = 256 << 10
	sparseWindow = 4 << 10
)

// windows holds the buffers of finished readers, so that each read does not
// allocate (and the collector reclaim) a window of its own.
var windows = sync.Pool{New: func() any { return new([]byte) }}

// Release returns the reader's window to the pool.
func (r *Reader) Release() {
	if r.buf != nil && cap(r.buf) <= 4*readWindow {
		b := r.buf[:0]
		windows.Put(&b)
	}
	r.buf, r.seg = nil, 0
}

// Read returns the n bytes at off in segment seg, valid until the next call.
func (r *Reader) Read(seg uint64, off int64, n int) ([]byte, error) {
	if seg == r.seg && off >= r.base && off+int64(n) <= r.base+int64(len(r.buf)) {
		return r.buf[off-r.base : off-r.base+int64(n)], nil
	}
	if r.sparse && off >= 0 && n >= 0 {
		if m := r.log.mapping(seg); off+int64(n) <= int64(len(m)) {
			return m[off : off+int64(n) : off+int64(n)], nil
		}
	}
	if r.grow && seg == r.seg && off >= r.base && off < r.base+int64(len(r.buf))+readWindow {
		r.window = min(2*r.window, readWindow)
	}
	want := max(n, r.window)
	if r.buf == nil {
		r.buf = *windows.Get().(*[]byte)
	}
	if cap(r.buf) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	f, err := r.log.file(seg)
	if err != nil {
		return nil, err
	}
	k, err := f.ReadAt(r.buf, off)
	if k < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("diskstore: %w: log segment %d ends before %d", cairn.ErrCorrupt, seg, off+int64(n))
		}
		r.seg = 0
		return nil, err
	}
	r.seg, r.base, r.buf = seg, off, r.buf[:k]
	return r.buf[:n], nil
}

// Records splits the bytes of consecutive event records into their values,
// appending them to out.
func Records(p []byte, out [][]byte) ([][]byte, bool) {
	for len(p) > 0 {
		n, k := binary.Uvarint(p)
		if k <= 0 || uint64(len(p)-k) < n {
			return out, false
		}
		out = append(out, p[k:k+int(n)])
		p = p[k+int(n):]
	}
	return out, true
}
