package diskstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// The index's part of Check: every entry, in key order, against the log.
// Locators come first ('L'), then retry records ('i'), streams' states
// ('m') and runs ('r'), so that each kind can be checked against the ones
// before it.

// locRange is one locator.
type locRange struct {
	pos   uint64
	count int64
	span
}

func (l locRange) end() uint64 { return l.pos + uint64(l.count) }

// streamTally is what the locators' events say of one stream.
type streamTally struct {
	events  int64
	last    int64
	lastPos uint64
}

// runState is what the runs of the stream being read say.
type runState struct {
	stream   string
	meta     meta
	hasMeta  bool
	have     bool  // a run was read
	last     int64 // the last version of the last run
	live     int64 // the events of its runs that compaction kept
	lastLive int64 // the last version of those
	damaged  int64 // the events of its runs that are damaged
}

// checkIndex reads every entry of the index.
func (c *checker) checkIndex(ctx context.Context) error {
	it, err := c.indexIter()
	if err != nil {
		return wrapErr(err)
	}
	var (
		prevEnd  uint64
		firstLoc = true
		rs       *runState
		withRuns = map[string]bool{}
		unknown  = map[byte]int64{}
		entries  int64
	)
	for valid := it.First(); valid; valid = it.Next() {
		if entries++; entries%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return errors.Join(err, it.Close())
			}
		}
		k, v := it.Key(), it.Value()
		switch k[0] {
		case prefixMarker, prefixFormat, prefixIDMark:
			// Read and checked before.
		case prefixLocator:
			prevEnd = c.checkLocator(k, v, prevEnd, firstLoc)
			firstLoc = false
		case prefixID:
			c.checkID(k, v)
		case prefixMeta:
			stream := string(k[1:])
			m, err := decodeMeta(k, v)
			if err != nil {
				c.indexProblem(stream, -1, -1, "the stream's state record: %s", errMessage(err))
				continue
			}
			if m.flags&^(flagDeleted|flagTombstoned) != 0 {
				c.indexProblem(stream, -1, -1, "the stream's state record has unknown flags %#x", m.flags)
			}
			c.metas[stream] = m
		case prefixRun:
			if c.runAhead(k, v) {
				continue
			}
			i := bytes.LastIndexByte(k[:max(len(k)-8, 0)], 0)
			if len(k) < 10 || i != len(k)-9 {
				c.indexProblem("", -1, -1, "a run's key %q is malformed", k)
				continue
			}
			stream := string(k[1:i])
			if rs == nil || rs.stream != stream {
				if rs != nil {
					c.endStream(rs)
				}
				m, ok := c.metas[stream]
				rs = &runState{stream: stream, meta: m, hasMeta: ok}
				withRuns[stream] = true
			}
			c.checkRun(rs, k, v)
		case prefixSnapshot:
			if _, err := decodeSnapshot(k, v, string(k[1:])); err != nil {
				c.indexProblem(string(k[1:]), -1, -1, "the stream's snapshot: %s", errMessage(err))
			}
		case prefixTable:
			if _, err := unseal(k, v); err != nil {
				c.indexProblem("", -1, -1, "a read model entry (key %q): %s", k[1:], errMessage(err))
			}
		case prefixList:
			c.checkBlock(k, v)
		case prefixCut:
			if _, err := unseal(k, v); err != nil {
				c.indexProblem("", -1, -1, "the record that compaction removed events: %s", errMessage(err))
			}
		case prefixApplied:
			if _, err := unseal(k, v); err != nil || !bytes.Equal(k, applyMarkKey) {
				c.indexProblem("", -1, -1, "the mark of the last group applied from a replicated log (key %q): %s", k, errMessage(err))
			}
		default:
			if !bytes.Equal(k, spacerKey) {
				unknown[k[0]]++
			}
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		if errorsIsCorrupt(wrapErr(err)) {
			c.indexProblem("", -1, -1, "reading the index: %s", oneLine(err))
			return nil
		}
		return wrapErr(err)
	}
	if rs != nil {
		c.endStream(rs)
	}
	c.r.IndexEntries = entries
	if err := c.checkStrayIDs(ctx); err != nil {
		return err
	}
	// Streams whose events the locators reach but that have no runs.
	for stream, t := range c.tally {
		c.indexProblem(stream, t.last, int64(t.lastPos), "the log holds %d events of the stream, up to version %d, but the index has no run of it: reads of the stream find none", t.events, t.last)
	}
	for stream, m := range c.metas {
		if !withRuns[stream] && m.flags&flagTombstoned == 0 {
			c.indexProblem(stream, -1, -1, "the stream has a state record but no run")
		}
	}
	for kind, n := range unknown {
		if c.replay == nil {
			c.note("%d index entries of a kind this check does not know (%q) were not checked", n, kind)
		}
	}
	return nil
}

