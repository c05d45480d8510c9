package diskstore

import (
	"context"
	"errors"

	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
)

// purgeChunk is how many streams one purge step examines.
const purgeChunk = 256

// purgeRuns bounds the runs (appends) one purge step removes, so that a
// step holds the committer, and the writers queued behind it, for a
// bounded time: a stream of many small appends is purged over several
// steps, each recording how far it got.
var purgeRuns = 4096

// purgeStepped, when set (by tests), is called after each purge step but
// the last; an error ends the compaction there, as a crash would.
var purgeStepped func() error

// flushedToFree, when set (by tests), is called once the index is flushed
// for freeing, before anything is freed.
var flushedToFree func()

// Compact implements [cairn.Compacter]. It removes the events of deleted,
// tombstoned and truncated streams from the index, in steps of at most a
// few hundred streams and a few thousand appends that are committed like
// writes (each a [PurgeWrite]), then does what [DB.Reclaim] does: has the
// index flushed and gives their space in the log back to the filesystem.
// Positions of the remaining events never change and positions are never
// reused. Compactions run one at a time.
func (d *DB) Compact(ctx context.Context) error {
	select {
	case d.compacting <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.compacting }()
	if err := d.purgeDead(ctx); err != nil {
		return err
	}
	return d.free(ctx)
}

// Reclaim gives back to the filesystem the log's space that no live event
// uses, as a compaction does once its purge is done: it has the index
// flushed, then punches holes over the log's bytes that no live event
// uses, and removes segments that hold none. A replicated store applies a
// compaction's purge as [PurgeWrite] steps of its log and then calls
// Reclaim on each copy, while the log goes on being applied. Reclaims and
// compactions run one at a time.
func (d *DB) Reclaim(ctx context.Context) error {
	if d.opts.ReadOnly {
		return ErrReadOnly
	}
	select {
	case d.compacting <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.compacting }()
	return d.free(ctx)
}

// purgeDead removes the dead events from the index, step by step.
func (d *DB) purgeDead(ctx context.Context) error {
	step := &PurgeWrite{}
	for {
		op := &purgeOp{step: *step}
		if err := d.submit(ctx, op); err != nil {
			return err
		}
		if op.next == nil {
			return nil
		}
		step = op.next
		if purgeStepped != nil {
			if err := purgeStepped(); err != nil {
				return err
			}
		}
	}
}

// free has the index flushed, then gives back the log's bytes that no
// locator of the flushed index uses.
func (d *DB) free(ctx context.Context) error {
	// Close waits until the snapshot below is released.
	if err := d.enterReader(); err != nil {
		return err
	}
	defer d.readers.Done()
	// Make the index durable up to now: no replay after a crash may start
	// before the bytes about to be freed. The flush's snapshot holds
	// every group before it, durable, and none after: not the cuts of a
	// purge step applied meanwhile, which may not be durable yet.
	flush := &flushOp{}
	if err := d.submit(ctx, flush); err != nil {
		return err
	}
	defer flush.snap.Close()
	if flushedToFree != nil {
		flushedToFree()
	}
	if flush.flushed.seg == 0 {
		return nil // a store never written
	}
	return d.freeDead(ctx, flush.flushed, flush.snap)
}

// freeDead gives back the log's bytes that no locator of snap uses, up to
// the marker m of the flushed index, whose state snap is. Writes go on
// meanwhile.
func (d *DB) freeDead(ctx context.Context, m marker, snap *pebble.Snapshot) error {
	// Once compaction removed events from the index, a replay of the log
	// no longer gives the index, and the log says so even when none of it
	// is freed (a small log, whose holes are smaller than a block), so
	// that a check reads it as compacted and Open does not rebuild from
	// it. The step that first cuts the index notes it; a store cut by an
	// earlier build may lack the note.
	if d.cut.Load() {
		if err := d.log.NoteCompacted(); err != nil {
			return err
		}
	}
	// Readers of older views may still read what the steps removed.
	if err := d.waitOldViews(ctx); err != nil {
		return err
	}
	// A backup copying the log needs every byte of it that its index
	// (older than this flush, maybe) points at.
	if err := d.backups.enter(ctx); err != nil {
		return err
	}
	defer d.backups.leave()
	return d.reclaim(ctx, snap, m)
}

// reclaim frees the log's bytes that no locator of snap points at, up to
// the end of the frame m, whose index writes are durable: frames' headers
// and index writes (which only a replay after a crash reads, and only after
// the durable marker) and the records of removed events.
func (d *DB) reclaim(ctx context.Context, snap *pebble.Snapshot, m marker) error {
	it, err := snap.NewIter(&locatorBounds)
	if err != nil {
		return wrapErr(err)
	}
	segs := d.log.Segments()
	used := map[uint64]bool{}
	seg, free := uint64(0), int64(0) // bytes of seg before free are accounted for
	var holes []seglog.Span
	for valid := it.First(); valid; valid = it.Next() {
		rn, err := decodeRun(it.Key(), it.Value())
		if err != nil {
			return errors.Join(err, it.Close())
		}
		if rn.seg != seg {
			if seg != 0 {
				holes = d.tail(holes, seg, free, m)
			}
			seg, free = rn.seg, 0
		}
		used[rn.seg] = true
		if rn.off > free {
			holes = append(holes, seglog.Span{Seg: seg, Off: free, Bytes: rn.off - free})
		}
		free = rn.off + rn.bytes
		if len(holes)%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return errors.Join(err, it.Close())
			}
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return wrapErr(err)
	}
	if seg != 0 {
		holes = d.tail(holes, seg, free, m)
	}
	for _, s := range segs {
		if s >= m.seg {
			break
		}
		if !used[s] {
			if err := d.log.Remove(s); err != nil {
				return err
			}
		}
	}
	return d.log.Punch(durable(holes, used, m))
}

