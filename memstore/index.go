package memstore

import (
	"context"
	"sort"

	"github.com/cairndb/cairn"
)

// The index: for each key of cairn.IndexKeys, the positions of the events
// filed under it, in order. It is written under the write lock in the same
// critical section as the events it files, and read under the read lock, so
// a reader sees an event and its entries together. Nothing removes an entry:
// deletes and truncations leave the log as it is, and Compact removes no
// event.

// fileLocked files the event e, just appended to the log, in the index. The
// caller holds the write lock.
func (s *Store) fileLocked(e *cairn.Event) {
	s.keys = cairn.IndexKeys(s.keys[:0], e.StreamID, e.Version, &e.EventData)
	for _, k := range s.keys {
		s.index[k] = append(s.index[k], e.Position)
	}
}

// ReadIndex implements [cairn.IndexReader].
func (s *Store) ReadIndex(ctx context.Context, key cairn.IndexKey, from int64, count int, dir cairn.Direction) ([]cairn.IndexedEvent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLocked(ctx); err != nil {
		return nil, err
	}
	list := s.index[key]
	last := int64(len(list)) - 1
	var out []cairn.IndexedEvent
	entry := func(n int64) cairn.IndexedEvent {
		return cairn.IndexedEvent{Number: n, Position: list[n], Event: s.eventLocked(list[n]), Found: true}
	}
	if dir == cairn.Forward {
		for n := from; n <= last && len(out) < count; n++ {
			out = append(out, entry(n))
		}
		return out, nil
	}
	if from == cairn.StreamEnd || from > last {
		from = last
	}
	for n := from; n >= 0 && len(out) < count; n-- {
		out = append(out, entry(n))
	}
	return out, nil
}

// ReadQuery implements [cairn.Querier].
func (s *Store) ReadQuery(ctx context.Context, q cairn.Query, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkLocked(ctx); err != nil {
		return nil, err
	}
	var out []cairn.Event
	s.queryLocked(q, from, dir, func(pos uint64) bool {
		out = append(out, s.eventLocked(pos))
		return len(out) < count
	})
	return out, nil
}

// queryLocked calls fn with the positions of the events that match q, from
// position from in direction dir, until fn returns false. It reads the
// index lists of each item's most selective key, so that it visits the
// events those lists hold rather than the log; an item that matches every
// event makes it read the log. The caller holds the lock.
func (s *Store) queryLocked(q cairn.Query, from uint64, dir cairn.Direction, fn func(pos uint64) bool) {
	n := uint64(len(s.log))
	if n == 0 || (dir == cairn.Forward && from >= n) {
		return
	}
	if dir == cairn.Backward && from >= n {
		from = n - 1
	}
	if q.All() {
		if dir == cairn.Forward {
			for p := from; p < n && fn(p); p++ {
			}
			return
		}
		for p := int64(from); p >= 0 && fn(uint64(p)); p-- {
		}
		return
	}
	var lists [][]uint64
	for _, it := range q.Items {
		lists = append(lists, s.selectLocked(it)...)
	}
	// A merge of the sorted lists in direction dir, each cursor at its
	// first position from from on; a position in several lists is visited
	// once.
	cur := make([]int, len(lists))
	for i, l := range lists {
		k := sort.Search(len(l), func(j int) bool { return l[j] >= from })
		if dir == cairn.Backward && (k == len(l) || l[k] > from) {
			k-- // the last position at or below from
		}
		cur[i] = k
	}
	for {
		best, found := uint64(0), false
		for i, l := range lists {
			if k := cur[i]; k >= 0 && k < len(l) {
				if p := l[k]; !found || (dir == cairn.Forward && p < best) || (dir == cairn.Backward && p > best) {
					best, found = p, true
				}
			}
		}
		if !found {
			return
		}
		for i, l := range lists {
			if k := cur[i]; k >= 0 && k < len(l) && l[k] == best {
				if dir == cairn.Forward {
					cur[i]++
				} else {
					cur[i]--
				}
			}
		}
		if q.Matches(&s.log[best]) && !fn(best) {
			return
		}
	}
}

// selectLocked returns the index lists that hold every event the item it
// (which has types or tags) matches, choosing the fewest positions: the
// shortest list of its tags (an event matches only if it is in all of
// them), or the lists of all its types (it is in one of those).
func (s *Store) selectLocked(it cairn.QueryItem) [][]uint64 {
	var byTag []uint64
	haveTag := false
	for _, t := range it.Tags {
		if l := s.index[cairn.IndexKey{Kind: cairn.IndexTag, Value: t}]; !haveTag || len(l) < len(byTag) {
			byTag, haveTag = l, true
		}
	}
	if len(it.Types) == 0 {
		return [][]uint64{byTag}
	}
	byType := make([][]uint64, 0, len(it.Types))
	total := 0
	for _, t := range it.Types {
		l := s.index[cairn.IndexKey{Kind: cairn.IndexType, Value: t}]
		byType = append(byType, l)
		total += len(l)
	}
	if haveTag && len(byTag) <= total {
		return [][]uint64{byTag}
	}
	return byType
}

// checkConditionLocked returns a *cairn.ConditionError when an event that
// matches c's query follows c.After in the log. The caller holds the write
// lock, in the critical section that writes when it returns nil.
func (s *Store) checkConditionLocked(c *cairn.AppendCondition) error {
	if c == nil {
		return nil
	}
	from := uint64(0)
	if c.After != nil {
		if *c.After == cairn.LogEnd {
			return nil
		}
		from = *c.After + 1
	}
	var err error
	s.queryLocked(c.FailIfEventsMatch, from, cairn.Forward, func(pos uint64) bool {
		err = &cairn.ConditionError{Position: pos}
		return false
	})
	return err
}
