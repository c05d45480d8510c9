package diskstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// init checks the format key, writing it in a new store.
func (d *DB) init() error {
	v, closer, err := d.pdb.Get(formatKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		it, err := d.pdb.NewIter(nil)
		if err != nil {
			return indexFault{err}
		}
		nonEmpty := it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return indexFault{err}
		}
		if nonEmpty {
			return fmt.Errorf("the directory holds a pebble database that is not a cairn store")
		}
		if d.opts.ReadOnly {
			return ErrNoStore
		}
		// A new store, or an index removed to be rebuilt from the log.
		// The replay files the events of any frame written before the
		// index existed (see recover).
		if err := d.pdb.Set(formatKey, formatValue(FormatVersion), pebble.NoSync); err != nil {
			return indexFault{err}
		}
		if err := d.pdb.Flush(); err != nil {
			return indexFault{err}
		}
	case err != nil:
		return indexFault{err}
	default:
		p, err := unseal(formatKey, v)
		ok := err == nil && len(p) == len(formatMagic)+4 && string(p[:len(formatMagic)]) == formatMagic
		var version uint32
		if ok {
			version = uint32(p[len(p)-4])<<24 | uint32(p[len(p)-3])<<16 | uint32(p[len(p)-2])<<8 | uint32(p[len(p)-1])
		}
		_ = closer.Close()
		if !ok {
			return indexFault{fmt.Errorf("%w: unreadable format record", cairn.ErrCorrupt)}
		}
		switch version {
		case FormatVersion:
		case formatRunsInIndex:
			d.runsInPebble = true
		case formatIDsInFrames:
			d.idsInIndex, d.runsInPebble = true, true
		case formatNoIndex:
			// Open builds the index of categories, types and tags once
			// the log is replayed (migrate.go).
			d.migrate, d.idsInIndex, d.runsInPebble = true, true, true
		default:
			return fmt.Errorf("on-disk format version %d; this build reads versions %d to %d", version, formatNoIndex, FormatVersion)
		}
	}
	return nil
}

// formatValue is the value of the format record for version v.
func formatValue(v uint32) []byte {
	return seal(formatKey, binary.BigEndian.AppendUint32([]byte(formatMagic), v))
}

// recover brings the index up to date with the log: it replays the index
// writes of the frames after the one the index on disk last recorded (those
// still in pebble's memtable when the process or the machine stopped),
// finds the end of the log, and makes the last segment the one appended to.
//
// A frame with events and no index list entries was written before the
// index of categories, types and tags existed (format 2): when the index
// is rebuilt from such a log, the replay files its events itself (as the
// committer would have, see fileFrame). In a store still in format 2, the
// conversion files every event after the replay instead (migrate.go).
func (d *DB) recover() error {
	m, ok, err := d.marker(d.pdb)
	if err != nil {
		return indexFault{err}
	}
	if err := d.markIDs(m, ok); err != nil {
		return indexFault{err}
	}
	segs := d.log.Segments()
	// A read-only store takes no appends, and needs no retry records:
	// the retry records a replay would derive are no reason to refuse it.
	idsDue := func(fm marker) bool { return !d.opts.ReadOnly && (!d.ids.marked || fm.after(d.ids.mark)) }
	// Runs are read: the runs of the frames after the ID mark are taken
	// into memory by every open (runs.go), but in a store of format 4 or
	// before, whose index holds the runs of every frame up to its marker.
	runsDue := func(fm marker) bool { return !d.runsInPebble && (!d.ids.marked || fm.after(d.ids.mark)) }
	replayAll := !ok || idsDue(marker{}) || runsDue(marker{})
	if replayAll {
		// The index holds no frame of the log, or no retry record of
		// one: a new store, a crash before the index was first flushed
		// (or its retry records first ingested), or an index removed to
		// be rebuilt. The whole log is replayed, which only a log never
		// compacted allows: compaction frees the frames' index writes
		// and headers (a replay would take the first freed bytes for
		// the end of the log, and overwrite what follows) and removes
		// whole segments.
		if len(segs) > 0 && (segs[0] != 1 || d.log.Compacted()) {
			return errNoRebuild
		}
	}
	// The replay starts after the older of the marker and the ID mark.
	from := m
	switch {
	case replayAll:
		from = marker{seg: 1}
	case idsDue(m) || runsDue(m):
		from = d.ids.mark
	}
	if !replayAll {
		if err := d.log.Has(from.seg); err != nil {
			return err
		}
	}
	var buf []byte
	seg, end, next := from.seg, from.end, from.next
	for len(segs) > 0 {
		size, err := d.log.Size(seg)
		if err != nil {
			return err
		}
		for {
			var frame []byte
			var whole bool
			frame, whole, err = d.log.ReadFrame(seg, end, size, buf)
			buf = frame
			if err != nil {
				return err
			}
			if !whole {
				if err := d.log.CheckTail(seg, end, size); err != nil {
					return err
				}
				break
			}
			fc, err := checkFrame(frame, seg, end, next)
			if err != nil {
				return err
			}
			fm := fc.marker
			next = fm.next
			if !ok || fm.after(m) {
				if d.opts.ReadOnly {
					return ErrNeedsRecovery
				}
				if err := d.replayFrame(frame, fc, seg, end); err != nil {
					return err
				}
			}
			if ids, runs := idsDue(fm), runsDue(fm); ids || runs {
				var put func(id128, idRec)
				var putRun func(string, run)
				if ids {
					put = d.ids.put
				}
				if runs {
					putRun = d.ids.putRun
				}
				if err := frameRecords(frame, fm.next-uint64(fc.events), put, putRun); err != nil {
					return err
				}
				if !d.opts.ReadOnly && d.ids.pending() >= replayIDBatch {
					if err := d.ingestIDs(d.ids.cur, d.ids.runs, fm); err != nil {
						return indexFault{err}
					}
					d.ids.cur, d.ids.runs, d.ids.mark, d.ids.marked = nil, nil, fm, true
					d.ids.regen()
				}
			}
			end += int64(len(frame))
		}
		if err := d.log.Has(seg + 1); err != nil {
			break
		}
		seg, end = seg+1, 0
	}
	if !d.opts.ReadOnly {
		if err := d.log.StartAppending(seg, end); err != nil {
			return err
		}
	}
	// The committer's state is read from the index only now that it holds
	// every frame of the log: read before the replay, it would miss the
	// writes acknowledged after the index was last flushed.
	m, _, err = d.marker(d.pdb)
	if err != nil {
		return indexFault{err}
	}
	d.next, d.written = m.next, m
	if !d.opts.ReadOnly {
		if err := d.settle(); err != nil {
			return indexFault{err}
		}
	}
	if err := d.loadMaxID(); err != nil {
		return indexFault{err}
	}
	switch _, closer, err := d.pdb.Get(cutKey); {
	case err == nil:
		_ = closer.Close()
		d.cut.Store(true)
	case !errors.Is(err, pebble.ErrNotFound):
		return indexFault{err}
	}
	return nil
}

