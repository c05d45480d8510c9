package diskstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/invariants"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// group is the state of one group commit: the frame it appends to the log
// (its events) and the batch of index writes that goes with them. It lives
// on the committer goroutine, from newGroup to handoff.
type group struct {
	d *DB
	b *pebble.Batch
	// w holds the index writes of a group whose batch is not indexed,
	// until writeGroup adds them to b in key order; nil for an indexed
	// batch, which takes each write at once (its operations read their
	// own writes).
	w      *indexWrites
	frame  []byte // the frame being built: header, then event records
	seg    uint64 // the segment the frame goes to
	base   int64  // the frame's offset in it
	anchor bool   // renew the anchor after the group
	first  uint64 // the position of the group's first event
	next   uint64 // next position
	now    int64  // commit time, Unix µs
	ids    *groupIDs
	snaps  map[string]int64
	// evs are the events the group wrote so far, from position first on:
	// what the conditions of its later appends are checked against
	// (condition.go), along with the index. Their entries are in the
	// committer's filing (filing.go), written with the frame.
	evs     []groupEvent
	evKey   [9]byte // the key an event's checksum covers
	key     []byte  // reused for encoding keys
	scratch []byte  // reused for encoding values
	// cuts counts the locators compaction cut (compact.go).
	cuts int
	// locators reads the locators for cut, made at its first call and
	// refreshed at each (it sees the batch's writes as of then); the
	// purge step closes it.
	locators *pebble.Iterator
	// newIDs are the retry records the group writes (and removes), kept
	// in memory once its frame is in the log (ids.go); goneIDs counts the
	// removals, which its index writes hold as well (for a replay), but
	// not those applied to pebble's memtable.
	newIDs  []stagedID
	goneIDs int
	// newRuns are the runs of the group's appends, kept in memory once
	// its frame is in the log (runs.go); runRecs encodes them as index
	// writes, which the frame holds (for a replay) and pebble does not.
	newRuns []stagedRun
	runRecs []byte
	// broken is the first error of a write to the index batch: the group
	// cannot be committed (see handoff).
	broken error
}

// delID removes the retry record of id: in the frame's index writes, for
// a replay, and from memory once the frame is written.
func (g *group) delID(id uuid.UUID) error {
	if err := g.del(idKey(id)); err != nil {
		return err
	}
	g.newIDs = append(g.newIDs, stagedID{k: toID128(id), rec: idRec{gone: true}})
	g.goneIDs++
	return nil
}

// set adds key → value to the group's index batch, and del the removal of
// key. Pebble refuses a write to a batch only in corner cases (a damaged
// or overfull batch); then the group is broken, and handoff fails it.
func (g *group) set(key, value []byte) error {
	if g.w != nil {
		g.w.add(key, value, false)
		return nil
	}
	if err := g.b.Set(key, value, nil); err != nil {
		return g.breakOn(err)
	}
	return nil
}

func (g *group) del(key []byte) error {
	if g.w != nil {
		g.w.add(key, nil, true)
		return nil
	}
	if err := g.b.Delete(key, nil); err != nil {
		return g.breakOn(err)
	}
	return nil
}

// groupEvent is an event a group wrote.
type groupEvent struct {
	stream string
	e      *cairn.EventData
}

func (g *group) breakOn(err error) error {
	err = fmt.Errorf("diskstore: index batch: %w", err)
	if g.broken == nil {
		g.broken = err
	}
	return err
}

// effect is what an operation did to its group.
type effect uint8

const (
	effectNone  effect = iota // it wrote nothing (its result or error is set)
	effectWrote               // it added writes to the group
	effectLater               // it must wait for the next group (see verdictLater)
)

