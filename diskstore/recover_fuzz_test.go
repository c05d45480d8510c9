package diskstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// recoverBase is a store crashed with part of its log not yet in the
// index, so that Open replays it, over several segments.
type recoverBase struct {
	fs     *vfs.MemFS
	events []cairn.Event     // what a full read returned before the crash
	seg    map[uint64]uint64 // the segment that holds each position
	last   uint64            // the last segment
	opts   func(vfs.FS) Options
}

var (
	recoverOnce sync.Once
	recoverFix  recoverBase
	recoverErr  error
)

// fuzzRecoverBase builds the store once per process: appends, a delete and
// a truncation that reach the index on disk (the store is closed), then
// appends that only the log holds when the filesystem is cloned as a crash
// would leave it (pebble keeps no log of its own).
func fuzzRecoverBase() (recoverBase, error) {
	recoverOnce.Do(func() { recoverFix, recoverErr = buildRecoverBase() })
	return recoverFix, recoverErr
}

func buildRecoverBase() (recoverBase, error) {
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	opts := func(fs vfs.FS) Options {
		return Options{FS: fs, SegmentBytes: 512, MemTableBytes: 256 << 10, CacheBytes: 1 << 20}
	}
	ev := func(i int) []cairn.EventData {
		e := cairn.EventData{Type: "E", Data: fmt.Appendf(nil, `{"n":%d}`, i), Tags: []string{"t"}}
		e.ID[0], e.ID[15] = 0xee, byte(i+1)
		return []cairn.EventData{e}
	}
	db, err := Open("db", opts(fs))
	if err != nil {
		return recoverBase{}, err
	}
	steps := []func() error{}
	for i := range 4 {
		steps = append(steps, func() error { _, err := db.Append(ctx, fmt.Sprintf("s%d", i%3), cairn.Any, ev(i)); return err })
	}
	steps = append(steps,
		func() error { return db.DeleteStream(ctx, "s1", cairn.Any) },
		func() error { return db.TruncateStream(ctx, "s0", 1) },
		db.Close,
	)
	for _, step := range steps {
		if err := step(); err != nil {
			return recoverBase{}, err
		}
	}
	if db, err = Open("db", opts(fs)); err != nil {
		return recoverBase{}, err
	}
	defer db.Close()
	for i := 4; i < 10; i++ {
		if _, err := db.Append(ctx, fmt.Sprintf("s%d", i%3), cairn.Any, ev(i)); err != nil {
			return recoverBase{}, err
		}
	}
	b := recoverBase{fs: fs.CrashClone(vfs.CrashCloneCfg{}), seg: map[uint64]uint64{}, opts: opts}
	if b.events, err = db.ReadAll(ctx, 0, 1000, cairn.Forward); err != nil {
		return recoverBase{}, err
	}
	it, err := db.pdb.NewIter(&locatorBounds)
	if err != nil {
		return recoverBase{}, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		loc, err := decodeRun(it.Key(), it.Value())
		if err != nil {
			return recoverBase{}, errors.Join(err, it.Close())
		}
		for p := loc.pos; p < loc.pos+uint64(loc.count); p++ {
			b.seg[p] = loc.seg
		}
		b.last = max(b.last, loc.seg)
	}
	return b, it.Close()
}