// replayFrame applies the index writes of a frame (checked by checkFrame)
// to pebble's memtable, but for its retry records (ids.go), and files the
// events of a frame that holds no index lists.
func (d *DB) replayFrame(frame []byte, fc checkedFrame, seg uint64, off int64) error {
	repr := seglog.FrameIndex(frame)
	var b *pebble.Batch
	if fc.ids || !d.runsInPebble {
		var err error
		if b, err = withoutIDs(d.pdb, repr, true, !d.runsInPebble, fc.marker.next-uint64(fc.events), fc.events); err != nil {
			return fmt.Errorf("%w: log segment %d offset %d: %v", cairn.ErrCorrupt, seg, off, err)
		}
	} else {
		b = d.pdb.NewBatch()
		if err := b.SetRepr(slices.Clone(repr)); err != nil {
			_ = b.Close()
			return fmt.Errorf("%w: log segment %d offset %d: %v", cairn.ErrCorrupt, seg, off, err)
		}
	}
	defer b.Close()
	if err := d.pdb.Apply(b, pebble.NoSync); err != nil {
		return indexFault{err}
	}
	d.unflushed += memSize(b)
	if fc.events > 0 && !fc.filed && !d.migrate {
		return d.fileFrame(frame, seg, off, fc.marker.next-uint64(fc.events))
	}
	return nil
}

// markIDs reads the ID mark (ids.go), given the marker m (ok: there is
// one). The index of a store of format 3 or 2 holds the retry records of
// every frame up to its marker: a read-write open records the ID mark
// there, and version 4 with it (a store of version 2 is converted later,
// see migrate.go).
func (d *DB) markIDs(m marker, ok bool) error {
	if !d.idsInIndex {
		return d.loadIDMark()
	}
	d.ids.mark, d.ids.marked = m, ok
	if d.opts.ReadOnly {
		return nil
	}
	b := d.pdb.NewBatch()
	defer b.Close()
	if ok {
		v := make([]byte, markerLen)
		putMarkerAt(idMarkKey, v, m)
		if err := b.Set(idMarkKey, v, nil); err != nil {
			return err
		}
	}
	if !d.migrate {
		if err := b.Set(formatKey, formatValue(formatRunsInIndex), nil); err != nil {
			return err
		}
	}
	if err := d.pdb.Apply(b, pebble.NoSync); err != nil {
		return err
	}
	// Flushed before anything is ingested: the memtable must hold no key
	// an ingest's tables span.
	return d.pdb.Flush()
}

// loadMaxID finds the greatest event ID with a retry record, the floor of
// the committer's recent IDs (recentids.go). The committer skips the retry
// lookup of an append whose first ID is greater and not among those it
// recorded since, so it must be called after the replay: an ID recorded in
// a replayed frame and missed here would make a retry of its append, or an
// append of the same ID to another stream, be written again.
func (d *DB) loadMaxID() error {
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixID}, UpperBound: []byte{prefixID + 1}})
	if err != nil {
		return wrapErr(err)
	}
	var floor uuid.UUID
	if it.Last() && len(it.Key()) == 17 {
		copy(floor[:], it.Key()[1:])
	}
	d.recent.reset(floor)
	return wrapErr(errors.Join(it.Error(), it.Close()))
}

// marker reads the marker: the end of the last frame the index holds.
func (d *DB) marker(r pebble.Reader) (marker, bool, error) {
	return readMarkerAt(r, markerKey)
}

// readMarkerAt reads the marker, or the ID mark, under key.
func readMarkerAt(r pebble.Reader, key []byte) (marker, bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return marker{}, false, nil
	}
	if err != nil {
		return marker{}, false, wrapErr(err)
	}
	defer closer.Close()
	m, err := decodeMarkerAt(key, v)
	return m, err == nil, err
}