// do performs op's checks and adds its writes to the group.
func (g *group) do(op operation) (effect, error) {
	switch op := op.(type) {
	case *appendOp:
		a := &op.req[0]
		c := g.check(a.Stream, a.Expected, a.Events)
		switch c.verdict {
		case verdictLater:
			return effectLater, nil
		case verdictRefuse:
			return effectNone, c.err
		case verdictRepeat:
			op.result = c.result
			return effectNone, nil
		}
		if err := g.checkCondition(a.Condition); err != nil {
			return effectNone, err
		}
		res, err := g.write(a.Stream, c.head, a.Events)
		op.result = res
		return effectWrote, err

	case *batchOp:
		checks := make([]appendCheck, len(op.reqs))
		errs := make([]error, len(op.reqs))
		failed := false
		for i := range op.reqs {
			a := &op.reqs[i]
			checks[i] = g.check(a.Stream, a.Expected, a.Events)
			switch checks[i].verdict {
			case verdictLater:
				return effectLater, nil
			case verdictRefuse:
				errs[i], failed = checks[i].err, true
			}
		}
		// The conditions, once every expectation is checked (a request
		// that fails both reports its expectation), against the events
		// before the batch: none of the batch's own is written yet.
		for i := range op.reqs {
			if checks[i].verdict != verdictWrite {
				continue
			}
			if err := g.checkCondition(op.reqs[i].Condition); err != nil {
				if !errors.Is(err, cairn.ErrConditionFailed) {
					return effectNone, err
				}
				errs[i], failed = err, true
			}
		}
		if failed {
			return effectNone, &cairn.BatchError{Errs: errs}
		}
		op.results = make([]cairn.AppendResult, len(op.reqs))
		s := effectNone
		for i := range op.reqs {
			if checks[i].verdict == verdictRepeat {
				op.results[i] = checks[i].result
				continue
			}
			a := &op.reqs[i]
			res, err := g.write(a.Stream, checks[i].head, a.Events)
			if err != nil {
				return effectWrote, err
			}
			op.results[i], s = res, effectWrote
		}
		return s, nil

	case *deleteOp:
		return g.remove("delete", op.stream, op.expected, flagDeleted)
	case *tombstoneOp:
		return g.remove("tombstone", op.stream, op.expected, flagTombstoned)
	case *truncateOp:
		return g.truncate(op.stream, op.before)
	case *snapshotOp:
		return g.snapshot(op.snap)
	case *healthOp:
		// A frame with nothing but the marker: proof that the log can
		// be written and synced.
		return effectWrote, nil
	}
	return effectNone, fmt.Errorf("diskstore: %T cannot be committed in a shared group", op)
}

// verdict is what the checks of an append decided.
type verdict uint8

const (
	// verdictWrite: the append is new and passes its expectation; write
	// it after the stream's head.
	verdictWrite verdict = iota
	// verdictRepeat: a repeat of an earlier append (same first event ID,
	// same events), or a check-only request of a batch (no events) whose
	// expectation holds; answer the result and write nothing.
	verdictRepeat
	// verdictLater: an append of this group has the same first event ID;
	// check this one again in the next group, once that one is written.
	verdictLater
	// verdictRefuse: the append fails; the error says why.
	verdictRefuse
)

// appendCheck is the outcome of the checks of one append.
type appendCheck struct {
	verdict verdict
	head    *head              // verdictWrite: the stream's head
	result  cairn.AppendResult // verdictRepeat: the earlier append's result
	err     error              // verdictRefuse: why
}

func refused(err error) appendCheck { return appendCheck{verdict: verdictRefuse, err: err} }

// check performs the checks of an append of events to stream.
func (g *group) check(stream string, expected cairn.ExpectedVersion, events []cairn.EventData) appendCheck {
	h, err := g.d.head(stream)
	if err != nil {
		return refused(err)
	}
	if h.meta.flags&flagTombstoned != 0 {
		return refused(cairn.Deleted("append to", stream))
	}
	if len(events) == 0 {
		// A check-only request of a batch: nothing to write.
		if err := expected.Check(stream, h.current()); err != nil {
			return refused(err)
		}
		return appendCheck{verdict: verdictRepeat, result: cairn.AppendResult{Version: h.current()}}
	}
	id := events[0].ID
	if g.ids.has(id) {
		return appendCheck{verdict: verdictLater}
	}
	if !g.d.recent.mayBeRecorded(id) {
		return checkExpected(stream, expected, h)
	}
	pos, found, err := g.d.findID(id)
	switch {
	case err != nil:
		return refused(err)
	case found:
		recorded, err := recordedFrom(g.d.committed(), g.d.log, pos, len(events))
		if err != nil {
			return refused(err)
		}
		res, err := cairn.RetryResult(stream, expected, events, recorded)
		if err != nil {
			return refused(err)
		}
		return appendCheck{verdict: verdictRepeat, result: res}
	}
	return checkExpected(stream, expected, h)
}

