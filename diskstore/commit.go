package diskstore

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cairndb/cairn/internal/invariants"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/batchrepr"
)

// The DB's side of the commit pipeline (pipeline.go): how one group is
// committed (a frame appended to the log, its index writes applied to
// pebble's memtable), when the memtable is flushed, and how a durable
// group is published. Everything here but syncLog and publishGroups runs
// on the committer goroutine and owns the fields of DB marked so.

// newGroup starts a group that will write ops: it reserves the frame's
// place in the log and allocates its index batch (indexed, for operations
// that read their own writes).
func (d *DB) newGroup(indexed bool, ops []operation) (*group, error) {
	if d.log.Full() {
		// The syncer syncs the active segment: let it finish with it.
		d.pipe.drain()
	}
	seg, base, err := d.log.Reserve()
	if err != nil {
		return nil, d.fail(err)
	}
	d.groupIDs.reset()
	g := &group{d: d, first: d.next, next: d.next, now: cairn.Now().UnixMicro(), ids: &d.groupIDs, seg: seg, base: base, evs: d.evs[:0], newIDs: d.staged[:0], newRuns: d.stagedRuns[:0], runRecs: d.runRecs[:0]}
	d.filing.reset()
	idx, events := groupSize(ops)
	if indexed {
		g.b = d.pdb.NewIndexedBatch()
	} else {
		g.b = d.pdb.NewBatchWithSize(idx)
		d.writes.reset()
		g.w = &d.writes
	}
	if cap(d.frameBuf) < events {
		d.frameBuf = make([]byte, 0, events)
	}
	g.frame = seglog.BeginFrame(d.frameBuf)
	return g, nil
}

// commitGroup implements pipelineEnv: it commits one group of operations
// and hands it to the syncer. It returns the operations that must wait for
// the next group.
func (d *DB) commitGroup(ops []operation) (deferred []operation) {
	finish := func(err error) {
		for _, op := range ops {
			op.base().finish(err)
		}
	}
	if err := d.failed(); err != nil {
		finish(err)
		return nil
	}
	flush, _ := ops[0].(*flushOp)
	if err := d.rotate(flush != nil); err != nil || flush != nil {
		if err == nil {
			// What the index on disk holds now (nothing in a store
			// never written): its marker, or its ID mark if older.
			flush.flushed, _, err = d.marker(d.pdb)
			if r := &d.ids; r.marked && flush.flushed.after(r.mark) {
				flush.flushed = r.mark
			}
		}
		if err == nil {
			flush.snap = d.pdb.NewSnapshot()
		}
		finish(err)
		return nil
	}
	d.evictHeads()
	d.tendIDFilter()
	d.tendIDs(false)
	switch op := ops[0].(type) {
	case *commitAllOp:
		d.commitAll(op)
		return nil
	case *purgeOp:
		d.purgeStep(op)
		return nil
	case *applyOp:
		d.applyGroup(op)
		return nil
	}
	g, err := d.newGroup(false, ops)
	if err != nil {
		finish(err)
		return nil
	}
	answered := make([]*request, 0, len(ops))
	wrote := false
	for _, op := range ops {
		r := op.base()
		if err := r.ctx.Err(); err != nil {
			r.err = err
			answered = append(answered, r)
			continue
		}
		e, err := g.do(op)
		if e == effectLater {
			deferred = append(deferred, op)
			continue
		}
		r.err = err
		wrote = wrote || e == effectWrote
		answered = append(answered, r)
	}
	d.handoff(g, wrote, answered)
	return deferred
}

