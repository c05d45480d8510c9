package diskstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
)

// The log's part of Check: its frames, read in order.

// logPos is where the scan is in the log.
type logPos struct {
	seg uint64
	off int64
}

// before reports whether p lies before the end of the frame marker m ends.
func (p logPos) before(m marker) bool {
	return p.seg < m.seg || p.seg == m.seg && p.off < m.end
}

// logScan is the state of the scan of the log's frames.
type logScan struct {
	next  uint64 // the first position of the next frame
	known bool   // next is known (it is not after damage)
	buf   []byte
	vals  [][]byte
	key   [9]byte
}

// checkLog reads the log's frames: every one of a log never compacted,
// those after the index's marker of a compacted one (before it, a
// compacted log has holes where frames' headers were).
func (c *checker) checkLog(ctx context.Context) error {
	lg := c.d.log
	segs := lg.Segments()
	c.r.Segments = len(segs)
	for _, s := range segs {
		size, err := lg.Size(s)
		if err != nil {
			return err
		}
		c.r.LogBytes += size
	}
	// The log is read about three times: its frames, then its events
	// through the locators and through the runs (twice for a compacted
	// log, whose frames are read only after the marker).
	if c.d.log.Compacted() {
		c.planned(2 * c.r.LogBytes)
	} else {
		c.planned(3 * c.r.LogBytes)
	}
	if len(segs) == 0 {
		if c.hasMark && c.mark.next > 0 {
			c.problem("log", Problem{File: "log", Offset: -1, Version: -1, Position: -1, Message: fmt.Sprintf("the log holds no segment, the index holds %d positions", c.mark.next)})
		}
		c.markFrame = true
		return nil
	}
	sc := &logScan{known: true}
	var at logPos
	if c.r.Compacted {
		if !c.hasMark {
			c.problem("log", Problem{File: "log", Offset: -1, Version: -1, Position: -1, Message: "the log was compacted, and the index holds no marker of where its frames end: nothing says where the log goes on"})
			return nil
		}
		at, sc.next = logPos{c.mark.seg, c.mark.end}, c.mark.next
		c.markFrame = true // it is before the frames read
		if err := lg.Has(c.mark.seg); err != nil {
			c.problem("log", Problem{File: segmentFile(c.mark.seg), Offset: -1, Version: -1, Position: -1, Message: "the segment of the index's marker is missing"})
			return nil
		}
	} else {
		at.seg = 1
		if segs[0] != 1 {
			c.problem("log", Problem{File: segmentFile(1), Offset: -1, Version: -1, Position: -1, Message: fmt.Sprintf("segments 1 to %d are missing, and the log was never compacted", segs[0]-1)})
			at.seg, sc.known = segs[0], false
		}
		c.markFrame = !c.hasMark
		if c.d.pdb != nil {
			r, err := newReplayIndex(c.opts.TempDir)
			if err != nil {
				return fmt.Errorf("diskstore: check: the scratch index: %w", err)
			}
			c.replay = r
		}
	}
	last := segs[len(segs)-1]
	for ; at.seg <= last; at = (logPos{at.seg + 1, 0}) {
		if !slices.Contains(segs, at.seg) {
			c.problem("log", Problem{File: segmentFile(at.seg), Offset: -1, Version: -1, Position: -1, Message: "the segment is missing: the log goes on in the next one"})
			sc.known = false
			continue
		}
		size, err := lg.Size(at.seg)
		if err != nil {
			return err
		}
		if at.off > size {
			c.problem("log", Problem{File: segmentFile(at.seg), Offset: size, Version: -1, Position: -1, Message: fmt.Sprintf("the segment ends at %d, before the end of the last frame the index holds (%d)", size, at.off)})
			continue
		}
		if err := c.scanSegment(ctx, sc, at, size, at.seg == last); err != nil {
			return err
		}
	}
	if !c.markFrame {
		c.indexProblem("", -1, -1, "the marker (segment %d, end %d, next position %d), the last frame the index holds, is not the end of a frame of the log", c.mark.seg, c.mark.end, c.mark.next)
	}
	return nil
}

