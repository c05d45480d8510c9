package diskstore

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
)

// Reading the index's lists: a cursor over the entries of one list, the
// events they file, and whether those are still in the log.

// listCursor walks the entries of one list, forward or backward, through
// an iterator over the list's blocks (in a read view, or the committer's
// pebble). A block holds the entries one frame filed, in runs
// (records.go).
type listCursor struct {
	it    *pebble.Iterator
	b     block
	ri    int    // the run of b the cursor is at
	k     uint64 // the entry within the run
	base  uint64 // the number of the run's first entry
	valid bool
	err   error
	// prefix is the prefix of the list's keys; kbuf holds a block key.
	prefix, kbuf []byte
	// The records of the events from position recLo to recHi of the run
	// the cursor is at, once read (recs holds a copy of their bytes, vals
	// splits it).
	have         bool
	recLo, recHi uint64
	recs         []byte
	vals         [][]byte
}

// openList returns a cursor over the list key in r, not positioned.
func openList(r pebble.Reader, key cairn.IndexKey) (*listCursor, error) {
	c := &listCursor{prefix: appendListPrefix(nil, key)}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: c.prefix, UpperBound: prefixEnd(c.prefix)})
	if err != nil {
		return nil, wrapErr(err)
	}
	c.it = it
	return c, nil
}

// close closes the cursor's iterator. The error that stopped the cursor,
// if any, is c.err, which the caller returns.
func (c *listCursor) close() error {
	return wrapErr(errors.Join(c.it.Error(), c.it.Close()))
}

// load decodes the block under the iterator when ok, and reports whether
// the cursor is on a block.
func (c *listCursor) load(ok bool) bool {
	c.valid, c.have = false, false
	if !ok || c.err != nil {
		return false
	}
	if c.err = decodeBlock(c.it.Key(), c.it.Value(), &c.b); c.err != nil {
		return false
	}
	c.valid, c.ri, c.k, c.base = true, 0, 0, c.b.number
	return true
}

// at puts the cursor on entry n of its block, which holds it.
func (c *listCursor) at(n uint64) bool {
	c.base, c.have = c.b.number, false
	for i, r := range c.b.runs {
		if n < c.base+r.count {
			c.ri, c.k = i, n-c.base
			return true
		}
		c.base += r.count
	}
	c.valid = false
	return false
}

// atPos puts the cursor on the first entry of its block at or after pos,
// which lies at or before the block's last.
func (c *listCursor) atPos(pos uint64) bool {
	n := c.b.number
	for _, r := range c.b.runs {
		if pos < r.end() {
			return c.at(n + pos - min(pos, r.pos))
		}
		n += r.count
	}
	c.valid = false
	return false
}

// number is the number of the entry the cursor is at; pos its position.
func (c *listCursor) number() uint64 { return c.base + c.k }
func (c *listCursor) pos() uint64    { return c.b.runs[c.ri].pos + c.k }

// last puts the cursor on the last entry of the list, and reports whether
// there is one.
func (c *listCursor) last() bool {
	if !c.load(c.it.Last()) {
		return false
	}
	return c.at(c.b.end() - 1)
}

// seekNumber puts the cursor on entry n, or, when the list is shorter,
// (forward) nowhere or (backward) on its last entry.
func (c *listCursor) seekNumber(n uint64, dir cairn.Direction) bool {
	if n+1 == 0 {
		return dir == cairn.Backward && c.last()
	}
	if !c.load(c.it.SeekLT(c.blockKey(n + 1))) {
		// No block numbered n or lower: the list is empty (numbers
		// start at 0).
		return false
	}
	if n < c.b.end() {
		return c.at(n)
	}
	if dir == cairn.Forward {
		c.valid = false
		return false
	}
	return c.at(c.b.end() - 1)
}

// blockKey returns the key of the list's block numbered n, valid until
// the next call.
func (c *listCursor) blockKey(n uint64) []byte {
	c.kbuf = binary.BigEndian.AppendUint64(append(c.kbuf[:0], c.prefix...), n)
	return c.kbuf
}

