package diskstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

type opKind uint8

const (
	opAppend opKind = iota
	opBatch
	opCommitAll
	opDelete
	opTombstone
	opTruncate
	opSnapshot
	opPurge
	opHealth
	opFlush
)

// request is one write handed to the committer.
type request struct {
	ctx         context.Context
	kind        opKind
	reqs        []cairn.AppendRequest // opAppend (one), opBatch, opCommitAll (one)
	projections []cairn.Projection
	stream      string                // opDelete, opTombstone, opTruncate; opPurge: resume after
	expected    cairn.ExpectedVersion // opDelete, opTombstone
	before      int64
	snap        cairn.Snapshot

	size    int    // bytes(), once computed
	flushed marker // opFlush: the marker of the index flushed

	results []cairn.AppendResult
	next    string // opPurge: where the next step resumes; "" when done
	err     error
	done    chan struct{}
}

// exclusive requests are committed in a group of their own.
func (r *request) exclusive() bool {
	return r.kind == opCommitAll || r.kind == opPurge || r.kind == opFlush
}

func (r *request) events() int {
	n := 1
	for _, a := range r.reqs {
		n += len(a.Events)
	}
	return n
}

// bytes returns about the bytes r adds to a frame.
func (r *request) bytes() int {
	if r.size == 0 {
		_, r.size = groupSize([]*request{r})
	}
	return r.size
}

// maxGroupBytes bounds the bytes of the requests committed in one group;
// a larger request is committed in a group of its own.
const maxGroupBytes = 64 << 20

// maxWriteBytes bounds one write (a frame's lengths are 32-bit).
const maxWriteBytes = 1 << 30

func (r *request) finish(err error) {
	r.err = err
	close(r.done)
}

// submit hands r to the committer and waits until it is durable or failed.
func (d *DB) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.opts.ReadOnly {
		return ErrReadOnly
	}
	if n := r.bytes(); n > maxWriteBytes {
		return &cairn.InvalidArgumentError{Field: "events", Reason: fmt.Sprintf("take about %d bytes in all, more than the %d bytes one write to this engine can hold", n, maxWriteBytes)}
	}
	r.ctx = ctx
	r.done = make(chan struct{})
	d.subMu.RLock()
	if d.closed {
		d.subMu.RUnlock()
		return cairn.ErrClosed
	}
	if err := d.failed(); err != nil {
		d.subMu.RUnlock()
		return err
	}
	d.reqs <- r
	d.subMu.RUnlock()
	<-r.done
	return r.err
}

const maxQueue = 4096

// yieldBelow is the queue length below which the committer yields once
// before it forms a group (see commitLoop).
const yieldBelow = 8

// yieldBelowEvents is the number of events below which it yields.
const yieldBelowEvents = 64

func queuedEvents(queue []*request) int {
	n := 0
	for _, r := range queue {
		n += r.events()
	}
	return n
}

// commitLoop is the committer goroutine: it takes the requests waiting and
// commits them in groups. It exits when Close closes the request channel and
// every request has been handed to the syncer.
func (d *DB) commitLoop() {
	defer close(d.syncq)
	var queue []*request
	open := true
	for {
		if len(queue) == 0 {
			if !open {
				return
			}
			r, ok := <-d.reqs
			if !ok {
				return
			}
			queue = append(queue, r)
		}
		yielded := false
	drain:
		for open && len(queue) < maxQueue {
			select {
			case r, ok := <-d.reqs:
				if !ok {
					open = false
					break drain
				}
				queue = append(queue, r)
			default:
				// Few requests waiting: let the writers that were
				// just answered (and are runnable) submit their next
				// write first, so that they join this group rather
				// than wait for the next fsync. Without it, under 64
				// writers most groups held one or two requests, each
				// with its own frame, fsync and snapshot.
				// A large append is worth a group of its own.
				if !yielded && len(queue) < yieldBelow && queuedEvents(queue) < yieldBelowEvents {
					yielded = true
					runtime.Gosched()
					continue
				}
				break drain
			}
		}
		n := 1
		if !queue[0].exclusive() {
			events, size := queue[0].events(), queue[0].bytes()
			for n < len(queue) && !queue[n].exclusive() && events+queue[n].events() <= d.opts.MaxGroupEvents && size+queue[n].bytes() <= maxGroupBytes {
				events += queue[n].events()
				size += queue[n].bytes()
				n++
			}
		}
		deferred := d.commit(queue[:n])
		queue = append(deferred, queue[n:]...)
	}
}

