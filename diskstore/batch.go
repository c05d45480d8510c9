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
//
// The keys of each kind begin with their own byte (format.go), so the
// writes are first counted out by that byte, which costs no comparison
// of keys, and only then is each kind sorted, unless its writes came in
// order already. The retry records of the Store's own event IDs
// (time-ordered) mostly do: sorted with the runs, as before, they took
// more than half of the comparisons of the sort.
type indexWrites struct {
	buf    []byte       // the keys and values, one after the other
	recs   []indexWrite // in the order they were made
	sorted []indexWrite // recs by their first byte, then sorted (apply)
}

// indexWrite is one write: its key at buf[off:off+klen], its value (for a
// set) after it.
type indexWrite struct {
	off, klen, vlen uint32
	del             bool
	kind            byte // the key's first byte
}

// maxKeptWrites bounds the buffer the committer keeps for the next group.
const maxKeptWrites = 4 << 20

func (w *indexWrites) reset() {
	if cap(w.buf) > maxKeptWrites {
		w.buf = nil
	}
	if cap(w.recs) > maxKeptWrites/32 {
		w.recs, w.sorted = nil, nil
	}
	w.buf, w.recs, w.sorted = w.buf[:0], w.recs[:0], w.sorted[:0]
}

func (w *indexWrites) add(key, value []byte, del bool) {
	var kind byte
	if len(key) > 0 {
		kind = key[0]
	}
	w.recs = append(w.recs, indexWrite{off: uint32(len(w.buf)), klen: uint32(len(key)), vlen: uint32(len(value)), del: del, kind: kind})
	w.buf = append(append(w.buf, key...), value...)
}

func (w *indexWrites) key(r *indexWrite) []byte { return w.buf[r.off : r.off+r.klen] }

// apply adds the writes to b in key order, and empties w.
func (w *indexWrites) apply(b *pebble.Batch) error {
	for i := range w.sort() {
		r := &w.sorted[i]
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

// sort puts the writes in w.sorted in key order, writes to the same key
// in the order they were made (the one made first is earlier in buf), and
// returns how many there are.
func (w *indexWrites) sort() int {
	// Counted out by their first byte, in the order they were made.
	var start [257]int
	for i := range w.recs {
		start[int(w.recs[i].kind)+1]++
	}
	for k := 1; k < len(start); k++ {
		start[k] += start[k-1]
	}
	w.sorted = slices.Grow(w.sorted[:0], len(w.recs))[:len(w.recs)]
	at := start
	for _, r := range w.recs {
		w.sorted[at[r.kind]] = r
		at[r.kind]++
	}
	// Each kind in key order, unless it is already.
	compare := func(x, y indexWrite) int {
		if c := bytes.Compare(w.key(&x), w.key(&y)); c != 0 {
			return c
		}
		return cmp.Compare(x.off, y.off)
	}
	for lo := 0; lo < len(w.sorted); {
		kind := w.sorted[lo].kind
		hi := start[int(kind)+1]
		if part := w.sorted[lo:hi]; !slices.IsSortedFunc(part, compare) {
			slices.SortFunc(part, compare)
		}
		lo = hi
	}
	return len(w.sorted)
}
