package diskstore

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
)

func timeMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// head is what the writer knows of a stream.
type head struct {
	last   int64 // version of the last event ever appended, -1 for none
	meta   meta
	stored bool // the meta record exists
}

// current is the version expectations are checked against.
func (h *head) current() int64 {
	if h.meta.flags&(flagDeleted|flagTombstoned) != 0 {
		return -1
	}
	return h.last
}

// head returns the cached head of stream, loading it from the database.
// Only the committer calls it.
func (d *DB) head(stream string) (*head, error) {
	if h, ok := d.heads[stream]; ok {
		return h, nil
	}
	h, err := loadHead(d.pdb, stream)
	if err != nil {
		return nil, err
	}
	d.heads[stream] = h
	return h, nil
}

// evictHeads forgets about half of the cached heads when there are too many.
func (d *DB) evictHeads() {
	if len(d.heads) <= d.opts.MaxCachedStreams {
		return
	}
	n := len(d.heads) / 2
	for k := range d.heads {
		delete(d.heads, k)
		if n--; n == 0 {
			return
		}
	}
}

func loadHead(r pebble.Reader, stream string) (*head, error) {
	h := &head{last: -1}
	m, ok, err := loadMeta(r, stream)
	if err != nil {
		return nil, err
	}
	h.meta, h.stored = m, ok
	rn, ok, err := lastRun(r, stream)
	if err != nil {
		return nil, err
	}
	if ok {
		h.last = rn.last()
	}
	return h, nil
}

func loadMeta(r pebble.Reader, stream string) (meta, bool, error) {
	k := metaKey(stream)
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return meta{}, false, nil
	}
	if err != nil {
		return meta{}, false, wrapErr(err)
	}
	defer closer.Close()
	m, err := decodeMeta(k, v)
	return m, err == nil, err
}

func runBounds(stream string) *pebble.IterOptions {
	p := streamPrefix(prefixRun, stream)
	return &pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)}
}

func lastRun(r pebble.Reader, stream string) (run, bool, error) {
	it, err := r.NewIter(runBounds(stream))
	if err != nil {
		return run{}, false, wrapErr(err)
	}
	var rn run
	ok := it.Last()
	if ok {
		rn, err = decodeRun(it.Key(), it.Value())
	}
	if err = errors.Join(err, it.Error(), it.Close()); err != nil {
		return run{}, false, wrapErr(err)
	}
	return rn, ok, nil
}

// streamState returns the meta and last version of a readable stream, or the
// error for one that is not (op names the operation in the error).
func streamState(r pebble.Reader, op, stream string) (meta, int64, error) {
	h, err := loadHead(r, stream)
	if err != nil {
		return meta{}, 0, err
	}
	switch {
	case h.meta.flags&flagTombstoned != 0:
		return meta{}, 0, cairn.Deleted(op, stream)
	case h.current() < 0:
		return meta{}, 0, cairn.NotFound(op, stream)
	}
	return h.meta, h.last, nil
}

// reader reads events: the runs of a stream, or the runs of the log in
// position order (through their locators), and their records in the log.
type reader struct {
	ctx  context.Context
	runs *pebble.Iterator // the stream's runs, or the locators
	lr   seglog.Reader
	vals [][]byte
	sc   strCache
	key  [9]byte // the key an event's checksum covers
	// bytes counts the data and metadata read; a read stops after the
	// event that brings it to maxBytes (cairn.SizedReader).
	bytes, maxBytes int
}

// add appends e to out and counts its bytes.
func (rd *reader) add(out []cairn.Event, e cairn.Event) []cairn.Event {
	rd.bytes += cairn.EventBytes(e)
	return append(out, e)
}

// room reports whether a read of at most count events may add to out.
func (rd *reader) room(out []cairn.Event, count int) bool {
	return len(out) < count && rd.bytes < rd.maxBytes
}

