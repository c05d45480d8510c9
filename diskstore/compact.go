package diskstore

import (
	"context"
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

// purgeChunk is how many streams one purge step examines.
const purgeChunk = 256

// Compact implements [cairn.Compacter]. It removes the events of deleted,
// tombstoned and truncated streams, in steps of a few hundred streams that
// are committed like writes (each a range deletion per run of events), then
// runs a manual compaction of the whole database so that the space is given
// back to the filesystem. Positions of the remaining events never change and
// positions are never reused.
func (d *DB) Compact(ctx context.Context) error {
	after := ""
	for {
		r := &request{kind: opPurge, stream: after}
		if err := d.submit(ctx, r); err != nil {
			return err
		}
		if r.next == "" {
			break
		}
		after = r.next
	}
	v, err := d.acquire(ctx)
	if err != nil {
		return err
	}
	defer d.releaseView(v)
	if err := d.pdb.Flush(); err != nil {
		return wrapErr(err)
	}
	if err := d.pdb.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		return wrapErr(err)
	}
	// Pebble deletes the files the compaction made obsolete in the
	// background; wait for it, so that DiskBytes shows the space given back
	// when Compact returns.
	d.pdb.TestOnlyWaitForCleaning()
	return nil
}

// purgeStep removes the dead events of up to purgeChunk streams after
// r.stream, and sets r.next to where the next step resumes.
func (d *DB) purgeStep(r *request) {
	fail := func(g *group, err error) {
		r.err = err
		d.handoff(g, false, []*request{r})
	}
	if err := r.ctx.Err(); err != nil {
		fail(nil, err)
		return
	}
	g := d.newGroup(false, 0)
	lower := metaKey(r.stream)
	if r.stream != "" {
		lower = append(lower, 0)
	}
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{prefixMeta + 1}})
	if err != nil {
		fail(g, wrapErr(err))
		return
	}
	var streams []string
	for valid := it.First(); valid && len(streams) < purgeChunk; valid = it.Next() {
		streams = append(streams, string(it.Key()[1:]))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		fail(g, wrapErr(err))
		return
	}
	for _, s := range streams {
		if err := g.purge(s); err != nil {
			fail(g, err)
			return
		}
	}
	if len(streams) == purgeChunk {
		r.next = streams[len(streams)-1]
	}
	// Record the next position, so that it survives the removal of the
	// last events of the log.
	_ = g.b.Set(headKey, encodeUint(headKey, g.next), nil)
	d.handoff(g, true, []*request{r})
	d.renewAnchor()
}

// purge adds to the batch the removal of the dead events of stream.
func (g *group) purge(stream string) error {
	h, err := g.d.head(stream)
	if err != nil {
		return err
	}
	tomb := h.meta.flags&flagTombstoned != 0
	target := min(h.meta.before, h.last+1)
	if tomb {
		target = h.last + 1
		_ = g.b.Delete(snapshotKey(stream), nil)
	}
	from := h.meta.purged
	if target <= from {
		return nil
	}
	it, err := g.d.pdb.NewIter(runBounds(stream))
	if err != nil {
		return wrapErr(err)
	}
	valid := it.SeekLT(runKey(stream, from+1))
	if !valid {
		valid = it.First()
	}
	for ; valid; valid = it.Next() {
		rn, err := decodeRun(it.Key(), it.Value())
		if err != nil {
			return errors.Join(err, it.Close())
		}
		if rn.first >= target {
			break
		}
		lo, hi := max(rn.first, from), min(rn.last()+1, target)
		if lo >= hi {
			continue
		}
		_ = g.b.DeleteRange(eventKey(rn.pos+uint64(lo-rn.first)), eventKey(rn.pos+uint64(hi-rn.first)), nil)
		if lo == rn.first {
			// The append's first event goes: so does its retry record.
			if err := g.dropID(rn.pos); err != nil {
				return errors.Join(err, it.Close())
			}
		}
		// Keep the stream's last run, which says where its versions
		// continue, unless the stream can never be written again.
		if hi == rn.last()+1 && (tomb || rn.last() < h.last) {
			_ = g.b.Delete(it.Key(), nil)
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return wrapErr(err)
	}
	h.meta.purged = target
	g.putMeta(stream, h)
	return nil
}

// dropID deletes the retry record of the append whose first event is at pos.
func (g *group) dropID(pos uint64) error {
	k := eventKey(pos)
	v, closer, err := g.d.pdb.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return wrapErr(err)
	}
	defer closer.Close()
	var sc strCache
	e, err := decodeEvent(k, v, pos, &sc)
	if err != nil {
		return err
	}
	_ = g.b.Delete(idKey(e.ID), nil)
	return nil
}