// scanSegment reads the frames of segment at.seg from at.off to size.
func (c *checker) scanSegment(ctx context.Context, sc *logScan, at logPos, size int64, last bool) error {
	lg := c.d.log
	seg, off := at.seg, at.off
	for off < size {
		if err := ctx.Err(); err != nil {
			return err
		}
		frame, ok, intact, err := lg.InspectFrame(seg, off, size, sc.buf)
		sc.buf = frame
		if err != nil {
			return err
		}
		var fi frameInfo
		perr := errors.New("no frame starts here")
		if ok {
			fi, perr = parseFrame(frame, seg, off)
		}
		if ok && intact && perr == nil {
			c.frame(sc, seg, off, frame, fi)
			off += int64(len(frame))
			continue
		}
		// No intact frame at off: damage, or the end of the frames.
		nextOff, found, err := lg.NextFrame(seg, off+1, size)
		if err != nil {
			return err
		}
		acked := c.hasMark && (logPos{seg, off}).before(c.mark)
		if !found {
			nz, any, err := c.nonZero(seg, off, size)
			if err != nil {
				return err
			}
			switch {
			case !any:
			case !last:
				c.logProblem(seg, nz, -1, "damaged data after the segment's last whole frame (at %d), though the log goes on in the next segment", off)
			case acked:
				c.damagedFrame(sc, seg, off, frame, ok, intact, perr, fi, "it is the last frame of the log, and the index holds it")
			default:
				c.note("%s ends at offset %d with a frame that was being written when the store stopped, never acknowledged: the next open overwrites it", segmentFile(seg), off)
			}
			return nil
		}
		c.damagedFrame(sc, seg, off, frame, ok, intact, perr, fi, fmt.Sprintf("intact frames follow from offset %d", nextOff))
		off = nextOff
	}
	return nil
}

// frame checks one intact frame: its positions follow the frame before,
// its events' checksums; and replays its index writes when the index
// holds it, or counts it in the lag.
func (c *checker) frame(sc *logScan, seg uint64, off int64, frame []byte, fi frameInfo) {
	m, nev := fi.marker, fi.events
	c.r.Frames++
	first := m.next - uint64(nev)
	if sc.known && first != sc.next {
		if first > sc.next {
			c.logProblem(seg, off, int64(sc.next), "%s missing: the frame before ends at position %d, this one starts at %d", numbersAre("position", int64(sc.next), int64(first)-1), sc.next, first)
		} else {
			c.logProblem(seg, off, int64(first), "the frame starts at position %d, before the end of the frame before (%d)", first, sc.next)
		}
	}
	sc.next, sc.known = m.next, true
	events := seglog.FrameEvents(frame)
	sc.vals, _ = seglog.Records(events, sc.vals[:0]) // parseFrame checked them
	rec := int64(seglog.HeaderLen)
	for i, v := range sc.vals {
		pos := first + uint64(i)
		putEventKey(sc.key[:], pos)
		if _, err := decodeEvent(sc.key[:], v, pos, &c.sc); err != nil {
			c.damaged[pos] = c.logProblem(seg, off+rec, int64(pos), "the event is damaged: %v", errMessage(err))
		}
		rec += int64(uvarintLen(uint64(len(v))) + len(v))
	}
	c.r.Events += int64(nev)
	c.opts.progress(int64(nev), int64(len(frame)))
	end := logPos{seg, off + int64(len(frame))}
	switch {
	case c.hasMark && m.seg == c.mark.seg && m.end == c.mark.end:
		c.markFrame = true
		c.applyReplay(seg, off, frame, fi)
	case c.hasMark && end.before(c.mark):
		c.applyReplay(seg, off, frame, fi)
	default:
		c.r.Lag++
	}
	idCovered := c.hasIDMark && (end.before(c.idMark) || m.seg == c.idMark.seg && m.end == c.idMark.end)
	if idCovered {
		c.replayIDs(seg, off, frame, fi)
	}
	if covered := c.hasMark && (end.before(c.mark) || m.seg == c.mark.seg && m.end == c.mark.end); !c.d.runsInPebble && (covered || idCovered) {
		c.replayRuns(seg, off, frame, fi, covered && !idCovered)
	}
}

