package diskstore

import (
	"errors"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
)

// Filing: how the index of categories, types and tags is written.
//
// Every event is filed under the keys cairn.IndexKeys gives for it, in the
// same frame as the event: the frame's index writes hold, for each key its
// events are filed under, one block (records.go) listing them, numbered
// after the last entry of the key's list. A reader that sees an event
// therefore sees its entries, a crash keeps both or neither (Open replays
// the frame's index writes with the rest), and a write that fails files
// nothing. The numbers of a list start at 0 and follow the positions of its
// events without gaps, since frames are written in position order and each
// numbers its entries after those before.
//
// One block per key per frame, not an entry per event: a group of 64
// single-event appends of one type to streams of one category adds two
// pebble records to the memtable, not 128, and an append of 1000 events
// adds one per key. Within a block, entries at consecutive positions whose
// records follow one another in the log form a run, stored once.
//
// The committer keeps the length and last position of the lists it wrote
// recently (listHeads), so that numbering an entry reads nothing, and
// an append condition on a list whose last entry is before its After
// reads nothing either (condition.go). Open replays and rebuilds with the
// same code (migrate.go).

// listHead is what the committer knows of a list: its length, and the
// position of its last entry.
type listHead struct {
	next uint64 // the number of entries: the number of the next one
	last uint64 // the position of the last entry, when next > 0
}

// listHeads caches the heads of lists, loaded from pebble on a miss. It
// is owned by the committer goroutine (and by Open before it starts).
type listHeads struct {
	m   map[cairn.IndexKey]*listHead
	buf []byte
	blk block
}

// get returns the head of the list key, as r holds it when not cached.
// r must hold every frame the cache has seen, and the cache every frame
// applied to r since it was loaded (see filing.settle).
func (h *listHeads) get(r pebble.Reader, key cairn.IndexKey) (*listHead, error) {
	if lh, ok := h.m[key]; ok {
		return lh, nil
	}
	if h.m == nil {
		h.m = map[cairn.IndexKey]*listHead{}
	}
	var lh listHead
	h.buf = appendListPrefix(h.buf[:0], key)
	ok, err := lastBlock(r, h.buf, &h.blk)
	if err != nil {
		return nil, err
	}
	if ok {
		lh = listHead{next: h.blk.end(), last: h.blk.lastPos()}
	}
	p := &lh
	h.m[key] = p
	return p, nil
}

// evict forgets about half of the cached heads when there are more than
// limit. Only between groups: a filing holds pointers to heads.
func (h *listHeads) evict(limit int) {
	if len(h.m) <= limit {
		return
	}
	n := len(h.m) / 2
	for k := range h.m {
		delete(h.m, k)
		if n--; n == 0 {
			return
		}
	}
}

// lastBlock decodes into b the last block of the list whose keys start
// with prefix, and reports whether the list has one.
func lastBlock(r pebble.Reader, prefix []byte, b *block) (bool, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return false, wrapErr(err)
	}
	ok := it.Last()
	if ok {
		err = decodeBlock(it.Key(), it.Value(), b)
	}
	if err = errors.Join(err, it.Error(), it.Close()); err != nil {
		return false, wrapErr(err)
	}
	return ok, nil
}

// pendingList is what one frame files under a key: entries numbered from
// head.next on.
type pendingList struct {
	key  cairn.IndexKey
	head *listHead
	runs []entryRun
	n    uint64 // entries
}

// add files the event at pos, whose record is n bytes at off in the log,
// after the entries before, which are at lower positions.
func (pl *pendingList) add(pos uint64, off, n int64) {
	pl.n++
	if l := len(pl.runs); l > 0 {
		if r := &pl.runs[l-1]; r.end() == pos && r.off+r.bytes == off {
			r.count++
			r.bytes += n
			return
		}
	}
	pl.runs = append(pl.runs, entryRun{pos: pos, count: 1, off: off, bytes: n})
}

// filing collects the entries of one frame, list by list, in the order
// the lists were first met. The committer owns one, reused from group to
// group (as do Open's replay and rebuild).
type filing struct {
	lists map[cairn.IndexKey]*pendingList
	order []*pendingList
	spare []*pendingList
	keys  []cairn.IndexKey
	// last holds, for each place in keys, the list the event before was
	// filed under there: the events of an append mostly share their
	// keys, which are then found without hashing them.
	last  []*pendingList
	key   []byte // reused for encoding keys
	value []byte // and values
}

// reset empties the filing for the next frame.
func (f *filing) reset() {
	for _, pl := range f.order {
		pl.runs, pl.n, pl.head = pl.runs[:0], 0, nil
		f.spare = append(f.spare, pl)
	}
	f.order = f.order[:0]
	clear(f.lists)
	clear(f.last)
}

// file files e, recorded as version of stream at position pos, whose
// record (its length prefix included) is n bytes at off in the frame's
// segment, under its keys. heads gives (and r loads) the lists' heads.
func (f *filing) file(heads *listHeads, r pebble.Reader, stream string, version int64, e *cairn.EventData, pos uint64, off, n int64) error {
	f.keys = cairn.IndexKeys(f.keys[:0], stream, version, e)
	if len(f.last) < len(f.keys) {
		f.last = append(f.last, make([]*pendingList, len(f.keys)-len(f.last))...)
	}
	for i, k := range f.keys {
		pl := f.last[i]
		if pl == nil || pl.key != k {
			if pl = f.lists[k]; pl == nil {
				h, err := heads.get(r, k)
				if err != nil {
					return err
				}
				pl = f.list(k, h)
			}
			f.last[i] = pl
		}
		pl.add(pos, off, n)
	}
	return nil
}

// list starts the entries of key in this frame.
func (f *filing) list(key cairn.IndexKey, h *listHead) *pendingList {
	var pl *pendingList
	if n := len(f.spare); n > 0 {
		pl, f.spare = f.spare[n-1], f.spare[:n-1]
	} else {
		pl = &pendingList{}
	}
	pl.key, pl.head = key, h
	if f.lists == nil {
		f.lists = map[cairn.IndexKey]*pendingList{}
	}
	f.lists[key] = pl
	f.order = append(f.order, pl)
	return pl
}

// write hands set the blocks of the frame, whose events are in segment
// seg: one per list, numbered after the list's head.
func (f *filing) write(seg uint64, set func(key, value []byte) error) error {
	for _, pl := range f.order {
		f.key = appendBlockKey(f.key[:0], pl.key, pl.head.next)
		f.value = appendBlock(f.value[:0], f.key, seg, pl.runs)
		if err := set(f.key, f.value); err != nil {
			return err
		}
	}
	return nil
}

// settle advances the heads of the lists past the frame's entries, once
// its index writes are applied.
func (f *filing) settle() {
	for _, pl := range f.order {
		pl.head.next += pl.n
		pl.head.last = pl.runs[len(pl.runs)-1].end() - 1
	}
}

// blockBytes is about the bytes that the blocks filing an append of n
// events add to a frame's index writes, for sizing its batch: a few keys
// and a run per event at most.
func blockBytes(n int) int { return 16*n + 4*64 }
