package diskstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/batchrepr"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/google/uuid"
)

// Retry records (the 'i' keys, one per append: its first event ID → its
// position) reach the index by another way than the rest of it. Only the
// committer reads them, one at a time (an append's retry check) and
// rarely (recentids.go and idfilter.go spare most lookups), while every
// append writes one. Inserted into pebble's memtable one by one, then
// flushed and compacted through the levels, the records of IDs made at
// random (as the KurrentDB clients make them) land all over the key space
// and cost as much as the runs do; kept in memory and ingested sorted, they
// cost the process 18% less CPU an append (BenchmarkAppendWritersRandomIDs).
// Those of time-ordered IDs were cheap either way: each lands next to the
// one before.
//
// So the committer keeps the records it writes in memory (retryRecords.cur)
// and, each time pebble's memtable is flushed (rotate), hands them to a
// goroutine that writes them, sorted, as one table that pebble ingests
// whole, with the ID mark: the frame of the log up to which the index holds
// every retry record. The ingest is atomic, so the index holds the records
// of every frame up to its ID mark and of none after (but for those
// written again by a replay, the same). Time-ordered IDs make tables that
// do not overlap: pebble ingests them into the last level, and never
// compacts them again.
//
// A frame's index writes hold no retry records: Open derives them from the
// frame (its runs that start in the frame, and the IDs of their first
// events, see frameIDs). It replays the frames after the older of the
// marker and the ID mark; a frame the marker covers gives only its retry
// records. Compaction's removals of retry records (the deletes of a purge
// step) are in the frame, and go to memory as tombstones, which the table
// ingested then holds; pebble's memtable never holds a retry record, so an
// ingest never makes pebble flush it (which would put groups that are not
// durable yet on disk).

// idRec is a retry record in memory: the position of the append whose
// first event has the ID, or, gone, its removal.
type idRec struct {
	pos  uint64
	gone bool
}

// stagedID is a retry record in memory, or one a group writes, kept in
// memory once the group is in the log (a group that fails writes none).
type stagedID struct {
	k   id128
	rec idRec
	seq uint32 // its place among those in memory: the last of an ID wins
}

// idSet is retry records in the order they were written, in chunks of
// idChunk (so that adding one never copies those before). Adding one
// costs a copy into the last chunk; the index that lookups need (rare:
// recentids.go and idfilter.go spare most) is built, or brought up to
// date, by the first lookup that needs it.
type idSet struct {
	chunks  [][]stagedID
	n       int
	idx     map[id128]idRec // of the first indexed records
	indexed int
}

const idChunk = 4096

// add adds the records of staged, numbering them.
func (s *idSet) add(staged ...stagedID) {
	for len(staged) > 0 {
		last := len(s.chunks) - 1
		if last < 0 || len(s.chunks[last]) == idChunk {
			s.chunks = append(s.chunks, make([]stagedID, 0, idChunk))
			last++
		}
		c := s.chunks[last]
		k := min(len(staged), idChunk-len(c))
		for i, r := range staged[:k] {
			r.seq = uint32(s.n + i)
			c = append(c, r)
		}
		s.chunks[last], s.n, staged = c, s.n+k, staged[k:]
	}
}

// all yields the records in the order they were added, from the i-th.
func (s *idSet) all(i int) iter.Seq[stagedID] {
	return func(yield func(stagedID) bool) {
		for c := i / idChunk; c < len(s.chunks); c++ {
			for _, r := range s.chunks[c][i-c*idChunk:] {
				if !yield(r) {
					return
				}
				i++
			}
		}
	}
}

// find returns the last record of k in s.
func (s *idSet) find(k id128) (idRec, bool) {
	if s == nil || s.n == 0 {
		return idRec{}, false
	}
	if s.idx == nil {
		s.idx = make(map[id128]idRec, s.n)
	}
	for r := range s.all(s.indexed) {
		s.idx[r.k] = r.rec
	}
	s.indexed = s.n
	rec, ok := s.idx[k]
	return rec, ok
}

