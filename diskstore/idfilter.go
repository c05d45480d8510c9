package diskstore

import (
	"errors"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// idFilter is a Bloom filter of the first event IDs that have a retry
// record, which spares the committer the index lookup of an ID at or
// below the floor of its recent IDs (recentids.go) that was never
// recorded: the case of every new ID that clients make at random (UUIDv4,
// as the official KurrentDB clients do), which the floor cannot tell from
// the recorded ones. A lookup cost the committer 2–4 µs per append under
// the wire workloads, and the filter's answer a few nanoseconds.
//
// It is blocked: an ID's bits all lie in one block of 512 bits, one bit in
// each of its eight words, so that adding or testing an ID touches one
// cache line. At about ten bits per ID it answers "may be recorded" for
// about one ID in a hundred that is not, which then goes to the index as
// before; it never answers "not recorded" for an ID it was given.
//
// A filter is built from a snapshot of the index by a goroutine of its
// own (DB.buildIDFilter), while the committer adds the IDs it notes
// meanwhile; it is used once the snapshot is read (ready). Its words are
// set with atomic operations, which the builder and the committer share.
type idFilter struct {
	words []atomic.Uint64
	// blocks-1: the number of blocks is a power of two.
	mask uint64
	// ready is set once every ID recorded before the filter was
	// registered has been added (by its builder).
	ready atomic.Bool
	// capacity is the number of IDs the filter is sized for; added
	// counts those given to it (both approximately: an ID may be added
	// twice).
	capacity int64
	added    atomic.Int64
}

const (
	idFilterBitsPerID = 10
	// minIDFilterBlocks and maxIDFilterBlocks bound a filter's size:
	// 4 KiB to 32 MiB. A filter of the largest size that holds more
	// than its capacity of IDs answers "may be recorded" more often,
	// which costs lookups, not correctness.
	minIDFilterBlocks = 1 << 6
	maxIDFilterBlocks = 1 << 19
)

// newIDFilter returns an empty filter sized for about capacity IDs.
func newIDFilter(capacity int64) *idFilter {
	blocks := uint64(minIDFilterBlocks)
	for blocks < maxIDFilterBlocks && int64(blocks*512) < capacity*idFilterBitsPerID {
		blocks <<= 1
	}
	return &idFilter{words: make([]atomic.Uint64, blocks*8), mask: blocks - 1, capacity: int64(blocks*512) / idFilterBitsPerID}
}

// mix is a 64-bit finalizer (SplitMix64's): every bit of x moves every
// bit of the result. IDs are not all random (time-ordered ones share
// their high bits), so they are hashed.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// at returns the first word of k's block, and the hash that picks its bit
// in each of the block's words.
func (f *idFilter) at(k id128) (int, uint64) {
	h := mix(k.hi ^ mix(k.lo))
	return int(h&f.mask) * 8, mix(h)
}

// add adds k.
func (f *idFilter) add(k id128) {
	w, h := f.at(k)
	for i := range 8 {
		bit := uint64(1) << (h >> (6 * i) & 63)
		if word := &f.words[w+i]; word.Load()&bit == 0 {
			word.Or(bit)
		}
	}
	f.added.Add(1)
}

// mayContain reports whether k may have been added: false means it was not.
func (f *idFilter) mayContain(k id128) bool {
	w, h := f.at(k)
	for i := range 8 {
		if f.words[w+i].Load()&(uint64(1)<<(h>>(6*i)&63)) == 0 {
			return false
		}
	}
	return true
}

// full reports whether the filter holds more IDs than it is sized for,
// and a larger one could be built.
func (f *idFilter) full() bool {
	return f.added.Load() > f.capacity && f.mask+1 < maxIDFilterBlocks
}

// idFilterAfter is how many IDs at or below the floor the committer looks
// up in the index before it builds a filter. A store whose appends bring
// time-ordered IDs (the Store's own) rarely looks one up, and never pays
// for a filter: reading every retry record, and the filter's memory.
const idFilterAfter = 1024

// tendIDFilter starts building a filter of the recorded IDs once the
// committer has looked up many IDs without one, or a larger one when the
// one in use holds more IDs than it is sized for, and puts to use one that
// is built. Committer only, between groups: every retry record written
// before it is in pebble.
func (d *DB) tendIDFilter() {
	r := &d.recent
	if r.next != nil {
		if !r.next.ready.Load() {
			return
		}
		r.filter, r.next = r.next, nil
	}
	switch {
	case r.filter == nil:
		if r.lookups >= idFilterAfter {
			d.buildIDFilter(d.recordedIDs())
		}
	case r.filter.full():
		d.buildIDFilter(2 * r.filter.added.Load())
	}
}

// recordedIDs estimates how many retry records the index holds, from the
// space their keys take.
func (d *DB) recordedIDs() int64 {
	n, err := d.pdb.EstimateDiskUsage([]byte{prefixID}, []byte{prefixID + 1})
	if err != nil {
		n = 0
	}
	// A record takes about 25 bytes on disk; the filter is made for
	// twice those found, and those to come.
	return 2*int64(n)/25 + 1<<16
}

// buildIDFilter registers a new filter sized for capacity IDs, to which
// the committer adds every ID it notes from now on, and starts a goroutine
// that adds those recorded already, read from a snapshot of the index
// taken after the registration, and adds those in memory itself: every ID
// recorded reaches the filter one way or the other before it is ready.
// Committer only.
func (d *DB) buildIDFilter(capacity int64) {
	f := newIDFilter(capacity)
	d.recent.next = f
	// The retry records not in the index yet (ids.go).
	sets := []*idSet{d.ids.cur}
	for _, b := range d.ids.held {
		sets = append(sets, b.set)
	}
	for _, s := range sets {
		if s != nil {
			for r := range s.all(0) {
				f.add(r.k)
			}
		}
	}
	snap := d.pdb.NewSnapshot()
	d.filterBuilds.Add(1)
	go func() {
		defer d.filterBuilds.Done()
		defer snap.Close()
		if scanIDs(snap, f, d.filterStop) == nil {
			f.ready.Store(true)
		}
		// A build that failed or was stopped is never ready: the
		// committer goes on looking IDs up in the index.
	}()
}

// errStopped ends a filter's build when the store closes.
var errStopped = errors.New("diskstore: the store closed")

// scanIDs adds the ID of every retry record in snap to f, until stop is
// closed.
func scanIDs(snap *pebble.Snapshot, f *idFilter, stop <-chan struct{}) error {
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixID}, UpperBound: []byte{prefixID + 1}})
	if err != nil {
		return err
	}
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if k := it.Key(); len(k) == 17 {
			f.add(toID128(uuid.UUID(k[1:])))
		}
		if n++; n%4096 == 0 {
			select {
			case <-stop:
				_ = it.Close()
				return errStopped
			default:
			}
		}
	}
	return errors.Join(it.Error(), it.Close())
}