// checkLocator checks one locator: it follows the one before (ending at
// prevEnd), and its records are the events of its positions. It returns
// where it ends.
func (c *checker) checkLocator(k, v []byte, prevEnd uint64, first bool) uint64 {
	if len(k) != 9 {
		c.indexProblem("", -1, -1, "a locator's key %q is malformed", k)
		return prevEnd
	}
	pos := binary.BigEndian.Uint64(k[1:])
	rn, err := decodeRun(k, v)
	if err != nil {
		c.indexProblem("", -1, int64(pos), "the locator: %s", errMessage(err))
		return prevEnd
	}
	end := rn.pos + uint64(rn.count)
	switch {
	case rn.pos != pos:
		c.indexProblem("", -1, int64(pos), "the locator of position %d says its events start at %d", pos, rn.pos)
		return prevEnd
	case !first && pos < prevEnd:
		c.indexProblem("", -1, int64(pos), "the locator of %s overlaps the one before, which ends at %d", numbers("position", int64(pos), int64(end)-1), prevEnd-1)
	case !c.r.Compacted && pos != prevEnd:
		c.indexProblem("", -1, int64(prevEnd), "%s in no locator: reads of the log skip it", numbersAre("position", int64(prevEnd), int64(pos)-1))
	}
	if c.hasMark && end > c.mark.next {
		c.indexProblem("", -1, int64(pos), "the locator reaches position %d, past the index's last (%d)", end-1, c.mark.next-1)
	}
	c.locs = append(c.locs, locRange{pos: rn.pos, count: rn.count, span: rn.span})
	if !c.load(rn, "the locator", false) {
		return end
	}
	for i := range c.vals {
		p := rn.pos + uint64(i)
		putEventKey(c.key[:], p)
		e, err := decodeEvent(c.key[:], c.vals[i], p, &c.sc)
		if err != nil {
			c.eventDamaged(p, "", -1, err)
			continue
		}
		t := c.tally[e.StreamID]
		if t == nil {
			t = &streamTally{last: -1}
			c.tally[e.StreamID] = t
		}
		t.events++
		if e.Version > t.last {
			t.last, t.lastPos = e.Version, p
		}
	}
	if c.r.Compacted {
		c.r.Events += rn.count
		c.opts.progress(rn.count, 0)
	}
	return end
}

// load reads the records of rn into c.vals, reporting (for what, a
// locator or a run) when they cannot be read. Locators are read in log
// order, through the reader's window; runs and single events in any order,
// each with a read of its own size (random reads through a window of 256
// KiB would read far more than they use).
func (c *checker) load(rn run, what string, random bool) bool {
	if _, err := c.d.log.Size(rn.seg); err != nil {
		c.pointerProblem(rn, "%s points at segment %d, which is missing", what, rn.seg)
		return false
	}
	var p []byte
	var err error
	if random {
		c.rbuf = slices.Grow(c.rbuf[:0], int(rn.bytes))[:rn.bytes]
		p, err = c.rbuf, c.d.log.ReadAt(rn.seg, rn.off, c.rbuf)
	} else {
		p, err = c.lr.Read(rn.seg, rn.off, int(rn.bytes))
	}
	if err != nil {
		c.pointerProblem(rn, "%s points at bytes %d to %d of segment %d: %s", what, rn.off, rn.off+rn.bytes, rn.seg, errMessage(err))
		return false
	}
	c.opts.progress(0, rn.bytes)
	var ok bool
	c.vals, ok = seglog.Records(p, c.vals[:0])
	if !ok || int64(len(c.vals)) != rn.count {
		c.pointerProblem(rn, "%s points at %d events at segment %d offset %d, where there are no such records", what, rn.count, rn.seg, rn.off)
		return false
	}
	return true
}

// pointerProblem reports an entry whose pointer into the log leads
// nowhere: the entry is wrong when the scan found the log sound there.
func (c *checker) pointerProblem(rn run, format string, args ...any) {
	c.problem(format, Problem{File: "index", Offset: -1, Version: -1, Position: int64(rn.pos), Message: fmt.Sprintf(format, args...), Index: c.scanned(rn.pos)})
}

// scanned reports whether the log's scan read the frame of position pos
// (a log never compacted, or a position after the index's marker), so that
// a bad event there is the index's fault, not the log's.
func (c *checker) scanned(pos uint64) bool {
	if _, bad := c.damaged[pos]; bad {
		return false
	}
	return !c.r.Compacted || (c.hasMark && pos >= c.mark.next)
}

