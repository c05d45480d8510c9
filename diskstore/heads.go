package diskstore

import (
	"errors"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
)

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
	h, err := loadHead(d.committed(), stream)
	if err != nil {
		return nil, err
	}
	d.heads[stream] = h
	return h, nil
}

// evictHeads forgets about half of the cached heads when there are too many.
func (d *DB) evictHeads() {
	d.lists.evict(d.opts.MaxCachedStreams)
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

func loadHead(r index, stream string) (*head, error) {
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

func lastRun(r index, stream string) (run, bool, error) {
	if rs := r.mem.of(stream); len(rs) > 0 {
		return rs[len(rs)-1], true, nil
	}
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
func streamState(r index, op, stream string) (meta, int64, error) {
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