// handoff commits the group (when it wrote anything) and hands its
// requests, whose results are set, to the syncer, which answers them once
// the group is durable. The group's frame is appended to the log (without
// a sync) and its index writes applied to pebble at once, so that the
// committer reads them when it forms the next group; readers see them only
// once the syncer has synced the log and published the snapshot taken
// here. Pebble keeps no log of its own: its memtable reaches the disk only
// when the committer has it flushed, at a moment when every group in it is
// durable (see rotate). A request answered without writing anything (a
// repeated append, say) still goes through the syncer, so that it is
// answered only after the groups before it are durable.
//
// A group whose index batch refused a write (g.broken) fails its requests
// and is not written.
func (d *DB) handoff(g *group, wrote bool, reqs []*request) {
	p := &pending{reqs: reqs, done: make(chan struct{}), anchor: g != nil && g.anchor, first: d.next, next: d.next}
	if invariants.Enabled && g != nil && g.first != d.next {
		invariants.Failf("diskstore: group from position %d committed after position %d", g.first, d.next)
	}
	sent := false
	var err error
	switch {
	case g != nil && g.broken != nil:
		// Nothing of the group reached the log or the index; the heads
		// in memory may be ahead of the index, and are read again.
		err = g.broken
		clear(d.heads)
	case wrote:
		err = d.writeGroup(g, func() {
			// The frame is in the log: the syncer syncs it while the
			// committer applies the group's index writes, and waits
			// for them (ready) before it publishes the group or
			// answers its requests.
			p.next, p.ready = g.next, make(chan struct{})
			d.pipe.handoff(p)
			sent = true
		})
		if err != nil {
			// The heads in memory may be ahead of the disk now, and
			// the store refuses writes.
			err = d.fail(err)
		}
	}
	if err != nil {
		for _, r := range reqs {
			if r.err == nil {
				r.err = err
			}
		}
	} else if wrote {
		p.snap, p.runs = d.pdb.NewSnapshot(), d.ids.gens
		d.next = g.next
		d.stats.groups.Add(1)
		d.stats.writes.Add(uint64(len(reqs)))
	}
	if g != nil {
		clear(g.evs) // the requests' events, answered soon
		d.evs = g.evs[:0]
		if cap(g.newIDs) <= maxKeptIDs {
			d.staged = g.newIDs[:0]
		}
		if cap(g.newRuns) <= maxKeptIDs {
			clear(g.newRuns) // their streams
			d.stagedRuns = g.newRuns[:0]
		}
		if cap(g.runRecs) <= maxKeptFrame {
			d.runRecs = g.runRecs[:0]
		}
		_ = g.b.Close()
		if cap(g.frame) <= maxKeptFrame {
			d.frameBuf = g.frame[:0]
		}
	}
	if sent {
		close(p.ready)
	} else {
		d.pipe.handoff(p)
	}
}

// maxKeptFrame bounds the frame buffer the committer keeps for the next
// group.
const maxKeptFrame = 8 << 20