// eventDamaged reports the event at pos (of stream's version, when known)
// that fails its checksum: once, naming its stream when a run does.
func (c *checker) eventDamaged(pos uint64, stream string, version int64, err error) {
	if i, ok := c.damaged[pos]; ok {
		if stream != "" && i >= 0 {
			c.r.Problems[i].Stream, c.r.Problems[i].Version = stream, version
		}
		return
	}
	if c.scanned(pos) {
		// The scan found the event sound: the entry leads elsewhere.
		c.indexProblem(stream, version, int64(pos), "the index points at records that are not the event's: %s", errMessage(err))
		return
	}
	c.damaged[pos] = c.problem("damaged event", Problem{File: "index", Offset: -1, Stream: stream, Version: version, Position: int64(pos), Message: fmt.Sprintf("the event, reached through the index, is damaged: %s", errMessage(err))})
}

// locate returns the locator that holds position pos.
func (c *checker) locate(pos uint64) (locRange, bool) {
	i := sort.Search(len(c.locs), func(i int) bool { return c.locs[i].end() > pos })
	if i == len(c.locs) || c.locs[i].pos > pos {
		return locRange{}, false
	}
	return c.locs[i], true
}

// checkID checks a retry record: well formed, pointing at a position a
// locator holds. That it points at the first event of an append with its
// id is checked from the other side, with each run (checkRun); the records
// left over then are checked one by one (checkStrayIDs).
func (c *checker) checkID(k, v []byte) {
	c.ids++
	if len(k) != 17 {
		c.indexProblem("", -1, -1, "a retry record's key %q is malformed", k)
		return
	}
	id, _ := uuid.FromBytes(k[1:])
	pos, err := decodeUint(k, v)
	if err != nil {
		c.indexProblem("", -1, -1, "the retry record of event %s: %s", id, errMessage(err))
		return
	}
	if _, ok := c.locate(pos); !ok && !c.onlyIDsHold(pos) {
		c.indexProblem("", -1, int64(pos), "the retry record of event %s points at a position no locator holds", id)
	}
}

// indexIter returns an iterator over the index the checks read: pebble's,
// with the runs in the overlay.
func (c *checker) indexIter() (*pebble.Iterator, error) {
	if c.overlay != nil {
		return c.overlay.NewIter(nil)
	}
	return c.d.pdb.NewIter(nil)
}

// runAhead reports whether the run k → v is of a frame past the marker that
// the ID mark covers: ingested before the memtable that holds the rest of
// its frame's index writes (its locator, its stream's state) was flushed.
// Open replays the rest.
func (c *checker) runAhead(k, v []byte) bool {
	rn, err := decodeRun(k, v)
	return err == nil && c.onlyIDsHold(rn.pos)
}

// onlyIDsHold reports whether pos is past the frames the index holds and
// within those whose retry records it holds: their retry records were
// ingested, and the memtable that held the rest of their index writes was
// not flushed yet (Open replays them).
func (c *checker) onlyIDsHold(pos uint64) bool {
	return (!c.hasMark || pos >= c.mark.next) && c.hasIDMark && pos < c.idMark.next
}

// checkStrayIDs checks every retry record against the event it points at,
// when there are more of them than runs that match one: some record does
// not point at the first event of an append with its id.
func (c *checker) checkStrayIDs(ctx context.Context) error {
	if c.ids <= c.idsMatched {
		return nil
	}
	it, err := c.d.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixID}, UpperBound: []byte{prefixID + 1}})
	if err != nil {
		return wrapErr(err)
	}
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return errors.Join(err, it.Close())
			}
		}
		k := it.Key()
		if len(k) != 17 {
			continue // reported
		}
		id, _ := uuid.FromBytes(k[1:])
		pos, err := decodeUint(k, it.Value())
		if err != nil {
			continue // reported
		}
		loc, ok := c.locate(pos)
		if !ok {
			continue // reported
		}
		if e, ok := c.eventAt(loc, pos); ok && e.ID != id {
			c.indexProblem(e.StreamID, e.Version, int64(pos), "the retry record of event %s points at event %s", id, e.ID)
		}
	}
	return wrapErr(errors.Join(it.Error(), it.Close()))
}

