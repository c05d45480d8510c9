package diskstore

import (
	"errors"
	"math"

	"github.com/cairndb/cairn"
)

// Append conditions (cairn.AppendCondition), checked by the committer.
//
// The committer is the point that orders positions: it checks a
// condition while it forms the group that writes the append, against every
// event committed before (the groups before, in the index and the log,
// which its pebble holds whether or not they are durable yet: they will be
// before this one is answered) and the events of the appends taken into
// the group before this one. No event can be committed between the check
// and the write, so two appends with the same condition cannot both pass
// it. A batch's conditions are checked against the events before the
// batch, never its own (group.do checks them all before writing any).
//
// A condition reads the lists of its query's items that itemLists chooses,
// from the first entry after After. The committer knows the last position
// of the lists it wrote recently (listHeads): when it is not after After,
// the check reads nothing at all, which is the common case of a writer
// whose condition is on its own tags and whose After is its last append.
// Otherwise it reads the entries after After, and the events they file
// (entries whose events compaction removed are skipped: a condition sees
// the events the log holds), up to the first that matches.

// conflict returns the position of the first event after c.After that
// matches c's query, and false when there is none.
func (g *group) conflict(c *cairn.AppendCondition) (uint64, bool, error) {
	from := uint64(0)
	if c.After != nil {
		if *c.After == math.MaxUint64 {
			return 0, false, nil
		}
		from = *c.After + 1
	}
	if from >= g.next {
		return 0, false, nil
	}
	if c.FailIfEventsMatch.All() {
		return g.firstLive(from)
	}
	best, found := g.next, false // the first match so far, or g.next
	for _, it := range c.FailIfEventsMatch.Items {
		keys, err := itemLists(it, g.listLen)
		if err != nil {
			return 0, false, err
		}
		for _, k := range keys {
			p, ok, err := g.firstMatch(k, it, from, best)
			if err != nil {
				return 0, false, err
			}
			if ok {
				best, found = p, true
			}
		}
	}
	return best, found, nil
}

// listLen returns the number of entries of the list key, those of the
// group included.
func (g *group) listLen(key cairn.IndexKey) (uint64, error) {
	d := g.d
	h, err := d.lists.get(d.pdb, key)
	if err != nil {
		return 0, err
	}
	n := h.next
	if pl := d.filing.lists[key]; pl != nil {
		n += pl.n
	}
	return n, nil
}

// firstMatch returns the position of the first event of the list key at or
// after from, and before limit, that matches the item it.
func (g *group) firstMatch(key cairn.IndexKey, it cairn.QueryItem, from, limit uint64) (uint64, bool, error) {
	d := g.d
	h, err := d.lists.get(d.pdb, key)
	if err != nil {
		return 0, false, err
	}
	if h.next > 0 && h.last >= from && from < limit {
		// Events committed before the group follow from.
		p, ok, err := g.firstCommitted(key, it, from, limit)
		if err != nil || ok {
			return p, ok, err
		}
	}
	pl := d.filing.lists[key]
	if pl == nil {
		return 0, false, nil
	}
	for _, r := range pl.runs {
		for p := max(r.pos, from); p < r.end() && p < limit; p++ {
			ge := g.evs[p-g.first]
			e := cairn.Event{EventData: *ge.e, StreamID: ge.stream}
			if it.Matches(&e) {
				return p, true, nil
			}
		}
	}
	return 0, false, nil
}

// firstCommitted is firstMatch among the events committed before the group.
func (g *group) firstCommitted(key cairn.IndexKey, it cairn.QueryItem, from, limit uint64) (p uint64, ok bool, err error) {
	d := g.d
	c, err := openList(d.pdb, key)
	if err != nil {
		return 0, false, err
	}
	live, err := newLiveness(d.pdb, d.cut.Load())
	if err != nil {
		return 0, false, errors.Join(err, c.close())
	}
	lr := d.log.NewSparseReader()
	defer func() {
		lr.Release()
		err = errors.Join(err, live.close(), c.close())
	}()
	var sc strCache
	for valid := c.seekPos(from, cairn.Forward); valid && c.pos() < limit; valid = c.step(cairn.Forward) {
		p := c.pos()
		ok, err := live.live(p)
		if err != nil {
			return 0, false, err
		}
		if !ok {
			continue
		}
		e, err := c.event(&lr, &sc, live.locator())
		if err != nil {
			return 0, false, err
		}
		if it.Matches(&e) {
			return p, true, nil
		}
	}
	return 0, false, c.err
}

// firstLive returns the first position at or after from of an event the
// log holds: the condition of a query that matches every event.
func (g *group) firstLive(from uint64) (p uint64, ok bool, err error) {
	if from < g.first {
		it, err := g.d.pdb.NewIter(&locatorBounds)
		if err != nil {
			return 0, false, wrapErr(err)
		}
		rd := &reader{locs: it, lr: g.d.log.NewReader()}
		rn, found, err := rd.locate(from, cairn.Forward)
		if err = rd.close(err); err != nil {
			return 0, false, err
		}
		if found && rn.pos < g.first && from < rn.pos+uint64(rn.count) {
			return max(from, rn.pos), true, nil
		}
	}
	if p := max(from, g.first); p < g.next {
		return p, true, nil
	}
	return 0, false, nil
}