// sorted returns the records of s sorted by ID, the last of each ID only.
func (s *idSet) sorted() []stagedID {
	out := make([]stagedID, 0, s.n)
	for _, c := range s.chunks {
		out = append(out, c...)
	}
	slices.SortFunc(out, func(a, b stagedID) int {
		if c := a.k.cmp(b.k); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	kept := out[:0]
	for i, r := range out {
		if i+1 < len(out) && out[i+1].k == r.k {
			continue
		}
		kept = append(kept, r)
	}
	return kept
}

// idBatch is a set of retry records handed to the ingester: those of the
// frames up to mark that the index does not hold yet.
type idBatch struct {
	set  *idSet  // its records are not changed once handed off
	runs *runGen // and its runs (runs.go)
	mark marker
	done chan struct{}
	err  error
}

// retryRecords is the committer's side of the retry records: those in
// memory, and the batches on their way into the index.
type retryRecords struct {
	cur  *idSet     // written since the last hand-off
	runs *runGen    // the runs written since (runs.go); nil: none yet
	held []*idBatch // handed off and not known ingested, oldest first
	// gens are the runs in memory, those of held then runs: what the
	// committer reads, and what the views it makes see. Replaced, never
	// changed, as they change.
	gens []*runGen
	// purged: pebble's memtable holds runs a purge step wrote, and must
	// be flushed before the next ingest (flushPurged).
	purged bool
	// mark is the ID mark the index holds (marked false: none, every
	// frame's records are replayed).
	mark   marker
	marked bool

	queue chan *idBatch // to the ingester, while it runs
	quit  chan struct{} // closed by the ingester when it stops
	tmp   atomic.Uint64 // numbers the tables being written
}

// maxHeldIDBatches bounds the batches handed off and not ingested: the
// committer waits for the oldest beyond.
const maxHeldIDBatches = 2

// replayIDBatch is the number of retry records Open keeps in memory while
// it replays the log before it has them ingested.
const replayIDBatch = 1 << 20

// put notes a retry record in memory.
func (r *retryRecords) put(k id128, rec idRec) {
	if r.cur == nil {
		r.cur = &idSet{}
	}
	r.cur.add(stagedID{k: k, rec: rec})
}

// putRun notes a run in memory.
func (r *retryRecords) putRun(stream string, rn run) {
	r.curRuns().add([]stagedRun{{stream: stream, rn: rn}})
}

// curRuns returns the generation of runs being written.
func (r *retryRecords) curRuns() *runGen {
	if r.runs == nil {
		r.runs = newRunGen()
		r.regen()
	}
	return r.runs
}

// regen replaces gens with the generations of runs in memory now.
func (r *retryRecords) regen() {
	gens := make([]*runGen, 0, len(r.held)+1)
	for _, b := range r.held {
		if b.runs != nil {
			gens = append(gens, b.runs)
		}
	}
	if r.runs != nil {
		gens = append(gens, r.runs)
	}
	r.gens = gens
}

// pending returns the number of retry records and runs in memory not
// handed off.
func (r *retryRecords) pending() int {
	n := r.runs.size()
	if r.cur != nil {
		n += r.cur.n
	}
	return n
}

// findID looks up the retry record of id: in memory, then in the index.
// Committer only (or Open's, before the committer starts).
func (d *DB) findID(id uuid.UUID) (pos uint64, ok bool, err error) {
	k := toID128(id)
	r := &d.ids
	rec, ok := r.cur.find(k)
	for i := len(r.held) - 1; !ok && i >= 0; i-- {
		rec, ok = r.held[i].set.find(k)
	}
	if ok {
		return rec.pos, !rec.gone, nil
	}
	key := idKey(id)
	v, closer, err := d.pdb.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, wrapErr(err)
	}
	defer closer.Close()
	pos, err = decodeUint(key, v)
	return pos, err == nil, err
}

// keepRecords notes in memory the retry records and the runs of a group
// now in the log.
func (d *DB) keepRecords(ids []stagedID, runs []stagedRun) {
	r := &d.ids
	if len(runs) > 0 {
		r.curRuns().add(runs)
	}
	if len(ids) == 0 {
		return
	}
	if r.cur == nil {
		r.cur = &idSet{}
	}
	r.cur.add(ids...)
}

// tendIDs forgets the batches the ingester is done with; a failed ingest
// fails the store (its records stay in memory). Committer only.
func (d *DB) tendIDs(wait bool) {
	r := &d.ids
	for len(r.held) > 0 {
		b := r.held[0]
		if wait {
			<-b.done
		} else {
			select {
			case <-b.done:
			default:
				return
			}
		}
		if b.err != nil {
			d.fail(b.err)
			return
		}
		r.mark, r.marked = b.mark, true
		r.held[0] = nil
		r.held = r.held[1:]
		r.regen()
	}
}

// handOffIDs hands the records in memory, those of every frame up to the
// last written, to the ingester. Committer only, at a moment when every
// group written is durable (rotate).
func (d *DB) handOffIDs() {
	r := &d.ids
	if r.queue == nil || !d.idsBehind() {
		return
	}
	d.tendIDs(false)
	for len(r.held) >= maxHeldIDBatches && d.failed() == nil {
		b := r.held[0]
		<-b.done
		d.tendIDs(false)
	}
	if d.failed() != nil {
		return
	}
	if err := d.flushPurged(); err != nil {
		d.fail(err)
		return
	}
	b := &idBatch{set: r.cur, runs: r.runs, mark: d.written, done: make(chan struct{})}
	r.cur, r.runs = nil, nil
	r.held = append(r.held, b)
	r.regen()
	r.queue <- b
}

// flushPurged flushes pebble's memtable when it holds runs a purge step
// wrote: an ingest of runs would overlap it, and pebble would flush it
// itself, with whatever groups it holds that are not durable yet.
// Committer only, at a moment when every group written is durable.
func (d *DB) flushPurged() error {
	r := &d.ids
	if !r.purged {
		return nil
	}
	d.sealed.Add(1)
	d.unflushed = 0
	if err := d.pdb.Flush(); err != nil {
		return wrapErr(err)
	}
	r.purged = false
	return nil
}

// idsBehind reports whether the index's ID mark is older than the last
// frame written.
func (d *DB) idsBehind() bool {
	r := &d.ids
	last := r.mark
	if n := len(r.held); n > 0 {
		last = r.held[n-1].mark
	} else if !r.marked {
		return d.written.seg != 0
	}
	return r.pending() > 0 || d.written.after(last)
}

// settleIDs has the index hold every retry record written, up to the last
// frame written: it waits for the batches handed off, then ingests those
// in memory itself. Committer only (or Open's and Close's, while none
// runs), at a moment when every group written is durable.
func (d *DB) settleIDs() error {
	d.tendIDs(true)
	if err := d.failed(); err != nil {
		return err
	}
	if !d.idsBehind() {
		return nil
	}
	r := &d.ids
	if err := d.flushPurged(); err != nil {
		return err
	}
	if err := d.ingestIDs(r.cur, r.runs, d.written); err != nil {
		return err
	}
	r.cur, r.runs, r.mark, r.marked = nil, nil, d.written, true
	r.regen()
	return nil
}

// startIngester starts the goroutine that ingests the batches handed off.
func (d *DB) startIngester() {
	r := &d.ids
	r.queue, r.quit = make(chan *idBatch, maxHeldIDBatches), make(chan struct{})
	go func() {
		defer close(r.quit)
		for b := range r.queue {
			if ingestStarting != nil {
				ingestStarting()
			}
			b.err = d.ingestIDs(b.set, b.runs, b.mark)
			close(b.done)
		}
	}()
}

// stopIngester waits for the batches handed off, and stops the ingester.
func (d *DB) stopIngester() {
	r := &d.ids
	if r.queue == nil {
		return
	}
	d.tendIDs(true)
	close(r.queue)
	<-r.quit
	r.queue = nil
}

// ingestStarting, when set (by tests), is called by the ingester before
// it ingests each batch handed to it.
var ingestStarting func()

// ingestSuffix names the tables written for ingestion in the store's
// directory; Open removes those a crash left.
const ingestSuffix = ".ingest"

// ingestIDs writes the records of set as a table, the runs of runs as
// another, and mark as a third, and has pebble ingest them, atomically.
// The tables' key ranges do not overlap each other, nor pebble's memtable
// (but for the runs of a purge step, see flushPurged).
func (d *DB) ingestIDs(set *idSet, runs *runGen, mark marker) error {
	var recs []stagedID
	if set != nil {
		recs = set.sorted()
	}
	paths := make([]string, 0, 2)
	defer func() {
		for _, p := range paths {
			_ = d.opts.FS.Remove(p) // gone once ingested
		}
	}()
	table := func(fill func(w *sstable.Writer) error) error {
		p := d.opts.FS.PathJoin(d.dir, fmt.Sprintf("ids-%06d%s", d.ids.tmp.Add(1), ingestSuffix))
		f, err := d.opts.FS.Create(p, "")
		if err != nil {
			return err
		}
		paths = append(paths, p)
		// Without a filter or compression: IDs do not compress, and
		// lookups are rare.
		wo := d.po.MakeWriterOptions(0, d.pdb.TableFormat())
		wo.FilterPolicy, wo.Compression = nil, sstable.NoCompression
		w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), wo)
		return errors.Join(fill(w), w.Close())
	}
	err := table(func(w *sstable.Writer) error {
		v := make([]byte, markerLen)
		putMarkerAt(idMarkKey, v, mark)
		return w.Set(idMarkKey, v)
	})
	if err == nil && len(recs) > 0 {
		err = table(func(w *sstable.Writer) error {
			var k [17]byte
			k[0] = prefixID
			var v []byte
			for _, r := range recs {
				binary.BigEndian.PutUint64(k[1:], r.k.hi)
				binary.BigEndian.PutUint64(k[9:], r.k.lo)
				rec := r.rec
				if rec.gone {
					if err := w.Delete(k[:]); err != nil {
						return err
					}
					continue
				}
				v = appendUint(v[:0], k[:], rec.pos)
				if err := w.Set(k[:], v); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err == nil && runs.size() > 0 {
		err = table(func(w *sstable.Writer) error { return runs.write(w.Set) })
	}
	if err == nil {
		err = d.pdb.Ingest(context.Background(), paths)
	}
	if err != nil {
		return fmt.Errorf("diskstore: ingesting retry records: %w", err)
	}
	return nil
}

// removeIngestLeftovers removes the tables a crash left before pebble
// ingested them.
func (d *DB) removeIngestLeftovers() error {
	names, err := d.opts.FS.List(d.dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasSuffix(n, ingestSuffix) {
			if err := d.opts.FS.Remove(d.opts.FS.PathJoin(d.dir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadIDMark reads the ID mark. A store of format 3 has none, and its index
// holds the retry records of every frame up to its marker.
func (d *DB) loadIDMark() error {
	m, ok, err := readMarkerAt(d.pdb, idMarkKey)
	if err != nil {
		return err
	}
	d.ids.mark, d.ids.marked = m, ok
	return nil
}

// frameRecords calls put for the retry records of the frame at first
// (whose index writes are checked by checkFrame): those its index writes
// set or remove (a store of format 3 wrote them there, and compaction's
// purge steps write their removals), then that of every append whose
// events are in the frame, found by its run. It calls putRun, unless nil,
// for each of those runs (runs.go); put may be nil too.
func frameRecords(frame []byte, first uint64, put func(k id128, rec idRec), putRun func(stream string, rn run)) error {
	ev := int(binary.LittleEndian.Uint32(frame[4:]))
	var records [][]byte
	r := batchrepr.Read(seglog.FrameIndex(frame))
	for {
		kind, k, v, ok, err := r.Next()
		if err != nil {
			return wrapErr(err)
		}
		if !ok {
			return nil
		}
		switch {
		case len(k) == 17 && k[0] == prefixID:
			if put == nil {
				continue
			}
			id := toID128(uuid.UUID(k[1:]))
			if kind == pebble.InternalKeyKindDelete {
				put(id, idRec{gone: true})
				continue
			}
			pos, err := decodeUint(k, v)
			if err != nil {
				return err
			}
			put(id, idRec{pos: pos})
		case len(k) > 0 && k[0] == prefixRun && kind == pebble.InternalKeyKindSet:
			rn, err := decodeRun(k, v)
			if err != nil {
				return err
			}
			if records == nil {
				records, _ = seglog.Records(frame[seglog.HeaderLen:seglog.HeaderLen+ev], nil)
			}
			if !ownRun(rn, first, len(records)) {
				continue // a run compaction cut, of events of frames before
			}
			if putRun != nil {
				putRun(string(k[1:len(k)-9]), rn)
			}
			if put == nil {
				continue
			}
			var sc strCache
			e, err := decodeEvent(eventKey(rn.pos), records[rn.pos-first], rn.pos, &sc)
			if err != nil {
				return err
			}
			put(toID128(e.ID), idRec{pos: rn.pos})
		}
	}
}

// ownRun reports whether rn, set by the index writes of a frame whose
// events (count of them) start at position first, is the run of an append
// in the frame, not one of a frame before that a purge step rewrote.
func ownRun(rn run, first uint64, count int) bool {
	return rn.pos >= first && rn.pos-first < uint64(count)
}

// withoutIDs returns a batch of the writes of repr, for pebble's memtable:
// with ids set, but its retry records; with runs set, but the runs of the
// appends in the frame, of count events from position first (runs.go).
func withoutIDs(db *pebble.DB, repr []byte, ids, runs bool, first uint64, count int) (*pebble.Batch, error) {
	b := db.NewBatch()
	r := batchrepr.Read(repr)
	for {
		kind, k, v, ok, err := r.Next()
		skip := ids && ok && len(k) > 0 && k[0] == prefixID
		if err == nil && ok && runs && len(k) > 0 && k[0] == prefixRun && kind == pebble.InternalKeyKindSet {
			var rn run
			if rn, err = decodeRun(k, v); err == nil {
				skip = ownRun(rn, first, count)
			}
		}
		if err == nil && ok && !skip {
			switch kind {
			case pebble.InternalKeyKindSet:
				err = b.Set(k, v, nil)
			case pebble.InternalKeyKindDelete:
				err = b.Delete(k, nil)
			default:
				err = fmt.Errorf("a record of kind %v", kind)
			}
		}
		if err != nil {
			_ = b.Close()
			return nil, err
		}
		if !ok {
			return b, nil
		}
	}
}
