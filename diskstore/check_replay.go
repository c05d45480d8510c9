package diskstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// The comparison of a never-compacted store's index with the index its
// log rebuilds: every frame's index writes up to the index's marker are
// replayed into a scratch database (as Open replays them into an empty
// index), which then must equal the store's index entry for entry, but
// for the format record (written when the store was made, in no frame).
// It finds what the other checks cannot: an entry missing or left over,
// a state record or a snapshot that is well formed but wrong, and entries
// of kinds the other checks do not know.

// replayIndex is the scratch database.
type replayIndex struct {
	dir string
	db  *pebble.DB
	// filer files the events of frames without index lists, as Open's
	// replay does (fileFrame), into db.
	filer *DB
}

func newReplayIndex(tempDir string) (*replayIndex, error) {
	dir, err := os.MkdirTemp(tempDir, "cairn-check-")
	if err != nil {
		return nil, err
	}
	d := &DB{opts: Options{FS: vfs.Default}}
	d.opts.ensureDefaults()
	d.lg = d.opts.Logger
	po := d.pebbleOptions()
	po.CacheSize = 8 << 20
	po.EventListener = nil
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	d.pdb = db
	return &replayIndex{dir: dir, db: db, filer: d}, nil
}

// file files the events of a frame that holds no blocks of the index's
// lists, whose first event is at position first.
func (r *replayIndex) file(frame []byte, seg uint64, off int64, first uint64) error {
	err := r.filer.fileFrame(frame, seg, off, first)
	r.filer.lists.evict(r.filer.opts.MaxCachedStreams)
	return err
}

// apply replays one frame's index writes, checked by parseFrame; without
// the runs of its appends (of count events from position first) when runs
// is false, as Open replays a frame of format 5 (runs.go).
func (r *replayIndex) apply(repr []byte, runs bool, first uint64, count int) error {
	var b *pebble.Batch
	if runs {
		b = r.db.NewBatch()
		if err := b.SetRepr(slices.Clone(repr)); err != nil {
			_ = b.Close()
			return err
		}
	} else {
		var err error
		if b, err = withoutIDs(r.db, repr, false, true, first, count); err != nil {
			return err
		}
	}
	defer b.Close()
	return r.db.Apply(b, pebble.NoSync)
}

func (r *replayIndex) close() {
	_ = r.db.Close() // scratch: removed below
	_ = os.RemoveAll(r.dir)
}

// maxDifferences bounds the differences reported one by one.
const maxDifferences = 50

// compare compares the store's index with the rebuilt one.
func (c *checker) compare(ctx context.Context) error {
	got, err := c.indexIter()
	if err != nil {
		return wrapErr(err)
	}
	want, err := c.replay.db.NewIter(nil)
	if err != nil {
		return errors.Join(err, got.Close())
	}
	skip := func(it *pebble.Iterator, ok bool) bool {
		for ok && (bytes.Equal(it.Key(), formatKey) || bytes.Equal(it.Key(), spacerKey) || bytes.Equal(it.Key(), idMarkKey)) {
			ok = it.Next()
		}
		return ok
	}
	g, w := skip(got, got.First()), skip(want, want.First())
	var n, more int
	report := func(key []byte, msg string) {
		if n < maxDifferences {
			n++
			stream, version, pos := describeKey(key)
			c.indexProblem(stream, version, pos, "%s", msg)
			return
		}
		more++
	}
	var steps int
	for g || w {
		if steps++; steps%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return errors.Join(err, got.Close(), want.Close())
			}
		}
		switch cmp := compareIters(got, g, want, w); {
		case cmp < 0:
			report(got.Key(), fmt.Sprintf("the index holds %s, which the log never wrote", kindOf(got.Key())))
			g = skip(got, got.Next())
		case cmp > 0:
			report(want.Key(), fmt.Sprintf("the index lacks %s, which the log holds", kindOf(want.Key())))
			w = skip(want, want.Next())
		default:
			if !bytes.Equal(got.Value(), want.Value()) {
				report(got.Key(), fmt.Sprintf("%s differs from the log's%s", kindOf(got.Key()), valueDiff(got.Key(), got.Value(), want.Value())))
			}
			g, w = skip(got, got.Next()), skip(want, want.Next())
		}
	}
	err = errors.Join(got.Error(), want.Error(), got.Close(), want.Close())
	if more > 0 {
		c.indexProblem("", -1, -1, "and %d more differences between the index and the log", more)
	}
	if err != nil && errorsIsCorrupt(wrapErr(err)) {
		c.indexProblem("", -1, -1, "reading the index: %s", oneLine(err))
		return nil
	}
	return wrapErr(err)
}