// checkCondition returns a *cairn.ConditionError when c (if any) fails
// against the events committed before, those of the group included (see
// condition.go).
func (g *group) checkCondition(c *cairn.AppendCondition) error {
	if c == nil {
		return nil
	}
	pos, failed, err := g.conflict(c)
	if err != nil {
		return err
	}
	if failed {
		return &cairn.ConditionError{Position: pos}
	}
	return nil
}

// checkExpected checks a new append against the stream's version.
func checkExpected(stream string, expected cairn.ExpectedVersion, h *head) appendCheck {
	if err := expected.Check(stream, h.current()); err != nil {
		return refused(err)
	}
	return appendCheck{verdict: verdictWrite, head: h}
}

// write adds an append that passed its checks to the group: its events to
// the frame, its run and retry records to the index batch. Its positions
// follow the group's last: the positions of a group are contiguous.
func (g *group) write(stream string, h *head, events []cairn.EventData) (cairn.AppendResult, error) {
	first := h.last + 1
	pos := g.next
	start := len(g.frame)
	k := g.evKey[:]
	d := g.d
	for i := range events {
		e := &events[i]
		rec := len(g.frame)
		g.frame = binary.AppendUvarint(g.frame, uint64(eventLen(stream, first+int64(i), g.now, e)))
		at := len(g.frame)
		g.frame = appendEvent(g.frame, stream, first+int64(i), g.now, e)
		putEventKey(k, pos+uint64(i))
		sealInPlace(k, g.frame[at:])
		// The event's entries in the index, written with the frame.
		if err := d.filing.file(&d.lists, d.pdb, stream, first+int64(i), e, pos+uint64(i), g.base+int64(rec), int64(len(g.frame)-rec)); err != nil {
			return cairn.AppendResult{}, g.breakOn(err)
		}
		g.evs = append(g.evs, groupEvent{stream: stream, e: e})
	}
	sp := span{seg: g.seg, off: g.base + int64(start), bytes: int64(len(g.frame) - start)}
	n := int64(len(events))
	// The run: in the frame's index writes, and in memory once the frame
	// is written (runs.go).
	g.key = appendRunKey(g.key[:0], stream, first)
	g.scratch = appendRun(g.scratch[:0], g.key, pos, n, sp)
	g.runRecs = appendRunRecord(g.runRecs, g.key, g.scratch)
	g.newRuns = append(g.newRuns, stagedRun{stream: stream, rn: run{first: first, pos: pos, count: n, span: sp}})
	// The retry record, kept in memory once the frame is written (ids.go).
	g.newIDs = append(g.newIDs, stagedID{k: toID128(events[0].ID), rec: idRec{pos: pos}})
	g.ids.add(events[0].ID)
	g.d.recent.add(events[0].ID)
	if !h.stored || h.meta.flags&flagDeleted != 0 {
		h.meta.flags &^= flagDeleted
		if err := g.putMeta(stream, h); err != nil {
			return cairn.AppendResult{}, err
		}
	}
	h.last += n
	g.next += uint64(n)
	return cairn.AppendResult{Version: h.last, Position: g.next - 1}, nil
}

func (g *group) putMeta(stream string, h *head) error {
	k := metaKey(stream)
	if err := g.set(k, encodeMeta(k, h.meta)); err != nil {
		return err
	}
	h.stored = true
	return nil
}

// remove deletes stream: soft (flagDeleted, for a delete) or for good
// (flagTombstoned). op names the operation in errors.
func (g *group) remove(op, stream string, expected cairn.ExpectedVersion, flag uint8) (effect, error) {
	h, err := g.d.head(stream)
	if err != nil {
		return effectNone, err
	}
	if h.meta.flags&flagTombstoned != 0 {
		return effectNone, cairn.Deleted(op, stream)
	}
	if err := expected.Check(stream, h.current()); err != nil {
		return effectNone, err
	}
	if flag == flagDeleted && h.current() < 0 {
		return effectNone, cairn.NotFound(op, stream)
	}
	// The record of the delete, in the same frame (cairn.Deletion).
	rec, err := cairn.NewDeletionRecord(cairn.Deletion{Stream: stream, Hard: flag == flagTombstoned, Version: h.current()}, timeMicro(g.now))
	if err != nil {
		return effectNone, err
	}
	rh, err := g.d.head(cairn.DeletionsStream)
	if err != nil {
		return effectNone, err
	}
	h.meta.flags |= flag
	h.meta.before = max(h.meta.before, h.last+1)
	// The stream's snapshot goes with it.
	if err := g.del(snapshotKey(stream)); err != nil {
		return effectNone, err
	}
	if g.snaps == nil {
		g.snaps = map[string]int64{}
	}
	g.snaps[stream] = -1
	if err := g.putMeta(stream, h); err != nil {
		return effectWrote, err
	}
	_, err = g.write(cairn.DeletionsStream, rh, []cairn.EventData{rec})
	return effectWrote, err
}

