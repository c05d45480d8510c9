package diskstore

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// indexWrites collects the index writes of a group, to be added to its
// batch in key order once the group is complete (writeGroup).
//
// Pebble inserts a batch into its memtable (a skiplist) in the batch's
// order, and starts the search for each key's place from where the key
// before went. A group written in the order its appends came (a run
// record, then a retry record, for each) sent every insertion into
// another part of the memtable, to search from the top; in key order,
// the retry records (time-ordered IDs) follow one another at the end of
// theirs, and the runs of the group's streams are found from their
// neighbours. That search was most of the committer's work under many
// writers.
//
// The order of a batch's writes to different keys changes nothing in what
// it writes; writes to the same key keep their order, so the last one
// wins as before.
type indexWrites struct {
	buf  []byte       // the keys and values, one after the other
	recs []indexWrite // in the order they were made, then sorted
}

// indexWrite is one write: its key at buf[off:off+klen], its value (for a
// set) after it.
type indexWrite struct {
	off, klen, vlen uint32
	del             bool
}

// maxKeptWrites bounds the buffer the committer keeps for the next group.
const maxKeptWrites = 4 << 20

func (w *indexWrites) reset() {
	if cap(w.buf) > maxKeptWrites {
		w.buf = nil
	}
	w.buf, w.recs = w.buf[:0], w.recs[:0]
}

func (w *indexWrites) add(key, value []byte, del bool) {
	w.recs = append(w.recs, indexWrite{off: uint32(len(w.buf)), klen: uint32(len(key)), vlen: uint32(len(value)), del: del})
	w.buf = append(append(w.buf, key...), value...)
}

func (w *indexWrites) key(r *indexWrite) []byte { return w.buf[r.off : r.off+r.klen] }

// apply adds the writes to b in key order, and empties w.
func (w *indexWrites) apply(b *pebble.Batch) error {
	// Writes to the same key keep their order: the one made first is
	// earlier in buf.
	slices.SortFunc(w.recs, func(x, y indexWrite) int {
		if c := bytes.Compare(w.key(&x), w.key(&y)); c != 0 {
			return c
		}
		return cmp.Compare(x.off, y.off)
	})
	for i := range w.recs {
		r := &w.recs[i]
		k := w.key(r)
		if r.del {
			if err := b.Delete(k, nil); err != nil {
				return err
			}
			continue
		}
		op := b.SetDeferred(int(r.klen), int(r.vlen))
		copy(op.Key, k)
		copy(op.Value, w.buf[r.off+r.klen:][:r.vlen])
		if err := op.Finish(); err != nil {
			return err
		}
	}
	w.reset()
	return nil
}
