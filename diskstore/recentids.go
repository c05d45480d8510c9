package diskstore

import (
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/google/uuid"
)

// recentIDs spares the committer the index lookup of a new append's first
// event ID (its retry check, group.go) in the common case: an ID never
// recorded, made moments before by the clock (time-ordered IDs).
//
// Its rule: every ID greater than floor that has a retry record in the
// index is held (in rising or in late). So an ID greater than floor and
// not held has none, and the append is not a retry; only an ID held (a
// retry, most likely) or not greater than floor is looked up in the
// index. Open sets floor to the greatest ID recorded, once it has replayed
// the log (loadMaxID), and holds none; the committer adds the first ID of
// every append it writes (all retry records are written by it, in
// group.write) while it is greater than floor. Once it holds more than
// maxRecentIDs, floor rises to the median of those held, and the lower
// half is forgotten: the rule holds, and lookups of IDs at or below the
// new floor go to the index again.
//
// Time-ordered IDs mostly come in rising order: those go to the end of
// rising, sorted, and an ID above its last (the greatest held) needs no
// search at all. The few that come late (made by clients on many
// connections, or by writers that raced to the committer) go to late. IDs
// that arrive out of order are thus found in memory rather than in pebble,
// as long as they are not older than the last maxRecentIDs/2 appends or
// so. An ID held whose record is gone (compaction removes the retry
// records of the appends whose first event it removes; a group that failed
// never wrote its records) is looked up in the index, which has the last
// word: recentIDs can only send a lookup to the index, never answer one
// that finds something.
//
// Owned by the committer goroutine.
type recentIDs struct {
	floor  id128
	rising []id128 // sorted, each greater than floor
	late   map[id128]struct{}
	// raise's scratch
	sorted, merged []id128

	// filter, once one is built (idfilter.go), holds every ID at or
	// below floor that has a retry record, and more: an ID at or below
	// floor that it does not hold has none either. next is a filter
	// being built, given every ID noted meanwhile.
	filter, next *idFilter
	// lookups counts the IDs at or below floor sent to the index while
	// no filter is in use: a filter is built once they are many.
	lookups int
}

// id128 is an event ID as two integers, which compare as the ID's bytes.
type id128 struct{ hi, lo uint64 }

func toID128(id uuid.UUID) id128 {
	return id128{binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])}
}

// key returns the key of the retry record of the ID.
func (a id128) key() []byte {
	k := make([]byte, 17)
	k[0] = prefixID
	binary.BigEndian.PutUint64(k[1:], a.hi)
	binary.BigEndian.PutUint64(k[9:], a.lo)
	return k
}

func (a id128) cmp(b id128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// maxRecentIDs bounds the IDs recentIDs holds.
const maxRecentIDs = 1 << 16

// reset forgets every ID: every ID recorded is at most floor.
func (r *recentIDs) reset(floor uuid.UUID) {
	r.floor = toID128(floor)
	r.rising = r.rising[:0]
	r.late = nil
	// The IDs forgotten are not in the filters: they are built anew.
	r.filter, r.next, r.lookups = nil, nil, 0
}

// greatest returns the greatest ID held, or floor.
func (r *recentIDs) greatest() id128 {
	if n := len(r.rising); n > 0 {
		return r.rising[n-1]
	}
	return r.floor
}

// mayBeRecorded reports whether id may have a retry record: false means
// that it has none.
func (r *recentIDs) mayBeRecorded(id uuid.UUID) bool {
	k := toID128(id)
	if k.cmp(r.floor) <= 0 {
		if r.filter == nil {
			r.lookups++
			return true
		}
		return r.filter.mayContain(k)
	}
	if k.cmp(r.greatest()) > 0 {
		return false
	}
	if _, ok := slices.BinarySearchFunc(r.rising, k, id128.cmp); ok {
		return true
	}
	_, ok := r.late[k]
	return ok
}

// add notes that id has a retry record (or is about to).
func (r *recentIDs) add(id uuid.UUID) {
	k := toID128(id)
	if k.cmp(r.floor) <= 0 {
		r.filtered(k)
		return
	}
	if k.cmp(r.greatest()) > 0 {
		r.rising = append(r.rising, k)
	} else {
		if _, ok := slices.BinarySearchFunc(r.rising, k, id128.cmp); ok {
			return
		}
		if r.late == nil {
			r.late = make(map[id128]struct{})
		}
		r.late[k] = struct{}{}
	}
	if len(r.rising)+len(r.late) > maxRecentIDs {
		r.raise()
	}
}

// raise lifts floor to the median of the IDs held, and forgets every ID
// at or below it.
func (r *recentIDs) raise() {
	late := r.sorted[:0]
	for k := range r.late {
		late = append(late, k)
	}
	slices.SortFunc(late, id128.cmp)
	// Merge the two sorted lists, keep the upper half in rising.
	all := r.merged[:0]
	i, j := 0, 0
	for i < len(r.rising) || j < len(late) {
		if j == len(late) || (i < len(r.rising) && r.rising[i].cmp(late[j]) < 0) {
			all = append(all, r.rising[i])
			i++
		} else {
			all = append(all, late[j])
			j++
		}
	}
	h := len(all) / 2
	for _, k := range all[:h+1] {
		r.filtered(k)
	}
	r.floor = all[h]
	r.rising = append(r.rising[:0], all[h+1:]...)
	clear(r.late)
	r.sorted, r.merged = late[:0], all[:0]
}

// filtered adds k, an ID at or below floor with a retry record, to the
// filters.
func (r *recentIDs) filtered(k id128) {
	if r.filter != nil {
		r.filter.add(k)
	}
	if r.next != nil {
		r.next.add(k)
	}
}

// groupIDs are the first event IDs of the appends of the group being
// committed: an append with the same first ID as one of them waits for
// the next group (verdictLater). The committer keeps one from group to
// group.
//
// Most IDs of a group are above all the IDs before them (the Store's own
// IDs are time-ordered), which one comparison tells; the others are
// looked for among the group's IDs, in a list while the group is short,
// in a map beside it once longer.
type groupIDs struct {
	list []id128
	max  id128
	m    map[id128]struct{} // nil until needed
}

// maxListedIDs is the length of a group's list of IDs above which they
// are also kept in a map.
const maxListedIDs = 64

func (s *groupIDs) reset() {
	if cap(s.list) > maxKeptIDs {
		s.list = nil
	}
	s.list, s.m = s.list[:0], nil
}

// maxKeptIDs bounds the list the committer keeps for the next group.
const maxKeptIDs = 4096

func (s *groupIDs) has(id uuid.UUID) bool {
	v := toID128(id)
	if len(s.list) == 0 || v.cmp(s.max) > 0 {
		return false
	}
	if s.m == nil && len(s.list) <= maxListedIDs {
		return slices.Contains(s.list, v)
	}
	if s.m == nil {
		s.m = make(map[id128]struct{}, 2*len(s.list))
		for _, x := range s.list {
			s.m[x] = struct{}{}
		}
	}
	_, ok := s.m[v]
	return ok
}

func (s *groupIDs) add(id uuid.UUID) {
	v := toID128(id)
	if len(s.list) == 0 || v.cmp(s.max) > 0 {
		s.max = v
	}
	s.list = append(s.list, v)
	if s.m != nil {
		s.m[v] = struct{}{}
	}
}
