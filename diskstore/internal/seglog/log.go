package seglog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/mmap"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Log is the set of segment files. One goroutine (the engine's committer)
// appends; readers read at offsets that the index hands them, which are
// always in frames that are durable.
type Log struct {
	fs  vfs.FS
	dir string

	mu    sync.RWMutex
	files map[uint64]vfs.File // every segment, open for reading
	// maps holds the read-only mappings of the segments that sparse
	// readers read (see mapping), nil for a segment that cannot be
	// mapped.
	maps map[uint64][]byte

	// Owned by the committer.
	active uint64   // the segment appended to
	w      vfs.File // the active segment, open for writing
	end    int64    // the end of the last frame in the active segment
	alloc  int64    // the length of the active segment's file
	zeroed int64    // the end of the zeros written ahead of end (or end)
	limit  int64    // roll over to a new segment past this size
	noSync bool
}

// Span is where consecutive bytes lie in the log: in segment Seg, from
// offset Off, Bytes long.
type Span struct {
	Seg   uint64
	Off   int64
	Bytes int64
}

// SegmentName returns the file name of segment n.
func SegmentName(n uint64) string { return fmt.Sprintf("%016x.log", n) }

// ParseSegmentName returns the number of the segment whose file is name,
// and false when name is not a segment's.
func ParseSegmentName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, ".log")
	if !ok || len(s) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 16, 64)
	return n, err == nil && n > 0
}

// Open opens the log in dir, creating the directory if needed. It opens
// every segment for reading; the caller then finds the log's end (with
// ReadFrame and CheckTail) and calls StartAppending before anything is
// appended.
func Open(fs vfs.FS, dir string, limit int64, noSync bool) (*Log, error) {
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
	l := &Log{fs: fs, dir: dir, files: map[uint64]vfs.File{}, maps: map[uint64][]byte{}, limit: limit, noSync: noSync}
	for _, name := range names {
		n, ok := ParseSegmentName(name)
		if !ok {
			continue
		}
		f, err := fs.Open(fs.PathJoin(dir, name))
		if err != nil {
			return nil, errors.Join(err, l.Close())
		}
		l.files[n] = f
	}
	return l, nil
}

// Segments returns the numbers of the segments, in order.
func (l *Log) Segments() []uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]uint64, 0, len(l.files))
	for n := range l.files {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (l *Log) file(n uint64) (vfs.File, error) {
	l.mu.RLock()
	f := l.files[n]
	l.mu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("diskstore: %w: log segment %d is missing", cairn.ErrCorrupt, n)
	}
	return f, nil
}

// mapping returns a read-only mapping of segment n, made on first use, or
// nil when there is none (the filesystem has no file descriptors, or mmap
// failed): readers then read with pread.
//
// A mapping covers the segment's file as it is when it is made and at
// least up to the segment's size limit, past which only the last frame of
// a segment goes: the file grows into it as frames are appended (the
// mapping is shared, so they read through it), and a read beyond it uses
// pread. Readers read only durable frames, which lie within the file: no
// page past its end is ever touched. Segment files are never truncated; a
// mapping lives until the segment is removed (by compaction, once no
// reader can read it) or the log closed.
func (l *Log) mapping(n uint64) []byte {
	l.mu.RLock()
	m, ok := l.maps[n]
	f := l.files[n]
	l.mu.RUnlock()
	if ok || f == nil {
		return m
	}
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if m, ok := l.maps[n]; ok || l.files[n] != f {
		return m
	}
	m = mmap.Map(f, max(st.Size(), l.limit))
	l.maps[n] = m
	return m
}

// Has returns nil when segment n exists, and an error matching
// cairn.ErrCorrupt when it is missing.
func (l *Log) Has(n uint64) error {
	_, err := l.file(n)
	return err
}