// FuzzRecover damages the log of a crashed store, then opens it: Open
// replays what the index lacks and finds the end of the log. Whatever the
// damage, the store opens or fails with an error matching cairn.ErrCorrupt;
// a read returns the events written, or fails so; no event changes.
// Damage that could be the torn end of a crash may lose events of the last
// segment, never of an earlier one (all of whose frames were synced and
// acknowledged before the log went on in the next).
//
// op chooses the damage: 0 appends data after the last segment, 1
// overwrites data at offset at of segment which, 2 appends a frame with a
// correct checksum whose body is data (events bytes: at), as only a bug
// could write.
func FuzzRecover(f *testing.F) {
	f.Add(byte(0), byte(0), uint32(0), []byte("garbage after the end of the log"))
	f.Add(byte(0), byte(0), uint32(0), []byte("cLF1\x10\x00\x00\x00\x10\x00\x00\x00"))
	// The base's segments 1 to 4 hold frames at 0, 198, 398 | 0, 185, 263,
	// 336 | 0, 185, 372 | 0, 185; the index on disk ends at 336 in segment
	// 2, and the frames after are replayed.
	f.Add(byte(1), byte(0), uint32(200), []byte{0xff})                       // an event indexed already
	f.Add(byte(1), byte(1), uint32(340), []byte{0xff})                       // a frame replayed
	f.Add(byte(1), byte(2), uint32(372), []byte("X"))                        // the magic of a segment's last frame
	f.Add(byte(1), byte(2), uint32(372), make([]byte, frameHeader))          // its header
	f.Add(byte(1), byte(2), uint32(0), make([]byte, 600))                    // a whole segment
	f.Add(byte(1), byte(3), uint32(185), []byte("cLF1\x00\x00\x00\x00\x00")) // the log's last frame
	f.Add(byte(2), byte(0), uint32(0), []byte{})
	f.Add(byte(2), byte(0), uint32(0), []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\x01A\x00"))
	f.Add(byte(2), byte(0), uint32(0), []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x16\x01A"))      // an ingestion
	f.Add(byte(2), byte(0), uint32(0), []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x15\x01A\x01B")) // a range key
	f.Add(byte(2), byte(0), uint32(0), []byte("\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x01\x01A\x00"))  // a wrong count
	f.Fuzz(func(t *testing.T, op, which byte, at uint32, data []byte) {
		base, err := fuzzRecoverBase()
		if err != nil {
			t.Fatal(err)
		}
		fs := base.fs.CrashClone(vfs.CrashCloneCfg{})
		names, err := fs.List("db/log")
		if err != nil {
			t.Fatal(err)
		}
		var segs []string
		for _, n := range names {
			if _, ok := parseSegmentName(n); ok {
				segs = append(segs, n)
			}
		}
		slices.Sort(segs)
		if len(segs) < 3 {
			t.Fatalf("the base store has %d segments, want several", len(segs))
		}
		lastSeg, _ := parseSegmentName(segs[len(segs)-1])
		if lastSeg != base.last {
			t.Fatalf("last segment %d holds no event", lastSeg)
		}
		name := segs[len(segs)-1]
		strict := false // every event must come back
		switch op % 3 {
		case 0:
			strict = !bytes.HasPrefix(data, []byte(frameMagic))
		case 1:
			name = segs[int(which)%len(segs)]
		case 2:
			ev := int(at) % (len(data) + 1)
			fr := append(beginFrame(nil), data...)
			sealFrame(fr, ev)
			data = fr
		}
		w, err := fs.OpenReadWrite("db/log/"+name, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		st, err := w.Stat()
		if err != nil {
			t.Fatal(err)
		}
		off := st.Size()
		if op%3 == 1 {
			off = int64(at) % max(st.Size(), 1)
		}
		if _, err := w.WriteAt(slices.Clone(data), off); err != nil { // under -race, pebble scribbles over what it wrote
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		n, _ := parseSegmentName(name)
		damaged := fmt.Sprintf("segment %d offset %d: %d bytes %.32x", n, off, len(data), data)

		got, ok := openAndRead(t, base.opts(fs), damaged)
		if !ok {
			return
		}
		want := map[uint64]cairn.Event{}
		for _, e := range base.events {
			want[e.Position] = e
		}
		for _, e := range got {
			if w, ok := want[e.Position]; !ok || !sameEvent(e, w) {
				t.Fatalf("damage at %s: read %+v at position %d, want %+v", damaged, e, e.Position, w)
			}
			delete(want, e.Position)
		}
		for p, e := range want {
			if strict || (op%3 == 1 && base.seg[p] != base.last) {
				t.Fatalf("damage at %s: the event at position %d (segment %d) is gone: %+v", damaged, p, base.seg[p], e)
			}
		}
		if !strict {
			return
		}
		// The store goes on after the end of the log.
		db, err := Open("db", base.opts(fs))
		if err != nil {
			t.Fatal(err)
		}
		more, err := db.Append(context.Background(), "after", cairn.NoStream, []cairn.EventData{{Type: "After"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		got, ok = openAndRead(t, base.opts(fs), damaged)
		if !ok || len(got) != len(base.events)+1 || got[len(got)-1].Position != more.Position {
			t.Fatalf("after appending past the damage at %s: %d events (%v), want %d", damaged, len(got), ok, len(base.events)+1)
		}
	})
}

// openAndRead opens the store and reads its whole log. ok is false when
// either fails with ErrCorrupt; any other error fails the test.
func openAndRead(t *testing.T, opts Options, damaged string) (events []cairn.Event, ok bool) {
	t.Helper()
	db, err := Open("db", opts)
	if err != nil {
		if !errors.Is(err, cairn.ErrCorrupt) {
			t.Fatalf("damage at %s: Open: %v, want nil or ErrCorrupt", damaged, err)
		}
		return nil, false
	}
	defer func() {
		if err := db.Close(); err != nil && !errors.Is(err, cairn.ErrCorrupt) {
			t.Fatalf("damage at %s: Close: %v", damaged, err)
		}
	}()
	events, err = db.ReadAll(context.Background(), 0, 1000, cairn.Forward)
	if err != nil {
		if !errors.Is(err, cairn.ErrCorrupt) {
			t.Fatalf("damage at %s: ReadAll: %v, want nil or ErrCorrupt", damaged, err)
		}
		return nil, false
	}
	return events, true
}