// durable returns the part of holes that lies before the end of the
// marker's frame, in segments still there (used). Snap may hold frames
// after m, written while compaction ran: no index on disk holds them yet,
// and after a crash only a replay from m finds them again, reading their
// headers and index writes, which the bytes between their runs are.
func durable(holes []seglog.Span, used map[uint64]bool, m marker) []seglog.Span {
	kept := holes[:0]
	for _, h := range holes {
		switch {
		case h.Seg < m.seg && used[h.Seg]:
		case h.Seg == m.seg && h.Off < m.end:
			h.Bytes = min(h.Bytes, m.end-h.Off)
		default:
			continue
		}
		kept = append(kept, h)
	}
	return kept
}

// tail adds the hole after the last live bytes of segment seg: to the end
// of the file, or of the marker's frame in the marker's segment.
func (d *DB) tail(holes []seglog.Span, seg uint64, free int64, m marker) []seglog.Span {
	if seg > m.seg {
		return holes // past the marker: durable drops it
	}
	end := m.end
	if seg < m.seg {
		size, err := d.log.Size(seg)
		if err != nil {
			return holes
		}
		end = size
	}
	if end > free {
		holes = append(holes, seglog.Span{Seg: seg, Off: free, Bytes: end - free})
	}
	return holes
}

// purgeStep commits one step of compaction's purge, op.step, in a group
// of its own, and sets op.next to the step after.
func (d *DB) purgeStep(op *purgeOp) {
	r := op.base()
	if err := r.ctx.Err(); err != nil {
		r.err = err
		d.handoff(nil, false, []*request{r})
		return
	}
	// The step reads the runs it rewrites from pebble: none may be in
	// memory (runs.go).
	if err := d.settleRecords(); err != nil {
		r.err = err
		d.handoff(nil, false, []*request{r})
		return
	}
	// Indexed: cutting the locators of one frame reads the cuts before.
	g, err := d.newGroup(true, nil)
	if err != nil {
		r.err = err
		d.handoff(nil, false, []*request{r})
		return
	}
	if op.next, err = g.purgeStep(op.step); err != nil {
		r.err = err
		d.handoff(g, false, []*request{r})
		return
	}
	d.handoff(g, true, []*request{r})
	// Its writes of runs are in the memtable, which the next ingest would
	// overlap.
	d.ids.purged = true
}

// purgeStep removes from the index, in g (an indexed group), the dead
// events of up to purgeChunk streams from where w begins, at most w.Runs
// runs of them, and returns the step after: nil once it reached the last
// stream.
func (g *group) purgeStep(w PurgeWrite) (next *PurgeWrite, err error) {
	d := g.d
	defer func() {
		if g.locators != nil {
			err = errors.Join(err, wrapErr(g.locators.Close()))
			g.locators = nil
		}
	}()
	lower := metaKey(w.After)
	if w.After != "" && !w.At {
		lower = append(lower, 0)
	}
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{prefixMeta + 1}})
	if err != nil {
		return nil, wrapErr(err)
	}
	var streams []string
	for valid := it.First(); valid && len(streams) < purgeChunk; valid = it.Next() {
		streams = append(streams, string(it.Key()[1:]))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, wrapErr(err)
	}
	budget := w.Runs
	if budget <= 0 {
		budget = purgeRuns
	}
	for _, s := range streams {
		done, err := g.purge(s, &budget)
		if err != nil {
			return nil, err
		}
		if !done {
			next = &PurgeWrite{After: s, At: true, Runs: w.Runs}
			break
		}
	}
	if next == nil && len(streams) == purgeChunk {
		next = &PurgeWrite{After: streams[len(streams)-1], Runs: w.Runs}
	}
	if g.cuts > 0 && !d.cut.Load() {
		// The log says it was compacted before the index is cut: from
		// then on a replay of the log no longer gives the index, even
		// if the compaction ends here (a crash) and frees nothing.
		if err := d.log.NoteCompacted(); err != nil {
			return nil, err
		}
		// The first events removed: from now on, reads through the index
		// check that each event is still in the log. Set before the
		// step is published, so that no reader of its view skips the
		// check.
		if err := g.set(cutKey, seal(cutKey, nil)); err != nil {
			return nil, err
		}
		d.cut.Store(true)
	}
	g.anchor = true
	return next, nil
}