// newReader returns a reader of stream's runs, or of the locators when
// stream is empty.
func newReader(ctx context.Context, r pebble.Reader, lg *seglog.Log, stream string) (*reader, error) {
	rd := &reader{ctx: ctx, lr: lg.NewReader(), maxBytes: math.MaxInt}
	opts := &locatorBounds
	if stream != "" {
		opts = runBounds(stream)
	}
	var err error
	if rd.runs, err = r.NewIter(opts); err != nil {
		return nil, wrapErr(err)
	}
	return rd, nil
}

func (rd *reader) close(err error) error {
	rd.lr.Release()
	err = errors.Join(err, rd.runs.Error(), rd.runs.Close())
	return wrapErr(err)
}

// load reads the records of rn from the log into rd.vals.
func (rd *reader) load(rn run) error {
	p, err := rd.lr.Read(rn.seg, rn.off, int(rn.bytes))
	if err != nil {
		return err
	}
	var ok bool
	rd.vals, ok = seglog.Records(p, rd.vals[:0])
	if !ok || int64(len(rd.vals)) != rn.count {
		return corruptf(eventKey(rn.pos), "log segment %d offset %d: malformed records of %d events", rn.seg, rn.off, rn.count)
	}
	return nil
}

// event decodes the i-th event of the run loaded last.
func (rd *reader) event(rn run, i int64) (cairn.Event, error) {
	pos := rn.pos + uint64(i)
	putEventKey(rd.key[:], pos)
	return decodeEvent(rd.key[:], rd.vals[i], pos, &rd.sc)
}

// streamEvent is event, checked to be the given version of stream.
func (rd *reader) streamEvent(stream string, rn run, v int64) (cairn.Event, error) {
	e, err := rd.event(rn, v-rn.first)
	if err == nil && (e.StreamID != stream || e.Version != v) {
		err = corruptf(eventKey(e.Position), "event of %q version %d holds %q version %d", stream, v, e.StreamID, e.Version)
	}
	return e, err
}

// current decodes the run under the runs iterator.
func (rd *reader) current() (run, error) {
	return decodeRun(rd.runs.Key(), rd.runs.Value())
}

// runAt positions the runs iterator at the run holding version v.
func (rd *reader) runAt(stream string, v int64) (run, bool, error) {
	if !rd.runs.SeekLT(runKey(stream, v+1)) {
		return run{}, false, nil
	}
	rn, err := rd.current()
	if err != nil {
		return run{}, false, err
	}
	return rn, v <= rn.last(), nil
}

// forward appends to out the events of stream from version from to last, at
// most count in all. lenient stops quietly at the first missing event.
func (rd *reader) forward(stream string, from, last int64, count int, out []cairn.Event, lenient bool) ([]cairn.Event, error) {
	if from > last {
		return out, nil
	}
	rn, ok, err := rd.runAt(stream, from)
	if err != nil {
		return out, err
	}
	for ok && rd.room(out, count) && from <= last {
		end := min(rn.last(), last)
		if err := rd.load(rn); err != nil {
			if lenient {
				return out, nil
			}
			return out, err
		}
		for ; from <= end && rd.room(out, count); from++ {
			e, err := rd.streamEvent(stream, rn, from)
			if err != nil {
				if lenient {
					return out, nil
				}
				return out, err
			}
			out = rd.add(out, e)
		}
		if err := rd.ctx.Err(); err != nil {
			return out, err
		}
		if !rd.runs.Next() {
			break
		}
		if rn, err = rd.current(); err != nil {
			return out, err
		}
		ok = rn.first == from
	}
	if !lenient && rd.room(out, count) && from <= last {
		return out, corruptf(runKey(stream, from), "run of %q version %d missing", stream, from)
	}
	return out, nil
}