// eventAt reads the event at pos of loc (the records of the last locator
// read are kept).
func (c *checker) eventAt(loc locRange, pos uint64) (evID, bool) {
	if c.cached != loc.pos || c.cachedVals == nil {
		if !c.load(run{pos: loc.pos, count: loc.count, span: loc.span}, "the locator", true) {
			return evID{}, false
		}
		// c.vals point into the reader's window: keep a copy.
		c.cachedBuf = c.cachedBuf[:0]
		for _, v := range c.vals {
			c.cachedBuf = append(c.cachedBuf, v...)
		}
		c.cachedVals = c.cachedVals[:0]
		at := 0
		for _, v := range c.vals {
			c.cachedVals = append(c.cachedVals, c.cachedBuf[at:at+len(v)])
			at += len(v)
		}
		c.cached = loc.pos
	}
	putEventKey(c.key[:], pos)
	e, err := decodeEvent(c.key[:], c.cachedVals[pos-loc.pos], pos, &c.sc)
	if err != nil {
		return evID{}, false // reported with the locator
	}
	return evID{ID: e.ID, StreamID: e.StreamID, Version: e.Version}, true
}

// evID is what a retry record's check reads of an event.
type evID struct {
	ID       uuid.UUID
	StreamID string
	Version  int64
}

// checkRun checks one run of rs.stream.
func (c *checker) checkRun(rs *runState, k, v []byte) {
	stream := rs.stream
	rn, err := decodeRun(k, v)
	if err != nil {
		c.indexProblem(stream, runKeyVersion(k), -1, "the run: %s", errMessage(err))
		return
	}
	if rs.have && rn.first != rs.last+1 {
		if rn.first > rs.last+1 {
			c.indexProblem(stream, rs.last+1, -1, "%s in no run: reads of the stream fail there", numbersAre("version", rs.last+1, rn.first-1))
		} else {
			c.indexProblem(stream, rn.first, int64(rn.pos), "the run of versions %d to %d overlaps the one before, which ends at %d", rn.first, rn.last(), rs.last)
		}
	}
	rs.have, rs.last = true, rn.last()
	if rn.last() < rs.meta.purged {
		// What compaction kept of a removed append: where the stream's
		// versions continue. Its events are gone.
		return
	}
	if rn.first < rs.meta.purged {
		c.indexProblem(stream, rn.first, int64(rn.pos), "the run starts at version %d, below the versions compaction removed (%d)", rn.first, rs.meta.purged)
	}
	loc, ok := c.locate(rn.pos)
	switch {
	case !ok:
		c.indexProblem(stream, rn.first, int64(rn.pos), "the run's events (%s) are in no locator: reads of the log skip them", numbers("position", int64(rn.pos), int64(rn.pos)+rn.count-1))
	case rn.pos+uint64(rn.count) > loc.end() || rn.seg != loc.seg || rn.off < loc.off || rn.off+rn.bytes > loc.off+loc.bytes:
		c.indexProblem(stream, rn.first, int64(rn.pos), "the run (%s at segment %d offset %d) does not lie within the locator of %s (segment %d offset %d)", numbers("position", int64(rn.pos), int64(rn.pos)+rn.count-1), rn.seg, rn.off, numbers("position", int64(loc.pos), int64(loc.end())-1), loc.seg, loc.off)
	}
	rs.live += rn.count
	rs.lastLive = rn.last()
	if !c.load(rn, fmt.Sprintf("the run of %q version %d", stream, rn.first), true) {
		return
	}
	var firstID uuid.UUID
	for i := range c.vals {
		p, ver := rn.pos+uint64(i), rn.first+int64(i)
		putEventKey(c.key[:], p)
		e, err := decodeEvent(c.key[:], c.vals[i], p, &c.sc)
		if err != nil {
			c.eventDamaged(p, stream, ver, err)
			rs.damaged++
			continue
		}
		if e.StreamID != stream || e.Version != ver {
			c.indexProblem(stream, ver, int64(p), "the run points at %q version %d", e.StreamID, e.Version)
		}
		if i == 0 {
			firstID = e.ID
		}
	}
	// The append's retry record; compaction removes it when it rewrites
	// the run from its first live event.
	if firstID == (uuid.UUID{}) {
		return
	}
	if !c.hasIDMark || rn.pos >= c.idMark.next {
		return // in the log only, until the index is next flushed
	}
	rewritten := rn.first == rs.meta.purged && rs.meta.purged > 0
	ik := idKey(firstID)
	val, closer, err := c.d.pdb.Get(ik)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if !rewritten {
			c.indexProblem(stream, rn.first, int64(rn.pos), "the retry record of the append (first event %s) is missing: a retry of the append would write it again", firstID)
		}
	case err != nil:
		c.indexProblem(stream, rn.first, int64(rn.pos), "the retry record of the append (first event %s): %s", firstID, oneLine(err))
	default:
		pos, err := decodeUint(ik, val)
		_ = closer.Close()
		if err == nil && pos != rn.pos {
			c.indexProblem(stream, rn.first, int64(rn.pos), "the retry record of the append (first event %s) points at position %d", firstID, pos)
		} else if err == nil {
			c.idsMatched++
		}
	}
}

