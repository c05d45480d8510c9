package diskstore

import (
	"context"
	"errors"
	"slices"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
)

// The read API of the index: lists by key (cairn.IndexReader) and queries
// (cairn.Querier). Both read the lists' blocks (lists.go) in a read view,
// then the events the entries file, each from its own record in the log:
// their cost grows with the entries read, not with the log.

// indexRead is the state of one read of the index in a view.
type indexRead struct {
	ctx  context.Context
	snap pebble.Reader
	lr   seglog.Reader
	sc   strCache
	live *liveness
	open []*listCursor
	blk  block
}

func (d *DB) newIndexRead(ctx context.Context, snap pebble.Reader) (*indexRead, error) {
	// Read after the view was acquired: a view that holds a compaction's
	// removals was published after cut was set.
	live, err := newLiveness(snap, d.cut.Load())
	if err != nil {
		return nil, err
	}
	return &indexRead{ctx: ctx, snap: snap, lr: d.log.NewSparseReader(), live: live}, nil
}

// list opens a cursor over the list key, closed with the read.
func (r *indexRead) list(key cairn.IndexKey) (*listCursor, error) {
	c, err := openList(r.snap, key)
	if err == nil {
		r.open = append(r.open, c)
	}
	return c, err
}

// length returns the number of entries of the list key.
func (r *indexRead) length(key cairn.IndexKey) (uint64, error) { return listLen(r.snap, key, &r.blk) }

// close releases what the read holds, and returns err or the first error
// of closing it.
func (r *indexRead) close(err error) error {
	r.lr.Release()
	errs := []error{err, r.live.close()}
	for _, c := range r.open {
		errs = append(errs, c.close())
	}
	return errors.Join(errs...)
}

// ReadIndex implements [cairn.IndexReader]. An entry whose event compaction
// removed is returned with Found false.
func (d *DB) ReadIndex(ctx context.Context, key cairn.IndexKey, from int64, count int, dir cairn.Direction) ([]cairn.IndexedEvent, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer d.releaseView(v)
	if count <= 0 {
		return nil, nil
	}
	r, err := d.newIndexRead(ctx, v.snap)
	if err != nil {
		return nil, err
	}
	out, err := r.readIndex(key, from, count, dir)
	if err = r.close(err); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *indexRead) readIndex(key cairn.IndexKey, from int64, count int, dir cairn.Direction) ([]cairn.IndexedEvent, error) {
	c, err := r.list(key)
	if err != nil {
		return nil, err
	}
	var ok bool
	switch {
	case dir == cairn.Backward && from < 0:
		ok = c.last()
	default:
		ok = c.seekNumber(uint64(max(from, 0)), dir)
	}
	out := make([]cairn.IndexedEvent, 0, min(count, 512))
	for ; ok && len(out) < count; ok = c.step(dir) {
		e := cairn.IndexedEvent{Number: int64(c.number()), Position: c.pos()}
		if e.Found, err = r.live.live(e.Position); err != nil {
			return nil, err
		}
		if e.Found {
			if e.Event, err = c.event(&r.lr, &r.sc, r.live.locator()); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
		if err := checkCtx(r.ctx, len(out)); err != nil {
			return nil, err
		}
	}
	return out, c.err
}

// ReadQuery implements [cairn.Querier]. A query that matches every event
// reads the log (ReadAll). Otherwise it reads, for each item, the lists
// that itemLists chooses (the list of one of its tags, or those of its
// types, whichever hold fewer entries), merged in position order from
// from, and returns the events of their entries that are still in the log
// and match the query.
func (d *DB) ReadQuery(ctx context.Context, q cairn.Query, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	if q.All() {
		return d.ReadAll(ctx, from, count, dir)
	}
	v, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer d.releaseView(v)
	if count <= 0 || v.next == 0 || (dir == cairn.Forward && from >= v.next) {
		return nil, nil
	}
	if dir == cairn.Backward {
		from = min(from, v.next-1)
	}
	r, err := d.newIndexRead(ctx, v.snap)
	if err != nil {
		return nil, err
	}
	out := make([]cairn.Event, 0, min(count, 256))
	err = r.query(q, from, dir, func(e cairn.Event) bool {
		out = append(out, e)
		return len(out) < count
	})
	if err = r.close(err); err != nil {
		return nil, err
	}
	return out, nil
}

// queryLists returns the keys of the lists to read for q, which does not
// match every event: those itemLists chooses for each item, each once.
func queryLists(q cairn.Query, length func(cairn.IndexKey) (uint64, error)) ([]cairn.IndexKey, error) {
	var keys []cairn.IndexKey
	for _, it := range q.Items {
		ks, err := itemLists(it, length)
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

// query calls fn with the events of the log that match q (which does not
// match every event), from position from in direction dir, until fn
// returns false.
func (r *indexRead) query(q cairn.Query, from uint64, dir cairn.Direction, fn func(cairn.Event) bool) error {
	keys, err := queryLists(q, r.length)
	if err != nil {
		return err
	}
	var cursors []*listCursor
	for _, k := range keys {
		c, err := r.list(k)
		if err != nil {
			return err
		}
		if c.seekPos(from, dir) {
			cursors = append(cursors, c)
		} else if c.err != nil {
			return c.err
		}
	}
	// A merge of the lists in direction dir; an event in several of them
	// is read once.
	for n := 0; len(cursors) > 0; n++ {
		best := cursors[0]
		for _, c := range cursors[1:] {
			if p := c.pos(); (dir == cairn.Forward && p < best.pos()) || (dir == cairn.Backward && p > best.pos()) {
				best = c
			}
		}
		pos := best.pos()
		live, err := r.live.live(pos)
		if err != nil {
			return err
		}
		if live {
			e, err := best.event(&r.lr, &r.sc, r.live.locator())
			if err != nil {
				return err
			}
			if q.Matches(&e) && !fn(e) {
				return nil
			}
		}
		kept := cursors[:0]
		for _, c := range cursors {
			if c.pos() == pos && !c.step(dir) {
				if c.err != nil {
					return c.err
				}
				continue
			}
			kept = append(kept, c)
		}
		cursors = kept
		if err := checkCtx(r.ctx, n); err != nil {
			return err
		}
	}
	return nil
}