// backward appends to out the events of stream from version from down to
// stop, at most count in all.
func (rd *reader) backward(stream string, from, stop int64, count int, out []cairn.Event) ([]cairn.Event, error) {
	for from >= stop && rd.room(out, count) {
		rn, ok, err := rd.runAt(stream, from)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, corruptf(runKey(stream, from), "run of %q version %d missing", stream, from)
		}
		if err := rd.load(rn); err != nil {
			return out, err
		}
		lo := max(rn.first, stop)
		for ; from >= lo && rd.room(out, count); from-- {
			e, err := rd.streamEvent(stream, rn, from)
			if err != nil {
				return out, err
			}
			out = rd.add(out, e)
		}
		if err := rd.ctx.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// locate positions the locators iterator at the run holding position pos,
// or (forward) the first run after it, or (backward) the last before it.
func (rd *reader) locate(pos uint64, dir cairn.Direction) (run, bool, error) {
	valid := rd.runs.SeekLT(locatorKey(pos + 1))
	if valid {
		rn, err := rd.current()
		if err != nil || dir == cairn.Backward || pos < rn.pos+uint64(rn.count) {
			return rn, err == nil, err
		}
		valid = rd.runs.Next()
	} else if dir == cairn.Forward {
		valid = rd.runs.First()
	}
	if !valid {
		return run{}, false, nil
	}
	rn, err := rd.current()
	return rn, err == nil, err
}

// recordedFrom returns up to n events of the stream of the event at pos,
// from that event's version on: what cairn.RetryResult compares a repeated
// append with. Events removed by compaction are missing from the result.
func recordedFrom(r pebble.Reader, lg *seglog.Log, pos uint64, n int) ([]cairn.Event, error) {
	rd, err := newReader(context.Background(), r, lg, "")
	if err != nil {
		return nil, err
	}
	rn, ok, err := rd.locate(pos, cairn.Forward)
	if err == nil && ok && rn.pos <= pos {
		err = rd.load(rn)
	} else {
		ok = false
	}
	var first cairn.Event
	if err == nil && ok {
		first, err = rd.event(rn, int64(pos-rn.pos))
	}
	if err = rd.close(err); err != nil || !ok {
		return nil, err
	}
	if rd, err = newReader(context.Background(), r, lg, first.StreamID); err != nil {
		return nil, err
	}
	out, err := rd.forward(first.StreamID, first.Version, first.Version+int64(n)-1, n, nil, true)
	return out, rd.close(err)
}

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
	m, last, err := streamState(v.snap, "read", stream)
	if err != nil {
		return nil, err
	}
	rd, err := newReader(ctx, v.snap, d.log, stream)
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
	rd, err := newReader(ctx, v.snap, d.log, "")
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
		if !step(rd.runs, dir) {
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

func step(it *pebble.Iterator, dir cairn.Direction) bool {
	if dir == cairn.Forward {
		return it.Next()
	}
	return it.Prev()
}

// StreamVersion implements [cairn.Backend].
func (d *DB) StreamVersion(ctx context.Context, stream string) (int64, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer d.releaseView(v)
	_, last, err := streamState(v.snap, "stream version of", stream)
	return last, err
}

// StreamExists implements [cairn.Backend].
func (d *DB) StreamExists(ctx context.Context, stream string) (bool, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer d.releaseView(v)
	h, err := loadHead(v.snap, stream)
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
	if err := checkTable(table); err != nil {
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
	if err := checkTable(table); err != nil {
		return nil, err
	}
	v, err := d.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer d.releaseView(v)
	tp := streamPrefix(prefixTable, table)
	lower := tableKey(table, prefix)
	if a := append(tableKey(table, after), 0); after != "" && string(a) > string(lower) {
		lower = a
	}
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(tableKey(table, prefix))})
	if err != nil {
		return nil, wrapErr(err)
	}
	var out []cairn.Entry
	for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
		p, err := unseal(it.Key(), it.Value())
		if err != nil {
			return nil, errors.Join(err, it.Close())
		}
		out = append(out, cairn.Entry{Key: string(it.Key()[len(tp):]), Value: append([]byte{}, p...)})
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, wrapErr(err)
	}
	return out, nil
}
