package diskstore

import (
	"context"
	"errors"
	"math"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
)

// ReadStream implements [cairn.Backend].
func (d *DB) ReadStream(ctx context.Context, stream string, from int64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return d.ReadStreamSized(ctx, stream, from, count, math.MaxInt, dir)
}

// ReadStreamSized implements [cairn.SizedReader].
func (d *DB) ReadStreamSized(ctx context.Context, stream string, from int64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer d.releaseView(v)
	m, last, err := streamState(v.index(), "read", stream)
	if err != nil {
		return nil, err
	}
	rd, err := newReader(ctx, v.index(), d.log, stream)
	if err != nil {
		return nil, err
	}
	rd.maxBytes = maxBytes
	out := make([]cairn.Event, 0, min(count, 512))
	if dir == cairn.Forward {
		out, err = rd.forward(stream, max(from, m.before), last, count, out, false)
	} else {
		if from == cairn.StreamEnd || from > last {
			from = last
		}
		out, err = rd.backward(stream, from, m.before, count, out)
	}
	if err = rd.close(err); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadAll implements [cairn.Backend].
func (d *DB) ReadAll(ctx context.Context, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return d.ReadAllSized(ctx, from, count, math.MaxInt, dir)
}

// ReadAllSized implements [cairn.SizedReader].
func (d *DB) ReadAllSized(ctx context.Context, from uint64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer d.releaseView(v)
	if v.next == 0 || (dir == cairn.Forward && from >= v.next) {
		return nil, nil
	}
	rd, err := newReader(ctx, v.index(), d.log, "")
	if err != nil {
		return nil, err
	}
	rd.maxBytes = maxBytes
	out := make([]cairn.Event, 0, min(count, 512))
	if dir == cairn.Backward {
		from = min(from, v.next-1)
	}
	rn, ok, err := rd.locate(from, dir)
	for ok && err == nil && rd.room(out, count) {
		if err = rd.load(rn); err != nil {
			break
		}
		if dir == cairn.Forward {
			for i := int64(max(from, rn.pos) - rn.pos); i < rn.count && rd.room(out, count) && rn.pos+uint64(i) < v.next; i++ {
				var e cairn.Event
				if e, err = rd.event(rn, i); err != nil {
					break
				}
				out = rd.add(out, e)
			}
		} else {
			for i := int64(min(from, rn.pos+uint64(rn.count)-1) - rn.pos); i >= 0 && rd.room(out, count); i-- {
				var e cairn.Event
				if e, err = rd.event(rn, i); err != nil {
					break
				}
				out = rd.add(out, e)
			}
		}
		if err != nil {
			break
		}
		if err = ctx.Err(); err != nil {
			break
		}
		if !step(rd.locs, dir) {
			break
		}
		rn, err = rd.current()
		if rn.pos >= v.next {
			break
		}
	}
	if err := rd.close(err); err != nil {
		return nil, err
	}
	return out, nil
}

// StreamVersion implements [cairn.Backend].
func (d *DB) StreamVersion(ctx context.Context, stream string) (int64, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer d.releaseView(v)
	_, last, err := streamState(v.index(), "stream version of", stream)
	return last, err
}

// StreamExists implements [cairn.Backend].
func (d *DB) StreamExists(ctx context.Context, stream string) (bool, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer d.releaseView(v)
	h, err := loadHead(v.index(), stream)
	if err != nil {
		return false, err
	}
	return h.current() >= 0, nil
}

// HasEvents implements [cairn.Backend]: whether the log holds any event
// that compaction has not removed.
func (d *DB) HasEvents(ctx context.Context) (bool, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer d.releaseView(v)
	it, err := v.snap.NewIter(&locatorBounds)
	if err != nil {
		return false, wrapErr(err)
	}
	ok := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return false, wrapErr(err)
	}
	return ok, nil
}

// ListStreams implements [cairn.Backend].
func (d *DB) ListStreams(ctx context.Context, after string, limit int) ([]string, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer d.releaseView(v)
	lower := metaKey(after)
	if after != "" {
		lower = append(lower, 0)
	}
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{prefixMeta + 1}})
	if err != nil {
		return nil, wrapErr(err)
	}
	var out []string
	for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
		m, err := decodeMeta(it.Key(), it.Value())
		if err != nil {
			return nil, errors.Join(err, it.Close())
		}
		if m.flags&(flagDeleted|flagTombstoned) == 0 {
			out = append(out, string(it.Key()[1:]))
		}
		if len(out)%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, errors.Join(err, it.Close())
			}
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, wrapErr(err)
	}
	return out, nil
}

// GetSnapshot implements [cairn.Snapshotter].
func (d *DB) GetSnapshot(ctx context.Context, stream string, min, max int64) (cairn.Snapshot, bool, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return cairn.Snapshot{}, false, err
	}
	defer d.releaseView(v)
	k := snapshotKey(stream)
	val, closer, err := v.snap.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return cairn.Snapshot{}, false, nil
	}
	if err != nil {
		return cairn.Snapshot{}, false, wrapErr(err)
	}
	defer closer.Close()
	s, err := decodeSnapshot(k, val, stream)
	if err != nil {
		return cairn.Snapshot{}, false, err
	}
	if s.Version <= min || s.Version > max {
		return cairn.Snapshot{}, false, nil
	}
	return s, true, nil
}

// ReadModelGet implements [cairn.ReadModelReader].
func (d *DB) ReadModelGet(ctx context.Context, table, key string) ([]byte, bool, error) {
	if err := checkEntry(table, key); err != nil {
		return nil, false, err
	}
	v, err := d.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer d.releaseView(v)
	k := tableKey(table, key)
	val, closer, err := v.snap.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrapErr(err)
	}
	defer closer.Close()
	p, err := unseal(k, val)
	if err != nil {
		return nil, false, err
	}
	return append([]byte{}, p...), true, nil
}

// ReadModelScan implements [cairn.ReadModelReader].
func (d *DB) ReadModelScan(ctx context.Context, table, prefix, after string, limit int) ([]cairn.Entry, error) {
	if err := cairn.ValidateScan(table, prefix, after); err != nil {
		return nil, err
	}
	v, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer d.releaseView(v)
	tp := streamPrefix(prefixTable, table)
	lower := tableKey(table, prefix)
	// Keys sort strictly after after; for after = "" that skips only the
	// empty key, which no write makes (cairn.ValidateKey).
	if a := append(tableKey(table, after), 0); string(a) > string(lower) {
		lower = a
	}
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(tableKey(table, prefix))})
	if err != nil {
		return nil, wrapErr(err)
	}
	var out []cairn.Entry
	for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
		key := string(it.Key()[len(tp):])
		if cairn.ValidateKey(key) != nil {
			// Written before keys were checked: no Get could read it,
			// and a scan could not resume after it.
			continue
		}
		p, err := unseal(it.Key(), it.Value())
		if err != nil {
			return nil, errors.Join(err, it.Close())
		}
		out = append(out, cairn.Entry{Key: key, Value: append([]byte{}, p...)})
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, wrapErr(err)
	}
	return out, nil
}