// writeGroup completes g's frame (its index writes, ending with the
// marker), appends it to the log, calls written, and applies the index
// writes to pebble's memtable.
func (d *DB) writeGroup(g *group, written func()) error {
	events := len(g.frame) - seglog.HeaderLen
	// The blocks of the index lists the group's events are filed under
	// (filing.go): in the frame's index writes, like everything else.
	if err := d.filing.write(g.seg, g.set); err != nil {
		return err
	}
	if g.next > g.first {
		// One locator for the frame's events.
		k := locatorKey(g.first)
		sp := span{seg: g.seg, off: g.base + seglog.HeaderLen, bytes: int64(events)}
		if err := g.set(k, appendRun(nil, k, g.first, int64(g.next-g.first), sp)); err != nil {
			return err
		}
	}
	if g.w != nil {
		// Into the batch in key order (batch.go).
		if err := g.w.apply(g.b); err != nil {
			return err
		}
	}
	// The index's last write is the marker: the end of this frame.
	op := g.b.SetDeferred(len(markerKey), markerLen)
	copy(op.Key, markerKey)
	end := g.base + int64(len(g.frame)) + int64(g.b.Len()) + int64(len(g.runRecs))
	m := marker{seg: g.seg, end: end, next: g.next}
	if invariants.Enabled && !m.after(d.written) {
		invariants.Failf("diskstore: marker %+v written after marker %+v: a replay would start before frames it holds", m, d.written)
	}
	putMarker(op.Value, m)
	if err := op.Finish(); err != nil {
		return err
	}
	size := memSize(g.b)
	large := size >= d.memCap/4
	if large {
		// A batch this large could make pebble start a new memtable (and
		// flush the one before) by itself: the groups before and this one
		// must be durable first.
		d.pipe.drain()
		if err := d.failed(); err != nil {
			return err
		}
	}
	g.frame = appendIndexWrites(g.frame, g.b.Repr(), g.runRecs, len(g.newRuns))
	seglog.SealFrame(g.frame, events)
	if err := d.log.Write(g.frame); err != nil {
		return err
	}
	if large {
		if err := d.syncLog(); err != nil {
			return err
		}
		// Pebble may set aside the memtable and the batch itself.
		d.sealed.Add(2)
	} else if invariants.Enabled && d.unflushed+size >= d.memCap {
		// Pebble would start a new memtable by itself, and flush the one
		// before with groups in it that are not durable.
		invariants.Failf("diskstore: a batch of %d bytes applied to a memtable of %d bytes holding %d", size, d.memCap, d.unflushed)
	}
	written()
	b := g.b
	if g.goneIDs > 0 {
		// Retry records reach the index by ingestion only (ids.go).
		var err error
		if b, err = withoutIDs(d.pdb, g.b.Repr(), true, false, 0, 0); err != nil {
			return err
		}
		defer b.Close()
	}
	if err := d.pdb.Apply(b, pebble.NoSync); err != nil {
		return err
	}
	d.keepRecords(g.newIDs, g.newRuns)
	d.filing.settle()
	d.unflushed += size
	d.written = m
	return nil
}

// appendIndexWrites appends to frame the index writes of a group: those of
// repr (a pebble batch, ending with the marker), with the count records
// of runs (runs.go) after its header.
func appendIndexWrites(frame, repr, runs []byte, count int) []byte {
	at := len(frame)
	frame = append(frame, repr[:batchrepr.HeaderLen]...)
	n := binary.LittleEndian.Uint32(frame[at+8:])
	binary.LittleEndian.PutUint32(frame[at+8:], n+uint32(count))
	frame = append(frame, runs...)
	return append(frame, repr[batchrepr.HeaderLen:]...)
}

// maxPendingRecords is the number of retry records and runs in memory at
// which rotate hands them off without a flush (Options.pendingRecords):
// about 512Ki appends. At 256 writers (W2, 2,048,000 appends) a quarter of
// it made W2 about 10% slower for a peak memory 10-15% lower. Not for the
// hand-offs' own waits: their drains took 2.3-2.6 ms and their ingests
// 24-26 ms in all over such a run. For pebble's compactions: the runs of
// every stream span the whole key range, so each ingested table lands in
// L0 over the last, and four times as many, smaller ones were compacted
// at three times the bytes (116-118 MiB in 6-7 compactions against 38 MiB
// in one), CPU the committer shares two cores with (docs/benchmarks.md).
var maxPendingRecords = 1 << 20

// memSize bounds what a batch takes in pebble's memtable, and what pebble
// reserves for it before applying it: its bytes and, for each entry, a
// skiplist node of the greatest height.
func memSize(b *pebble.Batch) uint64 {
	return uint64(b.Len()) + 200*uint64(b.Count())
}