// endStream checks the head of rs.stream, whose runs are read, against
// the events the locators reach.
func (c *checker) endStream(rs *runState) {
	c.r.Streams++
	stream := rs.stream
	if !rs.hasMeta {
		c.indexProblem(stream, -1, -1, "the stream has runs but no state record")
	}
	t := c.tally[stream]
	delete(c.tally, stream)
	if t == nil {
		t = &streamTally{last: -1}
	}
	// A damaged event is in no tally: its stream is not known.
	if rs.live == t.events+rs.damaged && (rs.live == 0 || rs.lastLive == t.last || rs.damaged > 0) {
		return
	}
	if t.events == 0 {
		c.indexProblem(stream, rs.lastLive, -1, "the index's runs hold %d events of the stream, up to version %d, that no locator reaches: reads of the log skip them", rs.live, rs.lastLive)
		return
	}
	c.indexProblem(stream, t.last, int64(t.lastPos), "the stream's head is wrong: the log holds %d events of it, up to version %d (position %d); the index's runs %d, up to version %d", t.events, t.last, t.lastPos, rs.live, rs.lastLive)
}

// listState is what the blocks of the list being read say.
type listState struct {
	prefix []byte // the list's key prefix
	next   uint64 // the number of the next entry
	pos    uint64 // the position after the last entry's
}

// checkBlock checks one block of a list of the index: well formed, its
// entries numbered on from the block before, at positions after its
// entries' and below the index's last. Its entries are checked against
// the events (that each files an event with the list's key) only by the
// comparison with the index a log never compacted rebuilds: a compacted
// store's lists keep the entries of the events compaction removed.
func (c *checker) checkBlock(k, v []byte) {
	if len(k) < 1+1+1+8 {
		c.indexProblem("", -1, -1, "an index list's key %q is malformed", k)
		return
	}
	name := listName(k)
	if err := decodeBlock(k, v, &c.blk); err != nil {
		c.indexProblem("", -1, -1, "a block of the index list %s: %s", name, errMessage(err))
		return
	}
	prefix := k[:len(k)-8]
	if !bytes.Equal(prefix, c.list.prefix) {
		c.list = listState{prefix: append(c.list.prefix[:0], prefix...)}
	}
	b := &c.blk
	switch {
	case b.number > c.list.next:
		c.indexProblem("", -1, int64(b.firstPos()), "the index list %s has no block of %s: reads of the list skip them", name, entries(c.list.next, b.number-1))
	case b.number < c.list.next:
		c.indexProblem("", -1, int64(b.firstPos()), "the block of entries %d to %d of the index list %s overlaps the one before, which ends at %d", b.number, b.end()-1, name, c.list.next-1)
	}
	if c.list.next > 0 && b.firstPos() < c.list.pos {
		c.indexProblem("", -1, int64(b.firstPos()), "the index list %s files position %d after position %d: its positions must rise", name, b.firstPos(), c.list.pos-1)
	}
	if c.hasMark && b.lastPos() >= c.mark.next {
		c.indexProblem("", -1, int64(b.lastPos()), "the index list %s files position %d, past the index's last (%d)", name, b.lastPos(), int64(c.mark.next)-1)
	}
	if !c.r.Compacted {
		if _, err := c.d.log.Size(b.seg); err != nil {
			c.indexProblem("", -1, int64(b.firstPos()), "a block of the index list %s points at segment %d, which is missing", name, b.seg)
		}
	}
	c.list.next, c.list.pos = b.end(), b.lastPos()+1
	c.r.ListBlocks++
}

// listName names the list of an index block's key, as "type OrderPlaced".
func listName(k []byte) string {
	kind := cairn.IndexKind(k[1])
	n, w := binary.Uvarint(k[2:])
	if w <= 0 || 2+w+8 > len(k) {
		return fmt.Sprintf("%q", k[:len(k)-8])
	}
	value := k[2+w : len(k)-8]
	if n > uint64(len(value)) || n > maxListValue {
		return fmt.Sprintf("%s (%d bytes, by hash)", kind, n)
	}
	return fmt.Sprintf("%s %q", kind, value)
}

// entries names one entry of a list or a range of them.
func entries(first, last uint64) string {
	if first == last {
		return fmt.Sprintf("entry %d", first)
	}
	return fmt.Sprintf("entries %d to %d", first, last)
}
