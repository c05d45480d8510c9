package diskstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
)

// Filing the events written before the index of categories, types and
// tags existed (on-disk format 2).
//
// A store of format 2 is converted by the first Open that may write to it:
// once the log is replayed, buildIndex files every event the log holds, in
// position order, as the committer would have (one block per key per
// locator), then records format 3 and flushes the index. Until the format
// record says 3, Open does it again from the start (it first removes any
// block an interrupted conversion left), so a crash during the conversion
// loses nothing; once it says 3, it never runs again. A read-only Open of a
// format 2 store is refused with an error matching ErrNeedsRecovery, which
// says to open it for writing once.
//
// Building the index at Open, rather than refusing the store, keeps a
// user's existing store working across the upgrade; it costs one read of
// the log (0.73 s of CPU for a store of 2M events on the development
// machine, 5.1 s of wall time at a load average of 30).
//
// When the index is rebuilt from the log (its files removed), the replay
// meets the frames written before the conversion, which hold events and no
// blocks: it files their events itself (fileFrame), before the frames
// that follow, which hold blocks numbered after them.

// errNeedsIndex is the error of a read-only Open of a store of format 2.
type errNeedsIndex struct{}

func (errNeedsIndex) Error() string {
	return fmt.Sprintf("diskstore: the store is in on-disk format %d, without the index of categories, types and tags: open it once for writing (not read-only) to build the index and convert it to format %d", formatNoIndex, FormatVersion)
}

func (errNeedsIndex) Is(target error) bool { return target == ErrNeedsRecovery }

// fileFrame files the events of a frame replayed from the log (at offset
// off of segment seg), whose first event is at position first, in the
// index, in a batch of their own.
func (d *DB) fileFrame(frame []byte, seg uint64, off int64, first uint64) error {
	ev := int(binary.LittleEndian.Uint32(frame[4:]))
	return d.fileRecords(frame[seglog.HeaderLen:seglog.HeaderLen+ev], seg, off+seglog.HeaderLen, first)
}

// fileRecords files the events whose records are p, at offset off of
// segment seg in the log, the first at position first, and applies the
// blocks to the index.
func (d *DB) fileRecords(p []byte, seg uint64, off int64, first uint64) error {
	f := &d.filing
	f.reset()
	var sc strCache
	var key [9]byte
	pos := first
	for at := 0; at < len(p); pos++ {
		n, k := binary.Uvarint(p[at:])
		if k <= 0 || uint64(len(p)-at-k) < n {
			return corruptf(eventKey(pos), "log segment %d offset %d: malformed event record", seg, off+int64(at))
		}
		rec := p[at+k : at+k+int(n)]
		putEventKey(key[:], pos)
		e, err := decodeEvent(key[:], rec, pos, &sc)
		if err != nil {
			return err
		}
		if err := f.file(&d.lists, d.pdb, e.StreamID, e.Version, &e.EventData, pos, off+int64(at), int64(k)+int64(n)); err != nil {
			return indexFault{err}
		}
		at += k + int(n)
	}
	if len(f.order) == 0 {
		return nil
	}
	b := d.pdb.NewBatch()
	defer b.Close()
	if err := f.write(seg, func(k, v []byte) error { return b.Set(k, v, nil) }); err != nil {
		return indexFault{err}
	}
	if err := d.pdb.Apply(b, pebble.NoSync); err != nil {
		return indexFault{err}
	}
	d.unflushed += memSize(b)
	f.settle()
	return nil
}

// buildIndex converts a store of format 2: it files every event of the
// log in the index, then records format 3 and flushes the index.
func (d *DB) buildIndex() error {
	start := time.Now()
	d.lg.Info("diskstore: building the index of categories, types and tags of a store of on-disk format 2")
	// Blocks an interrupted conversion left.
	if err := d.pdb.DeleteRange(listBounds.LowerBound, listBounds.UpperBound, pebble.NoSync); err != nil {
		return indexFault{err}
	}
	d.lists = listHeads{}
	it, err := d.pdb.NewIter(&locatorBounds)
	if err != nil {
		return indexFault{err}
	}
	lr := d.log.NewReader()
	events, frames := uint64(0), 0
	for valid := it.First(); valid; valid = it.Next() {
		var loc run
		if loc, err = decodeRun(it.Key(), it.Value()); err != nil {
			break
		}
		var p []byte
		if p, err = lr.Read(loc.seg, loc.off, int(loc.bytes)); err != nil {
			break
		}
		// The window is reused by the next read: fileRecords decodes
		// before it.
		if err = d.fileRecords(p, loc.seg, loc.off, loc.pos); err != nil {
			break
		}
		events += uint64(loc.count)
		frames++
		d.lists.evict(d.opts.MaxCachedStreams)
	}
	lr.Release()
	if err = errors.Join(err, it.Error(), it.Close()); err != nil {
		return wrapErr(err)
	}
	if err := d.pdb.Set(formatKey, formatValue(FormatVersion), pebble.NoSync); err != nil {
		return indexFault{err}
	}
	// The blocks, then the format record that says they are there, reach
	// the disk together (or the blocks first, with earlier flushes).
	if err := d.pdb.Flush(); err != nil {
		return indexFault{err}
	}
	d.migrate, d.runsInPebble = false, false
	d.lg.Info(fmt.Sprintf("diskstore: built the index; the store is now in on-disk format %d", FormatVersion), "events", events, "locators", frames, "took", time.Since(start))
	return nil
}
