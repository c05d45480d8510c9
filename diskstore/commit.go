package diskstore

import (
	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

func (d *DB) newGroup(indexed bool, reqs []*request) (*group, error) {
	if d.log.Full() {
		// The syncer syncs the active segment: let it finish with it.
		d.drain()
	}
	seg, base, err := d.log.Reserve()
	if err != nil {
		return nil, d.fail(err)
	}
	g := &group{d: d, first: d.next, next: d.next, now: cairn.Now().UnixMicro(), ids: map[uuid.UUID]bool{}, seg: seg, base: base}
	idx, events := groupSize(reqs)
	if indexed {
		g.b = d.pdb.NewIndexedBatch()
	} else {
		g.b = d.pdb.NewBatchWithSize(idx)
	}
	if cap(d.frameBuf) < events {
		d.frameBuf = make([]byte, 0, events)
	}
	g.frame = seglog.BeginFrame(d.frameBuf)
	return g, nil
}

// commit commits one group of requests and answers them. It returns the
// requests that must wait for the next group.
func (d *DB) commit(reqs []*request) (deferred []*request) {
	if err := d.failed(); err != nil {
		for _, r := range reqs {
			r.finish(err)
		}
		return nil
	}
	d.settle()
	if err := d.rotate(reqs[0].kind == opFlush); err != nil || reqs[0].kind == opFlush {
		if err == nil {
			// What the index on disk holds now (nothing in a store
			// never written).
			reqs[0].flushed, _, err = d.marker(d.pdb)
		}
		for _, r := range reqs {
			r.finish(err)
		}
		return nil
	}
	d.evictHeads()
	switch reqs[0].kind {
	case opCommitAll:
		d.commitAll(reqs[0])
		return nil
	case opPurge:
		d.purgeStep(reqs[0])
		return nil
	}
	g, err := d.newGroup(false, reqs)
	if err != nil {
		for _, r := range reqs {
			r.finish(err)
		}
		return nil
	}
	answered := make([]*request, 0, len(reqs))
	wrote := false
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			answered = append(answered, r)
			continue
		}
		w, later, err := g.do(r)
		if later {
			deferred = append(deferred, r)
			continue
		}
		r.err = err
		wrote = wrote || w
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
func (d *DB) handoff(g *group, wrote bool, reqs []*request) {
	p := &pending{reqs: reqs, done: make(chan struct{}), anchor: g != nil && g.anchor}
	if wrote {
		if err := d.writeGroup(g); err != nil {
			// The stream heads in memory may be ahead of the disk now,
			// and the store refuses writes.
			err = d.fail(err)
			for _, r := range reqs {
				if r.err == nil {
					r.err = err
				}
			}
		} else {
			p.snap, p.next = d.pdb.NewSnapshot(), g.next
			d.next = g.next
		}
		_ = g.b.Close()
	} else if g != nil {
		_ = g.b.Close()
	}
	if g != nil && cap(g.frame) <= maxKeptFrame {
		d.frameBuf = g.frame[:0]
	}
	d.flight = append(d.flight, p)
	d.syncq <- p
}

// maxKeptFrame bounds the frame buffer the committer keeps for the next
// group.
const maxKeptFrame = 8 << 20

// writeGroup completes g's frame (its index writes, ending with the
// marker), appends it to the log and applies the index writes to pebble's
// memtable.
func (d *DB) writeGroup(g *group) error {
	events := len(g.frame) - seglog.HeaderLen
	if g.next > g.first {
		// One locator for the frame's events.
		k := locatorKey(g.first)
		sp := span{seg: g.seg, off: g.base + seglog.HeaderLen, bytes: int64(events)}
		_ = g.b.Set(k, appendRun(nil, k, g.first, int64(g.next-g.first), sp), nil)
	}
	// The index's last write is the marker: the end of this frame.
	op := g.b.SetDeferred(len(markerKey), markerLen)
	copy(op.Key, markerKey)
	end := g.base + int64(len(g.frame)) + int64(g.b.Len())
	putMarker(op.Value, marker{seg: g.seg, end: end, next: g.next})
	_ = op.Finish()
	size := memSize(g.b)
	large := size >= d.opts.MemTableBytes/4
	if large {
		// A batch this large could make pebble start a new memtable (and
		// flush the one before) by itself: the groups before and this one
		// must be durable first.
		d.drain()
		if err := d.failed(); err != nil {
			return err
		}
	}
	g.frame = append(g.frame, g.b.Repr()...)
	seglog.SealFrame(g.frame, events)
	if err := d.log.Write(g.frame); err != nil {
		return err
	}
	if large {
		if err := d.log.Sync(); err != nil {
			return err
		}
		// Pebble may set aside the memtable and the batch itself.
		d.sealed.Add(2)
	}
	if err := d.pdb.Apply(g.b, pebble.NoSync); err != nil {
		return err
	}
	d.unflushed += size
	return nil
}

// memSize bounds what a batch takes in pebble's memtable, and what pebble
// reserves for it before applying it: its bytes and, for each entry, a
// skiplist node of the greatest height.
func memSize(b *pebble.Batch) uint64 {
	return uint64(b.Len()) + 200*uint64(b.Count())
}

// rotate has pebble flush its memtable once it holds half of its size (by
// memSize, which overestimates), or when force is set. Pebble must never
// start a new memtable by itself, which it would do while a group in the
// old one is not durable: it does so when a batch does not fit, and no
// batch reaches it with more than a quarter of the memtable (larger ones
// wait for durability first, see writeGroup) while at most half is used. It waits
// until every group in flight is durable, so the memtable flushed holds
// only durable writes.
func (d *DB) rotate(force bool) error {
	if !force && d.unflushed < d.opts.MemTableBytes/2 {
		return nil
	}
	d.drain()
	if err := d.failed(); err != nil {
		return err
	}
	d.unflushed = 0
	d.sealed.Add(1)
	if force {
		return wrapErr(d.pdb.Flush())
	}
	_, err := d.pdb.AsyncFlush()
	return wrapErr(err)
}