// replayRuns writes the runs of the appends of a frame the marker or the ID
// mark covers (in a store of format 5, whose runs reach the index up to the
// ID mark, runs.go) into the rebuilt index; and, with over set (a frame
// the marker covers and the ID mark does not), into the overlay, as Open
// takes them into memory.
func (c *checker) replayRuns(seg uint64, off int64, frame []byte, fi frameInfo, over bool) {
	var b *pebble.Batch
	if c.replay != nil {
		b = c.replay.db.NewBatch()
		defer b.Close()
	}
	if over && c.overlay == nil {
		c.overlay = c.d.pdb.NewIndexedBatch()
	}
	var k, v []byte
	err := frameRecords(frame, fi.marker.next-uint64(fi.events), nil, func(stream string, rn run) {
		k = appendRunKey(k[:0], stream, rn.first)
		v = appendRun(v[:0], k, rn.pos, rn.count, rn.span)
		if b != nil {
			_ = b.Set(k, v, nil)
		}
		if over {
			_ = c.overlay.Set(k, v, nil)
		}
	})
	if err == nil && b != nil {
		err = c.replay.db.Apply(b, pebble.NoSync)
	}
	if err != nil && c.replay != nil {
		c.note("the index was not rebuilt from the log for comparison: %v (at %s offset %d)", err, segmentFile(seg), off)
		c.replay.close()
		c.replay = nil
	}
}

// replayIDs writes the retry records of a frame the ID mark covers into
// the rebuilt index, as Open derives them from the frame (ids.go).
func (c *checker) replayIDs(seg uint64, off int64, frame []byte, fi frameInfo) {
	if c.replay == nil {
		return
	}
	b := c.replay.db.NewBatch()
	defer b.Close()
	err := frameRecords(frame, fi.marker.next-uint64(fi.events), func(k id128, rec idRec) {
		key := k.key()
		if rec.gone {
			_ = b.Delete(key, nil)
		} else {
			_ = b.Set(key, appendUint(nil, key, rec.pos), nil)
		}
	}, nil)
	if err == nil {
		err = c.replay.db.Apply(b, pebble.NoSync)
	}
	if err != nil {
		c.note("the index was not rebuilt from the log for comparison: %v (at %s offset %d)", err, segmentFile(seg), off)
		c.replay.close()
		c.replay = nil
	}
}

// applyReplay replays the frame's index writes into the rebuilt index, as
// Open replays them.
func (c *checker) applyReplay(seg uint64, off int64, frame []byte, fi frameInfo) {
	if c.replay == nil {
		return
	}
	// A frame written before the index's lists existed (format 2) holds
	// none of their blocks: a rebuild files its events itself, unless the
	// store is still in format 2 (its lists are built when it is
	// converted).
	err := c.replay.apply(seglog.FrameIndex(frame), c.d.runsInPebble, fi.marker.next-uint64(fi.events), fi.events)
	if err == nil && fi.events > 0 && !fi.filed && !c.d.migrate {
		err = c.replay.file(frame, seg, off, fi.marker.next-uint64(fi.events))
	}
	if err != nil {
		// parseFrame checked the batch: the scratch index failed.
		c.note("the index was not rebuilt from the log for comparison: %v (at %s offset %d)", err, segmentFile(seg), off)
		c.replay.close()
		c.replay = nil
	}
}

