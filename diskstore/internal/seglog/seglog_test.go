package seglog

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// frame builds a frame of the given events and index bytes.
func frame(events, index string) []byte {
	f := append(BeginFrame(nil), events...)
	f = append(f, index...)
	SealFrame(f, len(events))
	return f
}

// appendFrames opens a new log on fs and appends frames of n bytes each,
// returning their offsets in segment 1.
func appendFrames(t *testing.T, fs vfs.FS, frames ...[]byte) []int64 {
	t.Helper()
	l, err := Open(fs, "log", 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.StartAppending(1, 0); err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, f := range frames {
		seg, off, err := l.Reserve()
		if err != nil || seg != 1 {
			t.Fatalf("reserve: segment %d, %v", seg, err)
		}
		if err := l.Write(f); err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	return offs
}

// scan reads the frames of segment 1 from the start, as recovery does, and
// returns them with the error of CheckTail at their end.
func scan(t *testing.T, fs vfs.FS) ([][]byte, error) {
	t.Helper()
	l, err := Open(fs, "log", 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	size, err := l.Size(1)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	var off int64
	for {
		f, ok, err := l.ReadFrame(1, off, size, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out, l.CheckTail(1, off, size)
		}
		out = append(out, f)
		off += int64(len(f))
	}
}

// TestFramesReadBack: the frames appended are read back whole, in order,
// each with its events and its index bytes apart; the end of the log is
// where they end (the preallocated space after them is not a frame).
func TestFramesReadBack(t *testing.T) {
	fs := vfs.NewMem()
	appendFrames(t, fs, frame("ev1", "ix1"), frame("", "marker"), frame("events 3", "index 3"))
	got, err := scan(t, fs)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"ev1", "ix1"}, {"", "marker"}, {"events 3", "index 3"}}
	if len(got) != len(want) {
		t.Fatalf("read %d frames, want %d", len(got), len(want))
	}
	for i, f := range got {
		ix := FrameIndex(f)
		ev := f[HeaderLen : len(f)-len(ix)]
		if string(ev) != want[i][0] || string(ix) != want[i][1] {
			t.Fatalf("frame %d holds %q / %q, want %q / %q", i, ev, ix, want[i][0], want[i][1])
		}
	}
}

// TestTornTailIsTheEnd: a frame cut short by a crash is the end of the
// log, not damage; appending again overwrites it with zeros first.
func TestTornTailIsTheEnd(t *testing.T) {
	fs := vfs.NewMem()
	last := frame("the last events", "its index")
	offs := appendFrames(t, fs, frame("a", "b"), last)
	unwrite(t, fs, offs[1]+int64(len(last))-3, 3)
	got, err := scan(t, fs)
	if err != nil || len(got) != 1 {
		t.Fatalf("read %d frames, tail %v; want 1 frame and a torn tail", len(got), err)
	}
	l, err := Open(fs, "log", 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StartAppending(1, offs[1]); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := fs.Open("log/" + SegmentName(1))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rest := make([]byte, len(last))
	if _, err := f.ReadAt(rest, offs[1]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, make([]byte, len(rest))) {
		t.Fatalf("the torn frame was not zeroed: %q", rest)
	}
}

// TestDamageBeforeAnIntactFrame: a frame that fails its checksum with an
// intact frame after it is damage to acknowledged data, reported as
// cairn.ErrCorrupt; the same damage in the last frame is a torn tail.
func TestDamageBeforeAnIntactFrame(t *testing.T) {
	for _, damaged := range []int{0, 1, 2} {
		t.Run(fmt.Sprint("frame ", damaged), func(t *testing.T) {
			fs := vfs.NewMem()
			frames := [][]byte{frame("one", "1"), frame("two", "2"), frame("three", "3")}
			offs := appendFrames(t, fs, frames...)
			flip(t, fs, offs[damaged]+HeaderLen)
			got, err := scan(t, fs)
			if len(got) != damaged {
				t.Fatalf("read %d frames before the damage, want %d", len(got), damaged)
			}
			last := damaged == len(frames)-1
			if last && err != nil {
				t.Fatalf("damage to the last frame reported as %v, want a torn tail", err)
			}
			if !last && !errors.Is(err, cairn.ErrCorrupt) {
				t.Fatalf("damage before an intact frame reported as %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestRollover: once a segment passes its limit, the next frame goes to a
// new segment, which reads back on its own.
func TestRollover(t *testing.T) {
	fs := vfs.NewMem()
	l, err := Open(fs, "log", 64, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StartAppending(1, 0); err != nil {
		t.Fatal(err)
	}
	big := frame(string(make([]byte, 80)), "ix")
	for i := range 3 {
		seg, off, err := l.Reserve()
		if err != nil {
			t.Fatal(err)
		}
		if seg != uint64(i+1) || off != 0 {
			t.Fatalf("frame %d reserved at segment %d offset %d, want segment %d offset 0", i, seg, off, i+1)
		}
		if err := l.Write(big); err != nil {
			t.Fatal(err)
		}
		if !l.Full() {
			t.Fatalf("segment %d holds %d bytes past its limit of 64 and is not full", seg, len(big))
		}
	}
	if segs := l.Segments(); len(segs) != 3 {
		t.Fatalf("segments %v, want 3", segs)
	}
	if err := l.Has(4); !errors.Is(err, cairn.ErrCorrupt) {
		t.Fatalf("a missing segment: %v, want ErrCorrupt", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// unwrite puts zeros over n bytes at off in segment 1, as a crash leaves
// the pages of a write that never reached the disk.
func unwrite(t *testing.T, fs vfs.FS, off int64, n int) {
	t.Helper()
	f, err := fs.OpenReadWrite("log/"+SegmentName(1), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}

// flip inverts the byte at off in segment 1.
func flip(t *testing.T, fs vfs.FS, off int64) {
	t.Helper()
	f, err := fs.OpenReadWrite("log/"+SegmentName(1), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// written is a frame appended at off in segment seg.
type written struct {
	seg  uint64
	off  int64
	data []byte
}

// TestSparseReads: a sparse reader returns the bytes a plain reader does,
// through a mapping of the segment where the filesystem has one (the
// operating system's), also for frames appended to the active segment
// after it was mapped and past the segment's size limit (read with pread
// there); and a removed segment's mapping goes with it.
func TestSparseReads(t *testing.T) {
	for _, fs := range []vfs.FS{vfs.Default, vfs.NewMem()} {
		dir := "log"
		if fs == vfs.Default {
			dir = t.TempDir()
		}
		l, err := Open(fs, dir, 64<<10, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.StartAppending(1, 0); err != nil {
			t.Fatal(err)
		}
		var frames []written
		check := func() {
			t.Helper()
			plain, sparse := l.NewReader(), l.NewSparseReader()
			defer plain.Release()
			defer sparse.Release()
			for _, w := range frames {
				a, err := plain.Read(w.seg, w.off, len(w.data))
				if err != nil || !bytes.Equal(a, w.data) {
					t.Fatalf("plain read of segment %d at %d: %v", w.seg, w.off, err)
				}
				b, err := sparse.Read(w.seg, w.off, len(w.data))
				if err != nil || !bytes.Equal(b, w.data) {
					t.Fatalf("sparse read of segment %d at %d: %v", w.seg, w.off, err)
				}
			}
		}
		for i := range 40 {
			f := frame(string(bytes.Repeat([]byte{byte(i)}, 3000+i*300)), "index")
			seg, off, err := l.Reserve()
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Write(f); err != nil {
				t.Fatal(err)
			}
			frames = append(frames, written{seg, off, f})
			if i%7 == 0 {
				check() // maps the segments as they are now
			}
		}
		check()
		if len(l.Segments()) < 2 {
			t.Fatalf("the frames fill %d segments", len(l.Segments()))
		}
		if fs == vfs.Default && l.mapping(1) == nil {
			t.Fatal("segment 1 on the operating system's filesystem was not mapped")
		}
		if err := l.Remove(1); err != nil {
			t.Fatal(err)
		}
		if m := l.mapping(1); m != nil {
			t.Fatal("a removed segment is still mapped")
		}
		frames = slices.DeleteFunc(frames, func(w written) bool { return w.seg == 1 })
		check()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// countingFS counts the bytes written to its files.
type countingFS struct {
	vfs.FS
	wrote *int64
}

func (fs countingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return countingFile{f, fs.wrote}, err
}

type countingFile struct {
	vfs.File
	wrote *int64
}

func (f countingFile) WriteAt(p []byte, off int64) (int, error) {
	*f.wrote += int64(len(p))
	return f.File.WriteAt(p, off)
}

// TestZerosAheadOfSmallFramesOnly: the space the log allocates ahead is
// written with zeros before a small frame (its sync then carries data
// alone), not before a bulk one; and what the frames wrote reads back.
func TestZerosAheadOfSmallFramesOnly(t *testing.T) {
	var wrote int64
	fs := countingFS{vfs.Default, &wrote}
	l, err := Open(fs, t.TempDir(), 64<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.StartAppending(1, 0); err != nil {
		t.Fatal(err)
	}
	write := func(f []byte) (extra int64) {
		t.Helper()
		before := wrote
		if _, _, err := l.Reserve(); err != nil {
			t.Fatal(err)
		}
		if err := l.Write(f); err != nil {
			t.Fatal(err)
		}
		return wrote - before - int64(len(f))
	}
	small := frame(string(bytes.Repeat([]byte{1}, 1000)), "index")
	if extra := write(small); l.alloc <= l.end {
		t.Skip("the filesystem does not preallocate")
	} else if extra != l.alloc-l.end {
		t.Fatalf("a small frame wrote %d bytes of zeros; want the %d allocated ahead", extra, l.alloc-l.end)
	}
	if extra := write(small); extra != 0 {
		t.Fatalf("a small frame within the zeros wrote %d bytes more", extra)
	}
	var frames [][]byte
	for i := range 3 {
		bulk := frame(string(bytes.Repeat([]byte{byte(2 + i)}, bulkFrame)), "index")
		if extra := write(bulk); extra != 0 {
			t.Fatalf("bulk frame %d wrote %d bytes of zeros", i, extra)
		}
		frames = append(frames, bulk)
	}
	if l.alloc <= l.end {
		t.Fatalf("the file ends at %d, its frames at %d", l.alloc, l.end)
	}
	if extra := write(small); extra != l.alloc-l.end {
		t.Fatalf("a small frame after bulk ones wrote %d bytes of zeros; want the %d allocated ahead", extra, l.alloc-l.end)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	r := l.NewReader()
	defer r.Release()
	off := 2 * int64(len(small))
	for i, f := range frames {
		got, err := r.Read(1, off, len(f))
		if err != nil || !bytes.Equal(got, f) {
			t.Fatalf("bulk frame %d at %d does not read back: %v", i, off, err)
		}
		off += int64(len(f))
	}
}

// TestGrowingReads: a growing reader returns what a plain reader does; a
// read of one record reads a few kilobytes, not a whole window; reads that
// go on through a segment double what each reads up to a whole window, and
// one that jumps further ahead, or to another segment, does not.
func TestGrowingReads(t *testing.T) {
	l, err := Open(vfs.NewMem(), "log", 4<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StartAppending(1, 0); err != nil {
		t.Fatal(err)
	}
	var frames []written
	for i := range 400 {
		f := frame(string(bytes.Repeat([]byte{byte(i)}, 2000)), "index")
		seg, off, err := l.Reserve()
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Write(f); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, written{seg, off, f})
	}
	read := func(r *Reader, w written) {
		t.Helper()
		got, err := r.Read(w.seg, w.off, len(w.data))
		if err != nil || !bytes.Equal(got, w.data) {
			t.Fatalf("read of segment %d at %d: %v", w.seg, w.off, err)
		}
	}

	// One record: a few kilobytes.
	r := l.NewGrowingReader()
	read(&r, frames[200])
	if len(r.buf) != sparseWindow || r.window != sparseWindow {
		t.Fatalf("a read of one record read %d bytes (window %d), want %d", len(r.buf), r.window, sparseWindow)
	}
	// A jump of more than a window ahead does not grow it.
	read(&r, frames[399])
	if r.window != sparseWindow {
		t.Fatalf("a jump of %d bytes grew the window to %d", frames[399].off-frames[200].off, r.window)
	}
	r.Release()

	// Reads through the segment grow it to a whole window.
	r = l.NewGrowingReader()
	defer r.Release()
	reads, last := 0, int64(-1)
	for _, w := range frames {
		read(&r, w)
		if r.base != last {
			reads, last = reads+1, r.base
		}
	}
	if r.window != readWindow {
		t.Fatalf("after a read of the whole segment the window is %d, want %d", r.window, readWindow)
	}
	total := frames[len(frames)-1].off + int64(len(frames[len(frames)-1].data)) - frames[0].off
	if most := 7 + int(total/readWindow) + 1; reads > most {
		t.Fatalf("a read of %d bytes took %d reads of the file, want at most %d", total, reads, most)
	}
}