// group is the state of one group commit: the frame it appends to the log
// (its events) and the batch of index writes that goes with them.
type group struct {
	d       *DB
	b       *pebble.Batch
	frame   []byte // the frame being built: header, then event records
	seg     uint64 // the segment the frame goes to
	base    int64  // the frame's offset in it
	anchor  bool   // renew the anchor after the group
	first   uint64 // the position of the group's first event
	next    uint64 // next position
	now     int64  // commit time, Unix µs
	ids     map[uuid.UUID]bool
	snaps   map[string]int64
	evKey   [9]byte // the key an event's checksum covers
	key     []byte  // reused for encoding keys
	scratch []byte  // reused for encoding values
}

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

// groupSize returns about the size of the index batch and of the frame
// that reqs write, so that both are allocated once rather than grown (and
// copied) again and again.
func groupSize(reqs []*request) (index, frame int) {
	index, frame = 12+markerLen+16, seglog.HeaderLen
	for _, r := range reqs {
		for _, a := range r.reqs {
			// The run, locator, retry and stream records.
			index += 3*len(a.Stream) + 160
			for i := range a.Events {
				frame += 5 + eventSize(a.Stream, &a.Events[i])
			}
		}
	}
	return index, frame + index
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

// pending is a group on its way to disk, in the syncer's queue.
type pending struct {
	snap   *pebble.Snapshot // the state after the group; nil when it wrote nothing or failed
	next   uint64
	anchor bool // renew the anchor after the group
	reqs   []*request
	done   chan struct{} // closed once the group is durable (or failed) and answered
}

// settle forgets the groups in flight that the syncer has answered.
func (d *DB) settle() {
	for len(d.flight) > 0 {
		select {
		case <-d.flight[0].done:
		default:
			return
		}
		d.flight = d.flight[1:]
	}
}

// drain waits until every group in flight is durable (or failed) and
// answered.
func (d *DB) drain() {
	for _, p := range d.flight {
		<-p.done
	}
	d.flight = d.flight[:0]
}

// syncLoop is the syncer goroutine: it syncs the log once for all the
// groups written since the last sync, then, in order, applies each group's
// index writes to pebble (without a sync of their own: the log holds them,
// and Open replays what pebble lost), publishes the state after it to
// readers, and answers its requests.
func (d *DB) syncLoop() {
	defer close(d.done)
	answered := 0 // requests answered after the last sync
	for p := range d.syncq {
		batch := []*pending{p}
		n := len(p.reqs)
		open := true
		for tries := 0; open; {
			select {
			case p, ok := <-d.syncq:
				if !ok {
					open = false
					continue
				}
				batch = append(batch, p)
				n += len(p.reqs)
				continue
			default:
			}
			// Fewer requests than were answered last time: the writers
			// answered then are likely on their way with their next
			// write. Let them (and the committer) run, so that they
			// share this sync rather than wait for the next.
			if n >= answered || tries == maxSyncYields {
				break
			}
			tries++
			runtime.Gosched()
		}
		err := d.failed()
		if err == nil {
			if err = d.log.Sync(); err != nil {
				err = d.fail(err)
			}
		}
		d.publishGroups(batch, err)
		for _, p := range batch {
			for _, r := range p.reqs {
				if r.err == nil {
					r.err = err
				}
				close(r.done)
			}
			close(p.done)
		}
		answered = n
	}
}

// maxSyncYields bounds how many times the syncer yields to let writers
// join a sync.
const maxSyncYields = 4

// publishGroups publishes to readers the state after the last of the
// groups of one sync, once they are durable (err is nil), and releases the
// snapshots of the others.
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
	d.publish(last.snap, last.next)
	if d.groups++; anchor || d.groups%anchorGroups == 0 {
		d.renewAnchor()
	}
}

