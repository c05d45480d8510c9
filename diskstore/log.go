package diskstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The log: the events, and the commit point of every write.
//
// The log is a sequence of segment files in the log directory, numbered
// from 1 (named by the number in 16 hex digits, ".log"). Each write group
// appends one frame to the last segment and syncs it; a frame never spans
// two segments. A frame is
//
//	magic        [4] "cLF1"
//	events bytes [4] little-endian
//	index bytes  [4] little-endian
//	crc32c       [4] of the three fields above and the body
//	events       one record per event: uvarint length ‖ the event value
//	index        the group's index writes, as a pebble batch
//
// so that the log alone holds everything a group wrote: its events and the
// changes to the index (pebble) that go with them. Pebble keeps no log of
// its own and is flushed only when what it holds is durable here; the
// index's last write of each frame records the end of the frame, so that
// after a crash Open replays the frames the index on disk does not hold.
const (
	frameMagic  = "cLF1"
	frameHeader = 16
	// maxFrameBody bounds a frame's body: a frame that claims more is
	// taken for the torn end of the log.
	maxFrameBody = 1 << 31
)

// segmentLog is the set of segment files. The committer goroutine appends;
// readers read at offsets that the index hands them, which are always in
// frames that are durable.
type segmentLog struct {
	fs  vfs.FS
	dir string

	mu    sync.RWMutex
	files map[uint64]vfs.File // every segment, open for reading

	// Owned by the committer.
	active uint64   // the segment appended to
	w      vfs.File // the active segment, open for writing
	end    int64    // the end of the last frame in the active segment
	alloc  int64    // the length of the active segment's file
	limit  int64    // roll over to a new segment past this size
	noSync bool
}

func segmentName(n uint64) string { return fmt.Sprintf("%016x.log", n) }

func parseSegmentName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, ".log")
	if !ok || len(s) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 16, 64)
	return n, err == nil && n > 0
}

// openLog opens the log in dir, creating the directory if needed. It opens
// every segment for reading; the caller then recovers the log's end (see
// [DB.recover]) before anything is appended.
func openLog(fs vfs.FS, dir string, limit int64, noSync bool) (*segmentLog, error) {
	if _, err := fs.Stat(dir); errors.Is(err, os.ErrNotExist) {
		// A new log directory: make its entry in the parent durable.
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		parent, err := fs.OpenDir(fs.PathDir(dir))
		if err != nil {
			return nil, err
		}
		if err := errors.Join(parent.Sync(), parent.Close()); err != nil {
			return nil, err
		}
	}
	names, err := fs.List(dir)
	if err != nil {
		return nil, err
	}
	l := &segmentLog{fs: fs, dir: dir, files: map[uint64]vfs.File{}, limit: limit, noSync: noSync}
	for _, name := range names {
		n, ok := parseSegmentName(name)
		if !ok {
			continue
		}
		f, err := fs.Open(fs.PathJoin(dir, name))
		if err != nil {
			return nil, errors.Join(err, l.close())
		}
		l.files[n] = f
	}
	return l, nil
}

// segments returns the numbers of the segments, in order.
func (l *segmentLog) segments() []uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]uint64, 0, len(l.files))
	for n := range l.files {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (l *segmentLog) file(n uint64) (vfs.File, error) {
	l.mu.RLock()
	f := l.files[n]
	l.mu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("diskstore: %w: log segment %d is missing", cairn.ErrCorrupt, n)
	}
	return f, nil
}

// readAt reads len(p) bytes of segment n at off.
func (l *segmentLog) readAt(n uint64, off int64, p []byte) error {
	f, err := l.file(n)
	if err != nil {
		return err
	}
	k, err := f.ReadAt(p, off)
	if k == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("diskstore: %w: log segment %d ends before %d", cairn.ErrCorrupt, n, off+int64(len(p)))
	}
	return err
}