// damagedFrame reports a frame at off that is not intact: its checksum
// fails, or what it holds does not parse. what says why it is not the torn
// end of the log. When its events can still be told apart (and their
// positions are known: from the frame's marker, or from the frame
// before), their own checksums say whether they are damaged.
func (c *checker) damagedFrame(sc *logScan, seg uint64, off int64, frame []byte, ok, intact bool, perr error, fi frameInfo, what string) {
	m, nev := fi.marker, fi.events
	var records bool
	if ok {
		sc.vals, records = seglog.Records(seglog.FrameEvents(frame), sc.vals[:0])
	}
	first, known := sc.next, sc.known
	if ok && perr == nil {
		first, known = m.next-uint64(nev), true
	}
	if !records || !known {
		msg := "its header does not hold"
		if ok {
			msg = "its contents do not parse"
			if !intact {
				msg = "its checksum fails and " + msg
			}
		}
		c.logProblem(seg, off, -1, "damaged frame: %s (%s); the events in it are lost", msg, what)
		sc.known = false
		return
	}
	nev = len(sc.vals)
	var bad []uint64
	var at []int64
	rec := int64(seglog.HeaderLen)
	for i, v := range sc.vals {
		pos := first + uint64(i)
		putEventKey(sc.key[:], pos)
		if _, err := decodeEvent(sc.key[:], v, pos, &c.sc); err != nil {
			bad = append(bad, pos)
			at = append(at, off+rec)
		}
		rec += int64(uvarintLen(uint64(len(v))) + len(v))
	}
	span := "no events"
	if nev > 0 {
		span = numbers("position", int64(first), int64(first)+int64(nev)-1)
	}
	why := "the frame's checksum fails"
	if intact {
		why = fmt.Sprintf("the frame does not hold what the engine writes (%s)", errMessage(perr))
	}
	detail := "the events' own checksums hold: the damage is in the frame's index writes, which only a rebuild of the index reads"
	if len(bad) > 0 {
		detail = fmt.Sprintf("%d of its events are damaged", len(bad))
	}
	c.logProblem(seg, off, -1, "%s (%s; %s); %s", why, span, what, detail)
	for i, pos := range bad {
		c.damaged[pos] = c.logProblem(seg, at[i], int64(pos), "the event is damaged: its checksum fails")
	}
	sc.next, sc.known = first+uint64(nev), true
	c.r.Frames++
}

// nonZero returns the offset of the first byte that is not zero in segment
// seg from off to size.
func (c *checker) nonZero(seg uint64, off, size int64) (int64, bool, error) {
	buf := make([]byte, min(size-off, 1<<20))
	for at := off; at < size; at += int64(len(buf)) {
		p := buf[:min(int64(len(buf)), size-at)]
		if err := c.d.log.ReadAt(seg, at, p); err != nil {
			return 0, false, err
		}
		c.opts.progress(0, int64(len(p)))
		if i := slices.IndexFunc(p, func(b byte) bool { return b != 0 }); i >= 0 {
			return at + int64(i), true, nil
		}
	}
	return 0, false, nil
}

func (c *checker) planned(bytes int64) {
	if c.opts.Planned != nil {
		c.opts.Planned(bytes)
	}
}

// frameInfo is what parseFrame found in a frame.
type frameInfo struct {
	marker marker
	events int
	filed  bool // its index writes file its events in the index's lists
}

// parseFrame checks a frame read at offset off of segment seg, as Open
// checks each frame it replays (checkFrame), without knowing where the
// frame before ended. The marker is the frame's last index write, so its
// sealed value ends the frame; checkFrame then checks that it is.
func parseFrame(frame []byte, seg uint64, off int64) (frameInfo, error) {
	if len(frame) < seglog.HeaderLen+markerLen {
		return frameInfo{}, frameError(seg, off, "a frame of %d bytes holds no marker", len(frame))
	}
	m, err := decodeMarker(frame[len(frame)-markerLen:])
	if err != nil {
		return frameInfo{}, frameError(seg, off, "its last index write is not a marker: %s", errMessage(err))
	}
	recs, ok := seglog.Records(seglog.FrameEvents(frame), nil)
	if !ok || m.next < uint64(len(recs)) {
		return frameInfo{}, frameError(seg, off, "malformed event records")
	}
	fc, err := checkFrame(frame, seg, off, m.next-uint64(len(recs)))
	return frameInfo{marker: fc.marker, events: fc.events, filed: fc.filed}, err
}

func frameError(seg uint64, off int64, format string, args ...any) error {
	return fmt.Errorf("diskstore: %w: log segment %d: frame at offset %d: %s", cairn.ErrCorrupt, seg, off, fmt.Sprintf(format, args...))
}

// errMessage is err's text without the package's prefix.
func errMessage(err error) string {
	var ce *corruptError
	if errors.As(err, &ce) {
		return ce.reason
	}
	return err.Error()
}

func errorsIsCorrupt(err error) bool { return errors.Is(err, cairn.ErrCorrupt) }