// do performs r's checks and adds its writes to the batch. wrote reports
// whether r wrote anything; later asks to retry r in the next group.
func (g *group) do(r *request) (wrote, later bool, err error) {
	switch r.kind {
	case opAppend:
		a := r.reqs[0]
		h, res, retry, later, err := g.check(a.Stream, a.Expected, a.Events)
		if err != nil || later {
			return false, later, err
		}
		if retry {
			r.results = []cairn.AppendResult{res}
			return false, false, nil
		}
		r.results = []cairn.AppendResult{g.write(a.Stream, h, a.Events)}
		return true, false, nil

	case opBatch:
		heads := make([]*head, len(r.reqs))
		r.results = make([]cairn.AppendResult, len(r.reqs))
		retried := make([]bool, len(r.reqs))
		errs := make([]error, len(r.reqs))
		failed := false
		for i, a := range r.reqs {
			var later bool
			heads[i], r.results[i], retried[i], later, errs[i] = g.check(a.Stream, a.Expected, a.Events)
			if later {
				return false, true, nil
			}
			failed = failed || errs[i] != nil
		}
		if failed {
			return false, false, &cairn.BatchError{Errs: errs}
		}
		for i, a := range r.reqs {
			if !retried[i] {
				r.results[i] = g.write(a.Stream, heads[i], a.Events)
				wrote = true
			}
		}
		return wrote, false, nil

	case opDelete, opTombstone, opTruncate:
		return g.streamOp(r)

	case opSnapshot:
		return g.snapshot(r.snap)

	case opHealth:
		// A frame with nothing but the marker: proof that the log can
		// be written and synced.
		return true, false, nil
	}
	return false, false, fmt.Errorf("diskstore: unknown request kind %d", r.kind)
}

