package diskstore

import (
	"bytes"

	"github.com/google/uuid"
)

// recentIDs spares the committer the index lookup of a new append's first
// event ID (its retry check, group.go) in the common case: an ID never
// recorded, made moments before by the clock (time-ordered IDs).
//
// Its rule: every ID greater than floor that has a retry record in the
// index is in ids. So an ID greater than floor and not in ids has none,
// and the append is not a retry; only an ID in ids (a retry, most likely)
// or not greater than floor is looked up in the index. Open sets floor to
// the greatest ID recorded, once it has replayed the log (loadMaxID), with
// ids empty; the committer adds the first ID of every append it writes
// (all retry records are written by it, in group.write) while it is
// greater than floor. When ids holds more than maxRecentIDs, floor rises
// to the greatest of the older half of them (by when they were added), and
// the IDs it passes are forgotten: the rule holds, and lookups of IDs at
// or below the new floor go to the index again.
//
// IDs that arrive a little out of order (made by clients on many
// connections, or by writers that race to the committer) are thus found
// in memory rather than in pebble, as long as they are not older than the
// last maxRecentIDs/2 appends or so. An ID in ids whose record is gone
// (compaction removes the retry records of the appends whose first event
// it removes; a group that failed never wrote its records) is looked up in
// the index, which has the last word: ids can only send a lookup to the
// index, never answer one that finds something.
//
// Owned by the committer goroutine.
type recentIDs struct {
	floor uuid.UUID
	ids   map[uuid.UUID]struct{}
	order []uuid.UUID // the IDs of ids, in the order they were added
}

// maxRecentIDs bounds the IDs recentIDs holds: about 2 MiB of memory.
const maxRecentIDs = 1 << 15

// reset forgets every ID: every ID recorded is at most floor.
func (r *recentIDs) reset(floor uuid.UUID) {
	r.floor = floor
	r.ids = make(map[uuid.UUID]struct{})
	r.order = r.order[:0]
}

// mayBeRecorded reports whether id may have a retry record: false means
// that it has none.
func (r *recentIDs) mayBeRecorded(id uuid.UUID) bool {
	if bytes.Compare(id[:], r.floor[:]) <= 0 {
		return true
	}
	_, ok := r.ids[id]
	return ok
}

// add notes that id has a retry record (or is about to).
func (r *recentIDs) add(id uuid.UUID) {
	if bytes.Compare(id[:], r.floor[:]) <= 0 {
		return
	}
	if _, ok := r.ids[id]; ok {
		return
	}
	if r.ids == nil {
		r.ids = make(map[uuid.UUID]struct{})
	}
	r.ids[id] = struct{}{}
	r.order = append(r.order, id)
	if len(r.order) > maxRecentIDs {
		r.raise()
	}
}

// raise lifts floor to the greatest of the older half of the IDs, and
// forgets every ID at or below it.
func (r *recentIDs) raise() {
	for _, id := range r.order[:len(r.order)/2] {
		if bytes.Compare(id[:], r.floor[:]) > 0 {
			r.floor = id
		}
	}
	kept := r.order[:0]
	for _, id := range r.order {
		if bytes.Compare(id[:], r.floor[:]) > 0 {
			kept = append(kept, id)
		} else {
			delete(r.ids, id)
		}
	}
	r.order = kept
}