// compareIters orders the keys under two iterators, an exhausted one
// last.
func compareIters(a *pebble.Iterator, aok bool, b *pebble.Iterator, bok bool) int {
	switch {
	case !aok:
		return 1
	case !bok:
		return -1
	}
	return bytes.Compare(a.Key(), b.Key())
}

// kindOf names the entry under key.
func kindOf(key []byte) string {
	switch key[0] {
	case prefixMarker:
		return "the marker (the last frame it holds)"
	case prefixLocator:
		return "the locator"
	case prefixRun:
		return "the run"
	case prefixMeta:
		return "the stream's state record"
	case prefixID:
		if len(key) == 17 {
			id, _ := uuid.FromBytes(key[1:])
			return fmt.Sprintf("the retry record of event %s", id)
		}
		return "a retry record"
	case prefixSnapshot:
		return "the stream's snapshot"
	case prefixTable:
		return fmt.Sprintf("the read model entry %q", key[1:])
	case prefixList:
		if len(key) >= 1+1+1+8 {
			return fmt.Sprintf("the block from entry %d of the index list %s", blockKeyNumber(key), listName(key))
		}
	case prefixCut:
		return "the record that compaction removed events"
	case prefixIDMark:
		return "the ID mark (the last frame whose retry records it holds)"
	}
	return fmt.Sprintf("the entry %q", key)
}

// describeKey returns the stream, version and position a key names (""
// and -1 where it names none).
func describeKey(key []byte) (stream string, version, pos int64) {
	version, pos = -1, -1
	switch key[0] {
	case prefixLocator:
		if len(key) == 9 {
			pos = int64(binary.BigEndian.Uint64(key[1:]))
		}
	case prefixRun:
		if len(key) >= 10 {
			stream, version = string(key[1:len(key)-9]), runKeyVersion(key)
		}
	case prefixMeta, prefixSnapshot:
		stream = string(key[1:])
	}
	return stream, version, pos
}

// valueDiff says how the values of a state record, a run or the marker
// differ.
func valueDiff(key, got, want []byte) string {
	switch key[0] {
	case prefixMeta:
		g, gerr := decodeMeta(key, got)
		w, werr := decodeMeta(key, want)
		if gerr == nil && werr == nil {
			return fmt.Sprintf(": the index says %s; the log %s", metaString(g), metaString(w))
		}
	case prefixRun, prefixLocator:
		g, gerr := decodeRun(key, got)
		w, werr := decodeRun(key, want)
		if gerr == nil && werr == nil {
			return fmt.Sprintf(": the index says %s; the log %s", runString(g), runString(w))
		}
	case prefixMarker:
		g, gerr := decodeMarker(got)
		w, werr := decodeMarker(want)
		if gerr == nil && werr == nil {
			return fmt.Sprintf(": the index says segment %d end %d next position %d; the log segment %d end %d next position %d", g.seg, g.end, g.next, w.seg, w.end, w.next)
		}
	}
	return ""
}

func metaString(m meta) string {
	state := "live"
	switch {
	case m.flags&flagTombstoned != 0:
		state = "tombstoned"
	case m.flags&flagDeleted != 0:
		state = "deleted"
	}
	return fmt.Sprintf("%s, versions below %d hidden, below %d removed", state, m.before, m.purged)
}

func runString(r run) string {
	return fmt.Sprintf("%d events from position %d at segment %d offset %d", r.count, r.pos, r.seg, r.off)
}