// check performs the checks of an append to stream. retry reports a repeat
// of an earlier append, whose result res is. later asks to retry the append
// in the next group, once an append of this group with the same first event
// ID is durable.
func (g *group) check(stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (h *head, res cairn.AppendResult, retry, later bool, err error) {
	h, err = g.d.head(stream)
	if err != nil {
		return nil, res, false, false, err
	}
	if h.meta.flags&flagTombstoned != 0 {
		return nil, res, false, false, cairn.Deleted("append to", stream)
	}
	id := events[0].ID
	if g.ids[id] {
		return nil, res, false, true, nil
	}
	if bytes.Compare(id[:], g.d.maxID[:]) > 0 {
		return h, res, false, false, expected.Check(stream, h.current())
	}
	v, closer, err := g.d.pdb.Get(idKey(id))
	switch {
	case err == nil:
		pos, err := decodeUint(idKey(id), v)
		_ = closer.Close()
		if err != nil {
			return nil, res, false, false, err
		}
		recorded, err := recordedFrom(g.d.pdb, g.d.log, pos, len(events))
		if err != nil {
			return nil, res, false, false, err
		}
		res, err = cairn.RetryResult(stream, expected, events, recorded)
		return nil, res, true, false, err
	case !errors.Is(err, pebble.ErrNotFound):
		return nil, res, false, false, wrapErr(err)
	}
	return h, res, false, false, expected.Check(stream, h.current())
}

// write adds an append that passed its checks to the group: its events to
// the frame, its run and retry records to the index batch.
func (g *group) write(stream string, h *head, events []cairn.EventData) cairn.AppendResult {
	first := h.last + 1
	pos := g.next
	start := len(g.frame)
	k := g.evKey[:]
	for i := range events {
		e := &events[i]
		g.frame = binary.AppendUvarint(g.frame, uint64(eventLen(stream, first+int64(i), g.now, e)))
		at := len(g.frame)
		g.frame = appendEvent(g.frame, stream, first+int64(i), g.now, e)
		putEventKey(k, pos+uint64(i))
		sealInPlace(k, g.frame[at:])
	}
	sp := span{seg: g.seg, off: g.base + int64(start), bytes: int64(len(g.frame) - start)}
	n := int64(len(events))
	// The records, encoded in reused buffers (the batch copies them).
	g.key = appendRunKey(g.key[:0], stream, first)
	g.scratch = appendRun(g.scratch[:0], g.key, pos, n, sp)
	_ = g.b.Set(g.key, g.scratch, nil)
	g.key = append(append(g.key[:0], prefixID), events[0].ID[:]...)
	g.scratch = appendUint(g.scratch[:0], g.key, pos)
	_ = g.b.Set(g.key, g.scratch, nil)
	g.ids[events[0].ID] = true
	if id := events[0].ID; bytes.Compare(id[:], g.d.maxID[:]) > 0 {
		g.d.maxID = id
	}
	if !h.stored || h.meta.flags&flagDeleted != 0 {
		h.meta.flags &^= flagDeleted
		g.putMeta(stream, h)
	}
	h.last += n
	g.next += uint64(n)
	return cairn.AppendResult{Version: h.last, Position: g.next - 1}
}

func (g *group) putMeta(stream string, h *head) {
	k := metaKey(stream)
	_ = g.b.Set(k, encodeMeta(k, h.meta), nil)
	h.stored = true
}

func (g *group) streamOp(r *request) (wrote, later bool, err error) {
	h, err := g.d.head(r.stream)
	if err != nil {
		return false, false, err
	}
	op := map[opKind]string{opDelete: "delete", opTombstone: "tombstone", opTruncate: "truncate"}[r.kind]
	if h.meta.flags&flagTombstoned != 0 {
		return false, false, cairn.Deleted(op, r.stream)
	}
	if r.kind != opTruncate {
		if err := r.expected.Check(r.stream, h.current()); err != nil {
			return false, false, err
		}
	}
	switch r.kind {
	case opDelete, opTruncate:
		if h.current() < 0 {
			return false, false, cairn.NotFound(op, r.stream)
		}
		if r.kind == opDelete {
			h.meta.flags |= flagDeleted
			h.meta.before = max(h.meta.before, h.last+1)
		} else {
			if r.before <= h.meta.before {
				return false, false, nil
			}
			h.meta.before = r.before
		}
	case opTombstone:
		h.meta.flags |= flagTombstoned
		h.meta.before = max(h.meta.before, h.last+1)
	}
	if r.kind != opTruncate {
		// The stream's snapshot goes with it.
		_ = g.b.Delete(snapshotKey(r.stream), nil)
		if g.snaps == nil {
			g.snaps = map[string]int64{}
		}
		g.snaps[r.stream] = -1
	}
	g.putMeta(r.stream, h)
	return true, false, nil
}

func (g *group) snapshot(s cairn.Snapshot) (wrote, later bool, err error) {
	h, err := g.d.head(s.StreamID)
	if err != nil {
		return false, false, err
	}
	if h.meta.flags&(flagDeleted|flagTombstoned) != 0 {
		return false, false, nil // a deleted stream has no snapshot
	}
	k := snapshotKey(s.StreamID)
	stored, ok := g.snaps[s.StreamID]
	if !ok {
		v, closer, err := g.d.pdb.Get(k)
		switch {
		case err == nil:
			old, err := decodeSnapshot(k, v, s.StreamID)
			_ = closer.Close()
			if err != nil {
				return false, false, err
			}
			stored, ok = old.Version, true
		case !errors.Is(err, pebble.ErrNotFound):
			return false, false, wrapErr(err)
		}
	}
	if ok && stored >= s.Version {
		return false, false, nil
	}
	s.Created = timeMicro(g.now)
	_ = g.b.Set(k, encodeSnapshot(k, s), nil)
	if g.snaps == nil {
		g.snaps = map[string]int64{}
	}
	g.snaps[s.StreamID] = s.Version
	return true, false, nil
}

// commitAll commits an append with projections, in a group of its own: the
// projections write into the same indexed batch as the events, and read
// their own writes through it.
func (d *DB) commitAll(r *request) {
	if err := r.ctx.Err(); err != nil {
		r.err = err
		d.handoff(nil, false, []*request{r})
		return
	}
	a := r.reqs[0]
	g, err := d.newGroup(true, []*request{r})
	if err != nil {
		r.err = err
		d.handoff(nil, false, []*request{r})
		return
	}
	h, res, retry, _, err := g.check(a.Stream, a.Expected, a.Events)
	if err != nil || retry {
		r.results, r.err = []cairn.AppendResult{res}, err
		d.handoff(g, false, []*request{r})
		return
	}
	created := timeMicro(g.now)
	recorded := make([]cairn.Event, len(a.Events))
	for i, e := range a.Events {
		recorded[i] = cairn.Event{EventData: e, StreamID: a.Stream, Version: h.last + 1 + int64(i), Position: g.next + uint64(i), Created: created}
	}
	t := &tx{b: g.b}
	for _, p := range r.projections {
		if err := runProjection(r.ctx, p, t, recorded); err != nil {
			t.closed = true
			r.err = err
			d.handoff(g, false, []*request{r})
			return
		}
	}
	t.closed = true
	r.results = []cairn.AppendResult{g.write(a.Stream, h, a.Events)}
	d.handoff(g, true, []*request{r})
}

func runProjection(ctx context.Context, p cairn.Projection, t *tx, events []cairn.Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("diskstore: projection panicked: %v", v)
		}
	}()
	return p(ctx, t, events)
}