// size returns the length of segment n's file.
func (l *segmentLog) size(n uint64) (int64, error) {
	f, err := l.file(n)
	if err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// startAppending makes segment n, whose frames end at end, the active one;
// it creates the segment when it does not exist. Bytes after end (the torn
// end of a frame never acknowledged) are overwritten with zeros, so that
// no later scan can take them for a frame.
func (l *segmentLog) startAppending(n uint64, end int64) error {
	path := l.fs.PathJoin(l.dir, segmentName(n))
	l.mu.RLock()
	_, exists := l.files[n]
	l.mu.RUnlock()
	if !exists {
		return l.create(n)
	}
	w, err := l.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	st, err := w.Stat()
	if err != nil {
		return errors.Join(err, w.Close())
	}
	if err := zeroTail(w, end, st.Size()); err != nil {
		return errors.Join(err, w.Close())
	}
	l.active, l.w, l.end, l.alloc = n, w, end, st.Size()
	return nil
}

// zeroTail overwrites with zeros the bytes of f from end to size that are
// not zeros already (the space preallocated ahead of the log reads as
// zeros), and syncs them.
func zeroTail(f vfs.File, end, size int64) error {
	buf := make([]byte, 1<<20)
	zeros := make([]byte, len(buf))
	wrote := false
	for off := end; off < size; off += int64(len(buf)) {
		p := buf[:min(int64(len(buf)), size-off)]
		if _, err := f.ReadAt(p, off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if !bytes.Equal(p, zeros[:len(p)]) {
			if _, err := f.WriteAt(zeros[:len(p)], off); err != nil {
				return err
			}
			wrote = true
		}
	}
	if wrote {
		return f.Sync()
	}
	return nil
}

// create creates segment n, syncs the directory so that the file survives
// a crash, and makes it the active segment.
func (l *segmentLog) create(n uint64) error {
	path := l.fs.PathJoin(l.dir, segmentName(n))
	w, err := l.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if err := l.syncDir(); err != nil {
		return errors.Join(err, w.Close())
	}
	r, err := l.fs.Open(path)
	if err != nil {
		return errors.Join(err, w.Close())
	}
	if l.w != nil {
		_ = l.w.Close()
	}
	l.mu.Lock()
	l.files[n] = r
	l.mu.Unlock()
	l.active, l.w, l.end, l.alloc = n, w, 0, 0
	return nil
}

func (l *segmentLog) syncDir() error {
	if l.noSync {
		return nil
	}
	d, err := l.fs.OpenDir(l.dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// full reports whether the next frame goes to a new segment.
func (l *segmentLog) full() bool { return l.end >= l.limit }

// reserve returns the segment and offset where a frame of size bytes goes,
// rolling over to a new segment when the active one is full.
func (l *segmentLog) reserve() (uint64, int64, error) {
	if l.end >= l.limit {
		if err := l.create(l.active + 1); err != nil {
			return 0, 0, err
		}
	}
	return l.active, l.end, nil
}

// write appends frame (header included) at the end of the active segment.
//
// The file is extended ahead of the frames, by an eighth of its length (64
// KiB to 4 MiB at a time): a sync of data written within the file's length
// costs less than one that also records a new length.
func (l *segmentLog) write(frame []byte) error {
	if need := l.end + int64(len(frame)); need > l.alloc {
		ahead := min(max(need/8, 64<<10), 4<<20)
		if ok, err := preallocate(l.w, l.alloc, need+ahead-l.alloc); err != nil {
			return err
		} else if ok {
			l.alloc = need + ahead
		}
	}
	if _, err := l.w.WriteAt(frame, l.end); err != nil {
		return err
	}
	l.end += int64(len(frame))
	return nil
}

// sync makes what was written to the active segment durable. The syncer
// calls it while the committer appends: the committer moves to a new
// segment only when no group is in flight.
func (l *segmentLog) sync() error {
	if l.noSync {
		return nil
	}
	return l.w.SyncData()
}

func (l *segmentLog) close() error {
	var err error
	if l.w != nil {
		err = l.w.Close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.files {
		err = errors.Join(err, f.Close())
	}
	l.files = nil
	return err
}

// diskBytes returns the space the segments take on disk: the blocks they
// hold where the filesystem says, their length otherwise.
func (l *segmentLog) diskBytes() int64 {
	var n int64
	for _, s := range l.segments() {
		f, err := l.file(s)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		if err != nil {
			continue
		}
		n += allocated(st)
	}
	return n
}

// beginFrame starts the frame in buf: the header, filled in by sealFrame.
func beginFrame(buf []byte) []byte {
	return append(buf[:0], make([]byte, frameHeader)...)
}

// sealFrame fills in the header of frame, whose body holds events bytes of
// events followed by the index batch.
func sealFrame(frame []byte, events int) {
	copy(frame, frameMagic)
	binary.LittleEndian.PutUint32(frame[4:], uint32(events))
	binary.LittleEndian.PutUint32(frame[8:], uint32(len(frame)-frameHeader-events))
	c := crc32.Update(0, crcTable, frame[:12])
	binary.LittleEndian.PutUint32(frame[12:], crc32.Update(c, crcTable, frame[frameHeader:]))
}

// readFrame reads the frame at off in segment n. ok is false when there is
// no whole, intact frame there: the end of the log.
func (l *segmentLog) readFrame(n uint64, off, size int64, buf []byte) (frame []byte, ok bool, err error) {
	if size-off < frameHeader {
		return buf, false, nil
	}
	buf = slices.Grow(buf[:0], frameHeader)[:frameHeader]
	if err := l.readAt(n, off, buf); err != nil {
		return buf, false, err
	}
	if string(buf[:4]) != frameMagic {
		return buf, false, nil
	}
	ev := int64(binary.LittleEndian.Uint32(buf[4:]))
	ix := int64(binary.LittleEndian.Uint32(buf[8:]))
	if ev+ix > maxFrameBody || off+frameHeader+ev+ix > size {
		return buf, false, nil
	}
	buf = slices.Grow(buf, int(ev+ix))[:frameHeader+ev+ix]
	if err := l.readAt(n, off+frameHeader, buf[frameHeader:]); err != nil {
		return buf, false, err
	}
	c := crc32.Update(0, crcTable, buf[:12])
	if crc32.Update(c, crcTable, buf[frameHeader:]) != binary.LittleEndian.Uint32(buf[12:]) {
		return buf, false, nil
	}
	return buf, true, nil
}

// checkTail checks that what follows the last whole frame of segment n, at
// off, is the torn end of the log: a frame that was being written when the
// process stopped, never acknowledged. A damaged frame followed by an
// intact one is corruption of acknowledged data, and is reported.
//
// A segment that the log goes on from was synced whole before the next one
// was created: after its last frame there is nothing but zeros (space
// allocated ahead), and anything else is damage.
func (l *segmentLog) checkTail(n uint64, off, size int64) error {
	if off > size {
		return fmt.Errorf("diskstore: %w: log segment %d ends at %d, before its frames (%d)", cairn.ErrCorrupt, n, size, off)
	}
	l.mu.RLock()
	_, later := l.files[n+1]
	l.mu.RUnlock()
	if later {
		return l.checkZeros(n, off, size)
	}
	var hdr [frameHeader]byte
	if size-off < frameHeader {
		return nil
	}
	if err := l.readAt(n, off, hdr[:]); err != nil {
		return err
	}
	if string(hdr[:4]) != frameMagic {
		return nil
	}
	next := off + frameHeader + int64(binary.LittleEndian.Uint32(hdr[4:])) + int64(binary.LittleEndian.Uint32(hdr[8:]))
	if next >= size {
		return nil
	}
	if _, ok, err := l.readFrame(n, next, size, nil); err != nil || ok {
		return errors.Join(err, fmt.Errorf("diskstore: %w: log segment %d: damaged frame at offset %d before intact ones", cairn.ErrCorrupt, n, off))
	}
	return nil
}

// checkZeros checks that segment n holds only zeros from off to size.
func (l *segmentLog) checkZeros(n uint64, off, size int64) error {
	buf := make([]byte, min(size-off, 1<<20))
	for at := off; at < size; at += int64(len(buf)) {
		p := buf[:min(int64(len(buf)), size-at)]
		if err := l.readAt(n, at, p); err != nil {
			return err
		}
		if i := slices.IndexFunc(p, func(b byte) bool { return b != 0 }); i >= 0 {
			return fmt.Errorf("diskstore: %w: log segment %d: damaged data at offset %d, after its last whole frame (at %d) and before segment %d", cairn.ErrCorrupt, n, at+int64(i), off, n+1)
		}
	}
	return nil
}

// frameIndex returns the index batch of a frame read by readFrame.
func frameIndex(frame []byte) []byte {
	ev := binary.LittleEndian.Uint32(frame[4:])
	return frame[frameHeader+int(ev):]
}

// checkFrame checks a frame read by readFrame at offset off of segment seg
// before Open replays its index batch, and returns the frame's marker. The
// batch must be what the committer writes: sets and deletes only, as many
// as its header counts, the last of them the marker of this very frame;
// and the frame's events must take the positions from next on, where the
// frame before ended. A frame with a correct checksum that fails these
// checks is reported as corrupt rather than applied (pebble panics on some
// kinds of record), and a frame missing between two others (zeroed, or
// lost with the end of a segment) is found by the gap in positions.
func checkFrame(frame []byte, seg uint64, off int64, next uint64) (marker, error) {
	bad := func(format string, args ...any) (marker, error) {
		return marker{}, fmt.Errorf("diskstore: %w: log segment %d: frame at offset %d: %s", cairn.ErrCorrupt, seg, off, fmt.Sprintf(format, args...))
	}
	ev := binary.LittleEndian.Uint32(frame[4:])
	events, ok := records(frame[frameHeader:frameHeader+int(ev)], nil)
	if !ok {
		return bad("malformed event records")
	}
	// The batch: sequence number [8] and count [4], little-endian, then
	// per record its kind [1], key and (for a set) value, each a uvarint
	// length ‖ bytes. Pebble's own reader trusts the lengths: the batch is
	// parsed here first.
	repr := frameIndex(frame)
	if len(repr) < 12 {
		return bad("index batch of %d bytes", len(repr))
	}
	count := binary.LittleEndian.Uint32(repr[8:])
	str := func(p []byte) (s, rest []byte, ok bool) {
		v, k := binary.Uvarint(p)
		if k <= 0 || k > 5 || v > math.MaxUint32 || uint64(len(p)-k) < v {
			return nil, nil, false
		}
		return p[k : k+int(v)], p[k+int(v):], true
	}
	var n uint32
	var last []byte // the value of the last write, when it sets the marker
	for p := repr[12:]; len(p) > 0; n++ {
		kind := pebble.InternalKeyKind(p[0])
		k, rest, ok := str(p[1:])
		if !ok {
			return bad("malformed index batch")
		}
		last = nil
		switch kind {
		case pebble.InternalKeyKindSet:
			var v []byte
			if v, rest, ok = str(rest); !ok {
				return bad("malformed index batch")
			}
			if bytes.Equal(k, markerKey) {
				last = v
			}
		case pebble.InternalKeyKindDelete:
		default:
			return bad("index batch holds a record of kind %v", kind)
		}
		p = rest
	}
	if n != count {
		return bad("index batch of %d records counts %d", n, count)
	}
	if last == nil {
		return bad("index batch does not end with the marker")
	}
	m, err := decodeMarker(last)
	if err != nil {
		return marker{}, err
	}
	if m.seg != seg || m.end != off+int64(len(frame)) || m.next-uint64(len(events)) != next || m.next < next {
		return bad("marker (segment %d, end %d, next position %d) does not follow the frame before (next position %d) with %d events", m.seg, m.end, m.next, next, len(events))
	}
	return m, nil
}

// logReader reads event records from the log through a window, so that
// reading many small neighbouring ranges costs few reads.
type logReader struct {
	log  *segmentLog
	seg  uint64
	base int64
	buf  []byte
}

const readWindow = 256 << 10

// windows holds the buffers of finished readers, so that each read does not
// allocate (and the collector reclaim) a window of its own.
var windows = sync.Pool{New: func() any { return new([]byte) }}

// release returns the reader's window to the pool.
func (r *logReader) release() {
	if r.buf != nil && cap(r.buf) <= 4*readWindow {
		b := r.buf[:0]
		windows.Put(&b)
	}
	r.buf, r.seg = nil, 0
}

// read returns the n bytes at off in segment seg, valid until the next call.
func (r *logReader) read(seg uint64, off int64, n int) ([]byte, error) {
	if seg == r.seg && off >= r.base && off+int64(n) <= r.base+int64(len(r.buf)) {
		return r.buf[off-r.base : off-r.base+int64(n)], nil
	}
	want := max(n, readWindow)
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

// records splits the bytes of consecutive event records into their values,
// appending them to out.
func records(p []byte, out [][]byte) ([][]byte, bool) {
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

// punch frees the whole blocks within each hole, segment by segment (holes
// are in log order).
func (l *segmentLog) punch(holes []span) error {
	const block = 4096
	var f vfs.File
	var seg uint64
	defer func() {
		if f != nil {
			_ = f.Close()
		}
	}()
	for _, h := range holes {
		lo := (h.off + block - 1) / block * block
		hi := (h.off + h.bytes) / block * block
		if hi <= lo {
			continue
		}
		if f == nil {
			if err := l.noteCompacted(); err != nil {
				return err
			}
		}
		if f == nil || h.seg != seg {
			if f != nil {
				_ = f.Close()
			}
			var err error
			if f, err = l.fs.OpenReadWrite(l.fs.PathJoin(l.dir, segmentName(h.seg)), vfs.WriteCategoryUnspecified); err != nil {
				f = nil
				return err
			}
			seg = h.seg
		}
		if err := punchHole(f, lo, hi-lo); err != nil {
			return err
		}
	}
	return nil
}

// compactedNote names the file in the log's directory that says that
// compaction freed parts of the log: frames' headers and index writes, and
// whole segments. From then on the log cannot rebuild the index.
const compactedNote = "COMPACTED"

// logCompacted reports whether the log in dir was compacted; when it cannot
// tell (the note cannot be looked up), it says it was.
func logCompacted(fs vfs.FS, dir string) bool {
	_, err := fs.Stat(fs.PathJoin(dir, compactedNote))
	return !errors.Is(err, os.ErrNotExist)
}

func (l *segmentLog) compacted() bool { return logCompacted(l.fs, l.dir) }

// noteCompacted makes the note that the log was compacted durable, before
// compaction frees anything.
func (l *segmentLog) noteCompacted() error {
	if l.compacted() {
		return nil
	}
	f, err := l.fs.Create(l.fs.PathJoin(l.dir, compactedNote), vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	return l.syncDir()
}

// remove deletes segment n, which no index entry points at any more.
func (l *segmentLog) remove(n uint64) error {
	if err := l.noteCompacted(); err != nil {
		return err
	}
	l.mu.Lock()
	f := l.files[n]
	delete(l.files, n)
	l.mu.Unlock()
	if f != nil {
		_ = f.Close()
	}
	if err := l.fs.Remove(l.fs.PathJoin(l.dir, segmentName(n))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return l.syncDir()
}