// seekPos puts the cursor on the first entry at or after position pos
// (forward), or on the last at or before it (backward), and reports
// whether there is one.
func (c *listCursor) seekPos(pos uint64, dir cairn.Direction) bool {
	if dir == cairn.Backward {
		if pos+1 == 0 {
			return c.last()
		}
		n, ok := c.firstFrom(pos + 1)
		switch {
		case c.err != nil:
			return false
		case !ok:
			return c.last()
		case n == 0:
			c.valid = false
			return false
		}
		return c.seekNumber(n-1, cairn.Forward)
	}
	n, ok := c.firstFrom(pos)
	if !ok {
		c.valid = false
		return false
	}
	if c.valid && c.number() == n {
		return true // firstFrom left the cursor there
	}
	return c.seekNumber(n, cairn.Forward)
}

// firstFrom returns the number of the first entry at or after position
// pos, and false when there is none. It reads the last block, which
// answers when pos is among its entries (the common case: appends'
// conditions and readers look near the end), then searches the list's
// numbers, a block at a time.
func (c *listCursor) firstFrom(pos uint64) (uint64, bool) {
	if !c.load(c.it.Last()) {
		return 0, false
	}
	if c.b.lastPos() < pos {
		return 0, false
	}
	if c.b.firstPos() <= pos {
		if !c.atPos(pos) {
			return 0, false
		}
		return c.number(), true
	}
	// Every entry from hi on is at or after pos; every entry below lo is
	// before it.
	lo, hi := uint64(0), c.b.number
	for lo < hi {
		mid := lo + (hi-lo)/2
		if !c.load(c.it.SeekLT(c.blockKey(mid + 1))) {
			if c.err == nil {
				c.err = corruptf(c.blockKey(mid), "index list has no block numbered %d or lower", mid)
			}
			return 0, false
		}
		switch {
		case c.b.lastPos() < pos:
			lo = c.b.end()
		case c.b.firstPos() >= pos:
			hi = c.b.number
		default:
			if !c.atPos(pos) {
				return 0, false
			}
			return c.number(), true
		}
	}
	return lo, true
}

// step moves the cursor to the next entry in direction dir.
func (c *listCursor) step(dir cairn.Direction) bool {
	if !c.valid {
		return false
	}
	r := c.b.runs[c.ri]
	if dir == cairn.Forward {
		if c.k+1 < r.count {
			c.k++
			return true
		}
		if c.ri+1 < len(c.b.runs) {
			c.base += r.count
			c.ri, c.k, c.have = c.ri+1, 0, false
			return true
		}
		end := c.b.end()
		if !c.load(c.it.Next()) {
			return false
		}
		if c.b.number != end {
			c.err = corruptf(c.it.Key(), "index list block numbered %d follows one that ends at %d", c.b.number, end)
			c.valid = false
			return false
		}
		return c.at(end)
	}
	if c.k > 0 {
		c.k--
		return true
	}
	if c.ri > 0 {
		c.ri--
		c.base -= c.b.runs[c.ri].count
		c.k, c.have = c.b.runs[c.ri].count-1, false
		return true
	}
	first := c.b.number
	if !c.load(c.it.Prev()) {
		return false
	}
	if c.b.end() != first {
		c.err = corruptf(c.it.Key(), "index list block ending at %d precedes one numbered %d", c.b.end(), first)
		c.valid = false
		return false
	}
	return c.at(first - 1)
}

// event reads the event of the entry the cursor is at from the log, whose
// records lr reads, given the locator loc that holds it (see liveness),
// or nil when no event was ever removed from the log.
//
// The entry's run says where the records of its events are; compaction
// may have removed some of them (and freed their bytes) since, which the
// locators say: what is left of the run is its part that loc holds, whose
// records start at the run's first or at the locator's, and end at the
// run's last or at the locator's. That part is read once, for all the
// entries of the run it holds.
func (c *listCursor) event(lr *seglog.Reader, sc *strCache, loc *run) (cairn.Event, error) {
	r := c.b.runs[c.ri]
	pos := r.pos + c.k
	if !c.have || pos < c.recLo || pos >= c.recHi {
		lo, hi := r.pos, r.end()
		off, end := r.off, r.off+r.bytes
		if loc != nil {
			lo, hi = max(r.pos, loc.pos), min(r.end(), loc.pos+uint64(loc.count))
			if loc.pos > r.pos {
				off = loc.off
			}
			if hi < r.end() {
				end = loc.off + loc.bytes
			}
		}
		if pos < lo || pos >= hi || (loc != nil && loc.seg != c.b.seg) || end < off {
			return cairn.Event{}, corruptf(eventKey(pos), "the index entry of the event at position %d does not meet its locator", pos)
		}
		p, err := lr.Read(c.b.seg, off, int(end-off))
		if err != nil {
			return cairn.Event{}, err
		}
		c.recs = append(c.recs[:0], p...)
		var ok bool
		c.vals, ok = seglog.Records(c.recs, c.vals[:0])
		if !ok || uint64(len(c.vals)) != hi-lo {
			return cairn.Event{}, corruptf(eventKey(lo), "log segment %d offset %d: malformed records of %d events", c.b.seg, off, hi-lo)
		}
		c.have, c.recLo, c.recHi = true, lo, hi
	}
	var key [9]byte
	putEventKey(key[:], pos)
	return decodeEvent(key[:], c.vals[pos-c.recLo], pos, sc)
}