// readAt reads len(p) bytes of segment n at off.
func (l *Log) readAt(n uint64, off int64, p []byte) error {
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

// Size returns the length of segment n's file.
func (l *Log) Size(n uint64) (int64, error) {
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

// StartAppending makes segment n, whose frames end at end, the active one;
// it creates the segment when it does not exist. Bytes after end (the torn
// end of a frame never acknowledged) are overwritten with zeros, so that
// no later scan can take them for a frame.
func (l *Log) StartAppending(n uint64, end int64) error {
	path := l.fs.PathJoin(l.dir, SegmentName(n))
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
	l.active, l.w, l.end, l.alloc, l.zeroed = n, w, end, st.Size(), end
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
func (l *Log) create(n uint64) error {
	path := l.fs.PathJoin(l.dir, SegmentName(n))
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
	l.active, l.w, l.end, l.alloc, l.zeroed = n, w, 0, 0, 0
	return nil
}

func (l *Log) syncDir() error {
	if l.noSync {
		return nil
	}
	d, err := l.fs.OpenDir(l.dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// Full reports whether the next frame goes to a new segment.
func (l *Log) Full() bool { return l.end >= l.limit }

// Reserve returns the segment and offset where a frame of size bytes goes,
// rolling over to a new segment when the active one is full.
func (l *Log) Reserve() (uint64, int64, error) {
	if l.end >= l.limit {
		if err := l.create(l.active + 1); err != nil {
			return 0, 0, err
		}
	}
	return l.active, l.end, nil
}

// Write appends frame (header included) at the end of the active segment.
//
// The file is extended ahead of the frames, by an eighth of its length (64
// KiB to 4 MiB at a time): a sync of data written within the file's length
// costs less than one that also records a new length.
//
// Before a frame smaller than bulkFrame, the space ahead is written with
// zeros up to the file's length (what it reads as already): a file system
// such as ext4 allocates it as blocks not yet written, and the first sync
// of data in such a block must also record it as written, a commit of the
// file system's journal. Written ahead, the blocks are recorded once, by
// the sync that writes the zeros out, and the syncs of the small frames
// after it carry data alone: on ext4 (here) that halved the time of a
// sync, at the price of writing those bytes twice. A bulk frame writes no
// zeros: its own bytes are most of what its sync carries, and writing them
// twice cost more than the journal's commit saves.
func (l *Log) Write(frame []byte) error {
	need := l.end + int64(len(frame))
	if need > l.alloc {
		ahead := min(max(need/8, 64<<10), 4<<20)
		if ok, err := preallocate(l.w, l.alloc, need+ahead-l.alloc); err != nil {
			return err
		} else if ok {
			l.alloc = need + ahead
		}
	}
	if need > l.zeroed && len(frame) < bulkFrame && !l.noSync && l.alloc > need {
		// The frame is written over its part below.
		if err := writeZeros(l.w, max(l.zeroed, need), l.alloc); err != nil {
			return err
		}
		l.zeroed = l.alloc
	}
	if _, err := l.w.WriteAt(frame, l.end); err != nil {
		return err
	}
	l.end = need
	l.zeroed = max(l.zeroed, need)
	return nil
}

// bulkFrame is the size from which a frame writes no zeros ahead of it
// (see Write). With the zeros, the syncs of 64 writers' frames (tens of
// KiB) took half as long; without them, W3's frames of 1000 events (about
// 290 KiB each) went a fifth faster. W2's frames stay below it: at most
// about 80 KiB at 256 writers.
const bulkFrame = 128 << 10

// zeroBlock is what writeZeros writes, at most, at a time.
var zeroBlock = sync.OnceValue(func() []byte { return make([]byte, 1<<20) })

// writeZeros writes zeros to f over [from, to).
func writeZeros(f vfs.File, from, to int64) error {
	for off := from; off < to; {
		p := zeroBlock()[:min(int64(len(zeroBlock())), to-off)]
		if _, err := f.WriteAt(p, off); err != nil {
			return err
		}
		off += int64(len(p))
	}
	return nil
}

// Sync makes what was written to the active segment durable. The syncer
// calls it while the committer appends: the committer moves to a new
// segment only when no group is in flight.
func (l *Log) Sync() error {
	if l.noSync {
		return nil
	}
	return l.w.SyncData()
}

func (l *Log) Close() error {
	var err error
	if l.w != nil {
		err = l.w.Close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.maps {
		mmap.Unmap(m)
	}
	for _, f := range l.files {
		err = errors.Join(err, f.Close())
	}
	l.files, l.maps = nil, nil
	return err
}

// DiskBytes returns the space the segments take on disk: the blocks they
// hold where the filesystem says, their length otherwise.
func (l *Log) DiskBytes() int64 {
	var n int64
	for _, s := range l.Segments() {
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

// Punch frees the whole blocks within each hole, segment by segment (holes
// are in log order).
func (l *Log) Punch(holes []Span) error {
	const block = 4096
	var f vfs.File
	var seg uint64
	skip := false // segment seg is shared with a backup
	noted := false
	defer func() {
		if f != nil {
			_ = f.Close()
		}
	}()
	for _, h := range holes {
		lo := (h.Off + block - 1) / block * block
		hi := (h.Off + h.Bytes) / block * block
		if hi <= lo {
			continue
		}
		if !noted {
			if err := l.noteCompacted(); err != nil {
				return err
			}
			noted = true
		}
		if (f == nil && !skip) || h.Seg != seg {
			if f != nil {
				_ = f.Close()
				f = nil
			}
			seg = h.Seg
			path := l.fs.PathJoin(l.dir, SegmentName(h.Seg))
			st, err := l.fs.Stat(path)
			if err != nil {
				return err
			}
			if skip = shared(st); skip {
				// A backup links the segment: a hole punched here would
				// punch it in the backup too, whose index may still
				// need those bytes. Its space comes back when the
				// segment goes, or at a compaction after the backup
				// is deleted.
				continue
			}
			if f, err = l.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified); err != nil {
				f = nil
				return err
			}
		}
		if skip {
			continue
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

// Compacted reports whether the log in dir was compacted; when it cannot
// tell (the note cannot be looked up), it says it was.
func Compacted(fs vfs.FS, dir string) bool {
	_, err := fs.Stat(fs.PathJoin(dir, compactedNote))
	return !errors.Is(err, os.ErrNotExist)
}

// Compacted reports whether the log was compacted (see the function
// Compacted).
func (l *Log) Compacted() bool { return Compacted(l.fs, l.dir) }

// CompactedNote is the name of the file, in the log's directory, that says
// the log was compacted.
const CompactedNote = compactedNote

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// FS returns the filesystem the log lives on.
func (l *Log) FS() vfs.FS { return l.fs }

// NoteCompacted makes the note that the log was compacted durable: for a
// log whose index no longer holds what a replay of it would give, though
// none of it was freed.
func (l *Log) NoteCompacted() error { return l.noteCompacted() }

// noteCompacted makes the note that the log was compacted durable, before
// compaction frees anything.
func (l *Log) noteCompacted() error {
	if l.Compacted() {
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

// Remove deletes segment n, which no index entry points at any more.
func (l *Log) Remove(n uint64) error {
	if err := l.noteCompacted(); err != nil {
		return err
	}
	l.mu.Lock()
	f := l.files[n]
	delete(l.files, n)
	mmap.Unmap(l.maps[n])
	delete(l.maps, n)
	l.mu.Unlock()
	if f != nil {
		_ = f.Close()
	}
	if err := l.fs.Remove(l.fs.PathJoin(l.dir, SegmentName(n))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return l.syncDir()
}