// cut removes the n events from position pos, whose records are at sp,
// from the locator that holds them: what is left of it before and after
// them gets a locator of its own.
func (g *group) cut(pos uint64, n int64, sp span) error {
	var err error
	if g.locators == nil {
		if g.locators, err = g.b.NewIter(&locatorBounds); err != nil {
			return wrapErr(err)
		}
	} else {
		// Sees the cuts made since.
		g.locators.SetOptions(&locatorBounds)
	}
	it := g.locators
	var loc run
	found := it.SeekLT(locatorKey(pos + 1))
	if found {
		loc, err = decodeRun(it.Key(), it.Value())
	}
	if err = errors.Join(err, it.Error()); err != nil {
		return wrapErr(err)
	}
	end := pos + uint64(n)
	if !found || pos+uint64(n) > loc.pos+uint64(loc.count) || loc.seg != sp.seg {
		return nil // already removed
	}
	if err := g.del(locatorKey(loc.pos)); err != nil {
		return err
	}
	g.cuts++
	if pos > loc.pos {
		k := locatorKey(loc.pos)
		if err := g.set(k, appendRun(nil, k, loc.pos, int64(pos-loc.pos), span{seg: loc.seg, off: loc.off, bytes: sp.off - loc.off})); err != nil {
			return err
		}
	}
	if locEnd := loc.pos + uint64(loc.count); end < locEnd {
		k := locatorKey(end)
		return g.set(k, appendRun(nil, k, end, int64(locEnd-end), span{seg: loc.seg, off: sp.off + sp.bytes, bytes: loc.off + loc.bytes - sp.off - sp.bytes}))
	}
	return nil
}

// purge adds to the batch the removal of the dead events of stream from the
// index. A run whose events are all dead loses its locator and its retry
// record (and its own record, unless it is the stream's last and the stream
// can be written again: it says where versions continue); a run with dead
// events at its start is recorded again from its first live event.
//
// It removes at most *budget runs, counting them off, and reports whether
// it removed every dead event of the stream; if not, the stream's record
// says how far it got (its versions below are removed), and the next call
// goes on from there.
func (g *group) purge(stream string, budget *int) (done bool, err error) {
	h, err := g.d.head(stream)
	if err != nil {
		return false, err
	}
	tomb := h.meta.flags&flagTombstoned != 0
	target := min(h.meta.before, h.last+1)
	if tomb {
		target = h.last + 1
		if err := g.del(snapshotKey(stream)); err != nil {
			return false, err
		}
	}
	from := h.meta.purged
	if target <= from {
		return true, nil
	}
	// Every run is in pebble: the step settled those in memory first
	// (purgeStep). Read through the locators' iterator, which decodes a
	// run as it does a locator.
	it, err := g.d.pdb.NewIter(runBounds(stream))
	if err != nil {
		return false, wrapErr(err)
	}
	rd := &reader{ctx: context.Background(), locs: it, lr: g.d.log.NewReader()}
	valid := it.SeekLT(runKey(stream, from+1))
	if !valid {
		valid = it.First()
	}
	for ; valid; valid = it.Next() {
		rn, err := rd.current()
		if err != nil {
			return false, rd.close(err)
		}
		if rn.first >= target {
			break
		}
		if rn.last() < from {
			continue
		}
		dead := min(rn.last()+1, target) - rn.first // events of the run that go
		if dead <= 0 {
			continue
		}
		if *budget == 0 {
			// The step's share is spent: the next one goes on from this
			// run, every version below it removed.
			if err := rd.close(nil); err != nil {
				return false, err
			}
			h.meta.purged = max(from, rn.first)
			return false, g.putMeta(stream, h)
		}
		*budget--
		if err := rd.load(rn); err != nil {
			return false, rd.close(err)
		}
		first, err := rd.event(rn, 0)
		if err != nil {
			return false, rd.close(err)
		}
		if err := g.delID(first.ID); err != nil {
			return false, rd.close(err)
		}
		skip := rn.bytes
		if dead < rn.count {
			skip = 0
			for _, v := range rd.vals[:dead] {
				skip += int64(uvarintLen(uint64(len(v))) + len(v))
			}
			rest := run{first: rn.first + dead, pos: rn.pos + uint64(dead), count: rn.count - dead,
				span: span{seg: rn.seg, off: rn.off + skip, bytes: rn.bytes - skip}}
			if err := g.del(it.Key()); err != nil {
				return false, rd.close(err)
			}
			k := runKey(stream, rest.first)
			if err := g.set(k, appendRun(nil, k, rest.pos, rest.count, rest.span)); err != nil {
				return false, rd.close(err)
			}
		} else if tomb || rn.last() < h.last {
			if err := g.del(it.Key()); err != nil {
				return false, rd.close(err)
			}
		}
		if err := g.cut(rn.pos, dead, span{seg: rn.seg, off: rn.off, bytes: skip}); err != nil {
			return false, rd.close(err)
		}
	}
	if err := rd.close(nil); err != nil {
		return false, err
	}
	h.meta.purged = target
	return true, g.putMeta(stream, h)
}
