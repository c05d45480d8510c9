package diskstore

import (
	"context"
	"errors"
	"math"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
)

// reader reads events: the runs of a stream, or the runs of the log in
// position order (through their locators), and their records in the log.
type reader struct {
	ctx  context.Context
	runs *runIter         // the stream's runs
	locs *pebble.Iterator // or the locators
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
func newReader(ctx context.Context, r index, lg *seglog.Log, stream string) (*reader, error) {
	rd := &reader{ctx: ctx, maxBytes: math.MaxInt}
	var err error
	if stream != "" {
		rd.runs, err = newRunIter(r, stream)
	} else {
		rd.locs, err = r.NewIter(&locatorBounds)
	}
	if err != nil {
		return nil, wrapErr(err)
	}
	if stream != "" {
		rd.lr = lg.NewGrowingReader()
	} else {
		rd.lr = lg.NewReader()
	}
	return rd, nil
}

func (rd *reader) close(err error) error {
	rd.lr.Release()
	if rd.runs != nil {
		err = errors.Join(err, rd.runs.close())
	} else {
		err = errors.Join(err, rd.locs.Error(), rd.locs.Close())
	}
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

// current decodes the locator under the locators iterator.
func (rd *reader) current() (run, error) {
	return decodeRun(rd.locs.Key(), rd.locs.Value())
}

// runAt positions the runs iterator at the run holding version v.
func (rd *reader) runAt(v int64) (run, bool, error) {
	rn, ok, err := rd.runs.seek(v)
	if err != nil || !ok {
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
	rn, ok, err := rd.runAt(from)
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
		if !rd.room(out, count) || from > last {
			break // done: the next run is not needed
		}
		var more bool
		if rn, more, err = rd.runs.next(); err != nil {
			return out, err
		}
		if !more {
			break
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
		rn, ok, err := rd.runAt(from)
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
	valid := rd.locs.SeekLT(locatorKey(pos + 1))
	if valid {
		rn, err := rd.current()
		if err != nil || dir == cairn.Backward || pos < rn.pos+uint64(rn.count) {
			return rn, err == nil, err
		}
		valid = rd.locs.Next()
	} else if dir == cairn.Forward {
		valid = rd.locs.First()
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
func recordedFrom(r index, lg *seglog.Log, pos uint64, n int) ([]cairn.Event, error) {
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

func step(it *pebble.Iterator, dir cairn.Direction) bool {
	if dir == cairn.Forward {
		return it.Next()
	}
	return it.Prev()
}