// liveness tells whether the event at a position is still in the log: a
// locator holds it. An index entry outlives its event (compaction removes
// events, not entries), so once compaction has removed any event (DB.cut),
// every event read through the index is checked; until then, none needs to
// be.
type liveness struct {
	it  *pebble.Iterator // nil when no event was ever removed
	loc run              // the locator last found
	key [9]byte
}

// newLiveness returns the liveness of the events r holds; cut says
// whether any was removed.
func newLiveness(r pebble.Reader, cut bool) (*liveness, error) {
	if !cut {
		return &liveness{}, nil
	}
	it, err := r.NewIter(&locatorBounds)
	if err != nil {
		return nil, wrapErr(err)
	}
	return &liveness{it: it}, nil
}

func (l *liveness) close() error {
	if l.it == nil {
		return nil
	}
	return wrapErr(errors.Join(l.it.Error(), l.it.Close()))
}

// locator returns the locator that holds the event live reported last, or
// nil when no event was ever removed (the whole of every frame is there).
func (l *liveness) locator() *run {
	if l.it == nil {
		return nil
	}
	return &l.loc
}

// live reports whether the event at pos is in the log; when it is,
// locator returns the locator that holds it.
func (l *liveness) live(pos uint64) (bool, error) {
	if l.it == nil {
		return true, nil
	}
	if l.loc.count > 0 && pos >= l.loc.pos && pos-l.loc.pos < uint64(l.loc.count) {
		return true, nil
	}
	if !l.it.SeekLT(appendLocatorKey(l.key[:0], pos+1)) {
		return false, nil
	}
	rn, err := decodeRun(l.it.Key(), l.it.Value())
	if err != nil {
		return false, err
	}
	l.loc = rn
	return pos-rn.pos < uint64(rn.count), nil
}

// listLen returns the number of entries of the list key in r.
func listLen(r pebble.Reader, key cairn.IndexKey, b *block) (uint64, error) {
	ok, err := lastBlock(r, appendListPrefix(nil, key), b)
	if err != nil || !ok {
		return 0, err
	}
	return b.end(), nil
}

// itemLists returns the lists that hold every event the query item it
// (which has types or tags) matches, choosing those with the fewest
// entries: the list of one of its tags (an event matches only if it is in
// all of them), or the lists of all its types (it is in one of those).
// length gives the length of a list.
func itemLists(it cairn.QueryItem, length func(cairn.IndexKey) (uint64, error)) ([]cairn.IndexKey, error) {
	var byTag cairn.IndexKey
	tagLen, haveTag := uint64(0), false
	for _, t := range it.Tags {
		k := cairn.IndexKey{Kind: cairn.IndexTag, Value: t}
		n, err := length(k)
		if err != nil {
			return nil, err
		}
		if !haveTag || n < tagLen {
			byTag, tagLen, haveTag = k, n, true
		}
		if n == 0 {
			break // the item matches nothing
		}
	}
	if len(it.Types) == 0 || (haveTag && tagLen == 0) {
		return []cairn.IndexKey{byTag}, nil
	}
	byType := make([]cairn.IndexKey, 0, len(it.Types))
	total := uint64(0)
	for _, t := range it.Types {
		k := cairn.IndexKey{Kind: cairn.IndexType, Value: t}
		n, err := length(k)
		if err != nil {
			return nil, err
		}
		byType = append(byType, k)
		total += n
	}
	if haveTag && tagLen <= total {
		return []cairn.IndexKey{byTag}, nil
	}
	return byType, nil
}

// checkCtx returns ctx's error every 256 calls.
func checkCtx(ctx context.Context, n int) error {
	if n%256 == 255 {
		return ctx.Err()
	}
	return nil
}