// rotate has pebble flush its memtable once it holds rotateAt of its size
// (by memSize, which overestimates), or when force is set. Pebble must
// never start a new memtable by itself, which it would do while a group in
// the old one is not durable: it does so when a batch does not fit, and no
// batch reaches it with a quarter of the memtable or more (larger ones
// wait for durability first, see writeGroup) while less than rotateAt is
// used. It waits until every group in flight is durable, so the memtable
// flushed holds only durable writes.
//
// The retry records and runs in memory are handed off with each flush, and
// on their own once there are maxPendingRecords of them (appends that
// write little else to the memtable, to streams that exist, fill it
// slowly).
func (d *DB) rotate(force bool) error {
	full := d.unflushed >= d.rotateAt()
	records := !force && !full && d.ids.pending() >= d.opts.pendingRecords
	if !force && !full && !records {
		return nil
	}
	d.pipe.drain()
	if err := d.failed(); err != nil {
		return err
	}
	// Every group written is durable: so are the retry records and runs
	// in memory, which go to the index with the memtable (ids.go).
	if force {
		if err := d.settleIDs(); err != nil {
			return err
		}
	} else {
		d.handOffIDs()
	}
	if records {
		return nil
	}
	d.unflushed = 0
	if !force && !d.grown && d.memCap < d.opts.MemTableBytes {
		return wrapErr(d.growMemtable())
	}
	d.sealed.Add(1)
	if force {
		return wrapErr(d.pdb.Flush())
	}
	_, err := d.pdb.AsyncFlush()
	return wrapErr(err)
}

// rotateAt is the memSize of the index writes in the memtable at which
// rotate flushes it: three quarters of it, less memSlack. Below it, a
// batch of less than a quarter (the most that reaches the memtable
// without a flush first, see writeGroup) fits in what is left, beside the
// memtable's own empty skiplists (pebble counts them in its size).
//
// At half, as before, every flush wrote a third fewer appends: each
// flushed memtable holds runs of most streams, so every compaction of L0
// rewrites most of the level below, and fewer, larger flushes rewrite it
// less often.
func (d *DB) rotateAt() uint64 {
	if d.memCap/4 <= memSlack {
		return d.memCap / 2
	}
	return d.memCap/2 + d.memCap/4 - memSlack
}

// memSlack bounds what an empty memtable takes of its size.
const memSlack = 64 << 10

// syncLog implements pipelineEnv.
// It counts the syncs and their time for CommitStats.
func (d *DB) syncLog() error {
	if d.opts.NoSync {
		return d.log.Sync()
	}
	start := time.Now()
	err := d.log.Sync()
	d.stats.syncTime.Add(int64(time.Since(start)))
	d.stats.syncs.Add(1)
	return err
}

// commitCounters are the counts CommitStats reports: groups and their
// requests (the committer adds them), syncs and their time (the syncer,
// or the committer for a large group).
type commitCounters struct {
	writes, groups, syncs atomic.Uint64
	syncTime              atomic.Int64 // nanoseconds
}

// CommitStats implements [cairn.GroupCommitter]: the groups committed
// since the store was opened, the requests they held, and the syncs of
// the log that made them durable. Writes per group, and per sync, say how
// many concurrent writers shared each; Syncs stays zero with
// Options.NoSync.
func (d *DB) CommitStats() cairn.CommitStats {
	return cairn.CommitStats{
		Writes:   d.stats.writes.Load(),
		Groups:   d.stats.groups.Load(),
		Syncs:    d.stats.syncs.Load(),
		SyncTime: time.Duration(d.stats.syncTime.Load()),
	}
}

// publishGroups implements pipelineEnv: it publishes to readers the state
// after the last of the groups of one sync, once they are durable (err is
// nil), and releases the snapshots of the others.
func (d *DB) publishGroups(groups []*pending, err error) {
	var last *pending
	anchor := false
	for _, p := range groups {
		if p.snap == nil {
			continue
		}
		if last != nil {
			_ = last.snap.Close()
		}
		last, anchor = p, anchor || p.anchor
	}
	if last == nil {
		return
	}
	if err != nil {
		_ = last.snap.Close()
		return
	}
	d.publish(last.snap, last.runs, last.next)
	if d.groups++; anchor || d.groups%anchorGroups == 0 {
		d.renewAnchor()
	}
}
