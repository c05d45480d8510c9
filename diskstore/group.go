package diskstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

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