// Append implements [cairn.Backend].
func (d *DB) Append(ctx context.Context, stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	r := &request{kind: opAppend, reqs: []cairn.AppendRequest{{Stream: stream, Expected: expected, Events: events}}}
	if err := d.submit(ctx, r); err != nil {
		return cairn.AppendResult{}, err
	}
	return r.results[0], nil
}

// AppendBatch implements [cairn.BatchAppender]: all requests are committed
// in one pebble batch, or none.
func (d *DB) AppendBatch(ctx context.Context, requests []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	r := &request{kind: opBatch, reqs: requests}
	if err := d.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.results, nil
}

// CommitAll implements [cairn.TxCommitter]. The projections run on the
// committer goroutine, one commit at a time, while other writes wait: they
// must be quick and must not call back into the store.
func (d *DB) CommitAll(ctx context.Context, req cairn.AppendRequest, projections []cairn.Projection) (cairn.AppendResult, error) {
	r := &request{kind: opCommitAll, reqs: []cairn.AppendRequest{req}, projections: projections}
	if err := d.submit(ctx, r); err != nil {
		return cairn.AppendResult{}, err
	}
	return r.results[0], nil
}

// DeleteStream implements [cairn.Backend].
func (d *DB) DeleteStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return d.submit(ctx, &request{kind: opDelete, stream: stream, expected: expected})
}

// TombstoneStream implements [cairn.Tombstoner].
func (d *DB) TombstoneStream(ctx context.Context, stream string, expected cairn.ExpectedVersion) error {
	return d.submit(ctx, &request{kind: opTombstone, stream: stream, expected: expected})
}

// TruncateStream implements [cairn.Truncater]. The events below before
// disappear from reads at once and from the disk at the next [DB.Compact].
func (d *DB) TruncateStream(ctx context.Context, stream string, before int64) error {
	return d.submit(ctx, &request{kind: opTruncate, stream: stream, before: before})
}

// CommitSnapshot implements [cairn.Snapshotter].
func (d *DB) CommitSnapshot(ctx context.Context, s cairn.Snapshot) error {
	return d.submit(ctx, &request{kind: opSnapshot, snap: s})
}

// tx is the [cairn.Tx] a projection writes through: an indexed pebble batch
// that also holds the commit's events.
type tx struct {
	b      *pebble.Batch
	closed bool
}

var errTxDone = errors.New("diskstore: transaction used after its projection returned")

func (t *tx) Get(ctx context.Context, table, key string) ([]byte, bool, error) {
	if t.closed {
		return nil, false, errTxDone
	}
	if err := checkTable(table); err != nil {
		return nil, false, err
	}
	k := tableKey(table, key)
	v, closer, err := t.b.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrapErr(err)
	}
	defer closer.Close()
	p, err := unseal(k, v)
	if err != nil {
		return nil, false, err
	}
	return append([]byte{}, p...), true, nil
}

func (t *tx) Put(ctx context.Context, table, key string, value []byte) error {
	if t.closed {
		return errTxDone
	}
	if err := checkTable(table); err != nil {
		return err
	}
	k := tableKey(table, key)
	return t.b.Set(k, seal(k, value), nil)
}

func (t *tx) Delete(ctx context.Context, table, key string) error {
	if t.closed {
		return errTxDone
	}
	if err := checkTable(table); err != nil {
		return err
	}
	return t.b.Delete(tableKey(table, key), nil)
}

// checkTable rejects the table names that cairn.ValidateTable rejects (the
// key layout needs them non-empty and without NUL).
func checkTable(table string) error { return cairn.ValidateTable(table) }
