package diskstore

import (
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Runs in memory (format 5). An append writes one run (runs.go's records:
// its stream, first version, positions and place in the log), and readers
// read them: a stream's read finds its runs by version. Inserted into
// pebble's memtable one by one, the runs of hundreds of streams written at
// once land all over its skiplist, and their insertions, flushes and
// compactions were most of what the index cost an append.
//
// So the runs go where the retry records go (ids.go). The committer keeps
// those it writes in memory, each stream's in version order (runGen), and
// hands them off with the retry records at each flush of the memtable: the
// ingester writes them, in key order (the streams sorted, each stream's
// runs already in order), as a table of their own that pebble ingests
// whole with the retry records' table and the ID mark. The ID mark thus
// says up to which frame the index holds every run and every retry record.
//
// Readers see the runs in memory beside pebble's. Each view holds, with its
// snapshot of pebble, the generations of runs that snapshot may lack: the
// one being written and those handed off and not known ingested (an ingest
// that finished before the snapshot was taken puts a generation in both,
// which reads of the same run from either agree on). A stream's runs in
// memory follow its runs in pebble (every run in memory is of a later
// append than every run in pebble but for those in both), and a view sees
// those at positions below its own (runGen's slices are only appended to,
// under its lock, so a reader that read a slice keeps reading it as it was).
//
// A frame's index writes still hold its runs: Open takes the runs of the
// frames after the ID mark into memory (frameRecords), and applies the rest
// of their index writes to pebble. Compaction's purge steps rewrite and
// remove runs of earlier appends: every run in memory is ingested before a
// step (settleRecords), the step's writes go to pebble's memtable as any
// other, and the memtable is flushed before the next ingest, which would
// overlap it (flushPurged).

// stagedRun is a run a group writes, kept in memory once the group's frame
// is in the log.
type stagedRun struct {
	stream string
	rn     run
}

// runGen is a generation of runs in memory: those written between two
// hand-offs, each stream's in version order. The committer adds to it
// until it hands it off; readers read it concurrently.
type runGen struct {
	mu      sync.RWMutex
	streams map[string][]run
	n       int
}

func newRunGen() *runGen { return &runGen{streams: map[string][]run{}} }

// add adds the runs of a group now in the log.
func (g *runGen) add(staged []stagedRun) {
	g.mu.Lock()
	for _, s := range staged {
		g.streams[s.stream] = append(g.streams[s.stream], s.rn)
	}
	g.n += len(staged)
	g.mu.Unlock()
}

// of returns stream's runs, in version order. The caller must not change
// them.
func (g *runGen) of(stream string) []run {
	g.mu.RLock()
	rs := g.streams[stream]
	g.mu.RUnlock()
	return rs
}

// size returns the number of runs in g.
func (g *runGen) size() int {
	if g == nil {
		return 0
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.n
}

// write writes the runs of g to w in key order: the streams sorted (a run's
// key is its stream, a NUL, then its version, so the keys of streams sort
// as the streams do), each stream's runs in version order. g is no longer
// added to.
func (g *runGen) write(set func(k, v []byte) error) error {
	g.mu.RLock()
	streams := make([]string, 0, len(g.streams))
	for s := range g.streams {
		streams = append(streams, s)
	}
	g.mu.RUnlock()
	slices.Sort(streams)
	var k, v []byte
	for _, s := range streams {
		for _, rn := range g.of(s) {
			k = appendRunKey(k[:0], s, rn.first)
			v = appendRun(v[:0], k, rn.pos, rn.count, rn.span)
			if err := set(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// memRuns are the runs in memory that a reader sees: those of gens, oldest
// first, at positions below next.
type memRuns struct {
	gens []*runGen
	next uint64
}

// of returns the runs of stream that m sees, in version order.
func (m memRuns) of(stream string) []run {
	var out []run
	for _, g := range m.gens {
		rs := g.of(stream)
		switch {
		case len(rs) == 0:
		case out == nil:
			out = rs
		default:
			out = append(slices.Clip(out), rs...)
		}
	}
	for len(out) > 0 && out[len(out)-1].pos >= m.next {
		out = out[:len(out)-1]
	}
	return out
}

// index is what a read of the index sees: pebble's state (a snapshot, or
// the database itself for the committer) and the runs in memory.
type index struct {
	pebble.Reader
	mem memRuns
}

// committed is the index the committer reads: pebble and every run in
// memory.
func (d *DB) committed() index {
	return index{Reader: d.pdb, mem: memRuns{gens: d.ids.gens, next: math.MaxUint64}}
}

// runIter reads a stream's runs: those in pebble, then those in memory.
type runIter struct {
	stream string
	it     *pebble.Iterator
	mem    []run
	inMem  bool // the current run is mem[mi]
	mi     int
}

func (ri *runIter) close() error {
	return ri.it.Close()
}

// decode decodes the run under the pebble iterator.
func (ri *runIter) decode() (run, error) {
	return decodeRun(ri.it.Key(), ri.it.Value())
}

// below reports whether rn, read from pebble, is of an append before those
// in memory (later ones are in memory too).
func (ri *runIter) below(rn run) bool {
	return len(ri.mem) == 0 || rn.first < ri.mem[0].first
}

// seek moves to the run with the greatest first version not above v.
func (ri *runIter) seek(v int64) (run, bool, error) {
	if len(ri.mem) > 0 && v >= ri.mem[0].first {
		ri.inMem = true
		ri.mi = sort.Search(len(ri.mem), func(i int) bool { return ri.mem[i].first > v }) - 1
		return ri.mem[ri.mi], true, nil
	}
	ri.inMem = false
	if !ri.it.SeekLT(runKey(ri.stream, v+1)) {
		return run{}, false, nil
	}
	rn, err := ri.decode()
	return rn, err == nil, err
}

// next moves to the run after the current one.
func (ri *runIter) next() (run, bool, error) {
	if ri.inMem {
		ri.mi++
		if ri.mi >= len(ri.mem) {
			return run{}, false, nil
		}
		return ri.mem[ri.mi], true, nil
	}
	if ri.it.Next() {
		rn, err := ri.decode()
		if err != nil || ri.below(rn) {
			return rn, err == nil, err
		}
	} else if err := ri.it.Error(); err != nil {
		return run{}, false, err
	}
	if len(ri.mem) == 0 {
		return run{}, false, nil
	}
	ri.inMem, ri.mi = true, 0
	return ri.mem[0], true, nil
}

// newRunIter returns a reader of stream's runs in ix.
func newRunIter(ix index, stream string) (*runIter, error) {
	it, err := ix.NewIter(runBounds(stream))
	if err != nil {
		return nil, wrapErr(err)
	}
	return &runIter{stream: stream, it: it, mem: ix.mem.of(stream)}, nil
}

// appendRunRecord appends to dst a set of key to value as a pebble batch
// encodes it (batchrepr): the kind, then the key and the value, each after
// its length.
func appendRunRecord(dst, key, value []byte) []byte {
	dst = append(dst, byte(pebble.InternalKeyKindSet))
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}

// settle has the index hold every frame replayed, at the end of a writable
// Open: in a store of format 4 or before, the runs the replay applied to
// the memtable are flushed first, then the retry records and runs in
// memory are ingested, and only then is the store recorded as of format 5
// (a crash in between leaves a store of its format, whole).
func (d *DB) settle() error {
	if d.runsInPebble {
		d.unflushed = 0
		if err := d.pdb.Flush(); err != nil {
			return err
		}
	}
	if err := d.settleIDs(); err != nil {
		return err
	}
	if !d.runsInPebble || d.migrate {
		return nil // a store of format 2 is converted by migrate
	}
	if err := d.pdb.Set(formatKey, formatValue(FormatVersion), pebble.NoSync); err != nil {
		return err
	}
	if err := d.pdb.Flush(); err != nil {
		return err
	}
	d.runsInPebble = false
	return nil
}

// settleRecords has the index hold every run and retry record written, so
// that none is in memory: before a purge step, which reads the runs it
// rewrites from pebble. Committer only.
func (d *DB) settleRecords() error {
	d.pipe.drain()
	if err := d.failed(); err != nil {
		return err
	}
	return d.settleIDs()
}