// truncate hides the versions of stream below before.
func (g *group) truncate(stream string, before int64) (effect, error) {
	h, err := g.d.head(stream)
	if err != nil {
		return effectNone, err
	}
	if h.meta.flags&flagTombstoned != 0 {
		return effectNone, cairn.Deleted("truncate", stream)
	}
	if h.current() < 0 {
		return effectNone, cairn.NotFound("truncate", stream)
	}
	if before <= h.meta.before {
		return effectNone, nil
	}
	h.meta.before = before
	return effectWrote, g.putMeta(stream, h)
}

func (g *group) snapshot(s cairn.Snapshot) (effect, error) {
	h, err := g.d.head(s.StreamID)
	if err != nil {
		return effectNone, err
	}
	if h.meta.flags&(flagDeleted|flagTombstoned) != 0 {
		return effectNone, nil // a deleted stream has no snapshot
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
				return effectNone, err
			}
			stored, ok = old.Version, true
		case !errors.Is(err, pebble.ErrNotFound):
			return effectNone, wrapErr(err)
		}
	}
	if ok && stored >= s.Version {
		return effectNone, nil
	}
	s.Created = timeMicro(g.now)
	if err := g.set(k, encodeSnapshot(k, s)); err != nil {
		return effectNone, err
	}
	if g.snaps == nil {
		g.snaps = map[string]int64{}
	}
	g.snaps[s.StreamID] = s.Version
	return effectWrote, nil
}

// commitAll commits an append with projections, in a group of its own: the
// projections write into the same indexed batch as the events, and read
// their own writes through it.
func (d *DB) commitAll(op *commitAllOp) {
	r := op.base()
	answer := func(g *group, wrote bool) { d.handoff(g, wrote, []*request{r}) }
	if err := r.ctx.Err(); err != nil {
		r.err = err
		answer(nil, false)
		return
	}
	a := &op.req[0]
	g, err := d.newGroup(true, []operation{op})
	if err != nil {
		r.err = err
		answer(nil, false)
		return
	}
	c := g.check(a.Stream, a.Expected, a.Events)
	// A group of its own holds no other append with the same first ID.
	invariants.Check(c.verdict != verdictLater, "diskstore: a commit with projections deferred in a group of its own")
	switch c.verdict {
	case verdictRefuse:
		r.err = c.err
		answer(g, false)
		return
	case verdictRepeat:
		op.result = c.result
		answer(g, false)
		return
	}
	if err := g.checkCondition(a.Condition); err != nil {
		r.err = err
		answer(g, false)
		return
	}
	h := c.head
	if op.plan != nil {
		g.now = op.at
	}
	created := timeMicro(g.now)
	recorded := make([]cairn.Event, len(a.Events))
	for i, e := range a.Events {
		recorded[i] = cairn.Event{EventData: e, StreamID: a.Stream, Version: h.last + 1 + int64(i), Position: g.next + uint64(i), Created: created}
	}
	t := &tx{g: g, plan: op.plan}
	for _, p := range op.projections {
		if err := runProjection(r.ctx, p, t, recorded); err != nil {
			t.closed = true
			r.err = err
			answer(g, false)
			return
		}
	}
	t.closed = true
	if op.plan != nil {
		op.plan.Position, op.plan.Version, op.planned = g.next, h.last+1, true
		answer(g, false)
		return
	}
	op.result, r.err = g.write(a.Stream, h, a.Events)
	answer(g, true)
}

func runProjection(ctx context.Context, p cairn.Projection, t *tx, events []cairn.Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("diskstore: projection panicked: %v", v)
		}
	}()
	return p(ctx, t, events)
}
