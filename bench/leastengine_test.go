package bench

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/internal/cputime"
	"github.com/cairndb/cairn/internal/tiered"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// BenchmarkLeastEngine measures how near to the raw file an embedded
// engine of cairn's contract can come at W2's shape (one durable 256-byte
// event per append, each writer on its own stream with an exact expected
// version) on the machine it runs on. Each run makes b.N appends six ways
// in turn, so that -count gives interleaved rounds:
//
//   - raw: the raw baseline of cairn bench ([FileBaseline]);
//   - least: the least such an engine does, laid out as diskstore's
//     group commit (a committer that takes every request waiting, checks
//     and writes them, and a syncer that syncs what was written while the
//     committer goes on, then answers the writers). The committer checks
//     each append's expected version and event ID, encodes the event with
//     its stream, version, position, time and a CRC-32C into the group's
//     frame, files it in an index, and writes the frame to a log whose
//     space was written with zeros ahead. Its index is Go maps in memory,
//     never written to disk: less than any engine does that reopens
//     without reading its whole log, so what it reaches bounds engines of
//     this layout from above;
//   - pebble: the least engine with pebble as its index, configured as
//     diskstore's (no write-ahead log of its own, a 32 MiB memtable, L0
//     compacted at eight tables): the committer also applies each group's
//     index writes, a key for the stream's new version and one for the
//     event's ID, to pebble, which flushes and compacts them behind;
//   - bulk: the same, but the committer adds the index writes to one
//     large batch, which another goroutine applies to pebble once it holds
//     16 MiB (pebble then takes it whole as a memtable, without inserting
//     its writes one by one); the Go maps answer the committer's checks
//     meanwhile. Reads of the index would need to see the batch not yet
//     applied: this arm measures what pebble costs as an index written in
//     bulk, not an engine that could serve reads;
//   - tiered: the least engine with its index on disk in the tables of
//     package internal/tiered: its Go maps answer the committer, and each
//     append also adds two entries to those in memory, a run record
//     (first position, count, segment, offset and length of its records)
//     under its stream and version, and its event ID's record, kept by
//     stream and in commit order (ixMem); another goroutine sorts each
//     256Ki entries and adds them to the set as a table, synced, and the set merges eight tables of a tier into
//     one of the next behind (each entry rewritten once per eight times
//     the index grows). What an index kept in memory on the commit path
//     and written to disk in bulk off it costs, bar its reads;
//   - disk: W2 of cairn bench on the embedded engine (diskstore), through
//     the Store.
//
// It reports each one's appends/s, the process's CPU per append
// (raw-cpu-µs/op and so on) and, but for raw, its rate against raw's
// (least/raw and so on). The arms that write an index to disk write what
// they still hold after the timed part, so that their CPU counts the
// whole index: pebble's compactions still to come aside, the tiered
// arm's merges included.
//
//	go test -run '^$' -bench LeastEngine -benchtime 256000x -count 5 ./bench
func BenchmarkLeastEngine(b *testing.B) {
	for _, writers := range []int{64, 256} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) {
			appends := (b.N + writers - 1) / writers
			ctx := context.Background()
			arms := []string{"raw", "least", "pebble", "bulk", "tiered", "disk"}
			rate := make([]float64, len(arms))
			for i, name := range arms {
				dir := b.TempDir()
				cpu := cputime.Process()
				var elapsed time.Duration
				var err error
				switch name {
				case "raw":
					elapsed, err = rawAppends(ctx, dir, writers, appends)
				case "least":
					elapsed, err = leastEngine(dir, writers, appends, indexNone)
				case "pebble":
					elapsed, err = leastEngine(dir, writers, appends, indexPebble)
				case "bulk":
					elapsed, err = leastEngine(dir, writers, appends, indexBulk)
				case "tiered":
					elapsed, err = leastEngine(dir, writers, appends, indexTiered)
				case "disk":
					elapsed, err = diskW2(ctx, dir, writers, appends)
				}
				if err != nil {
					b.Fatal(name, ": ", err)
				}
				n := float64(writers * appends)
				rate[i] = n / elapsed.Seconds()
				b.ReportMetric(rate[i], name+"-appends/s")
				b.ReportMetric(float64((cputime.Process()-cpu).Nanoseconds())/1e3/n, name+"-cpu-µs/op")
			}
			for i, name := range arms[1:] {
				b.ReportMetric(rate[i+1]/rate[0], name+"/raw")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

func rawAppends(ctx context.Context, dir string, writers, appends int) (time.Duration, error) {
	base, err := NewFileBaseline(dir)
	if err != nil {
		return 0, err
	}
	defer base.Close()
	_, elapsed, err := base.Append(ctx, writers, appends, 1, EventBytes)
	return elapsed, err
}

// diskW2 runs W2 as cairn bench does, on a new embedded store in dir, and
// returns the time its appends took.
func diskW2(ctx context.Context, dir string, writers, appends int) (time.Duration, error) {
	res, err := Run(ctx, Config{ // Run closes the store at its end
		Open: func(context.Context) (*cairn.Store, error) {
			db, err := diskstore.Open(dir, diskstore.Options{})
			if err != nil {
				return nil, err
			}
			return cairn.NewStore(db, cairn.Options{}), nil
		},
		Workloads: []string{"W2"},
		W2Writers: writers,
		W2Appends: appends,
		Out:       io.Discard,
	})
	if err != nil {
		return 0, err
	}
	for _, r := range res {
		if r.Workload == "W2" && r.Unit == "events/s" {
			return time.Duration(float64(writers*appends) / r.Value * float64(time.Second)), nil
		}
	}
	return 0, errors.New("W2 reported no throughput")
}

// leastReq is one append to the least engine: the writer's, reused for
// each of its appends.
type leastReq struct {
	stream   string
	expected int64 // the stream's last version; -1: it must not exist
	id       [16]byte
	typ      string
	data     []byte
	pos      uint64 // the event's position, once written
	err      error
	done     chan struct{}
}

var errLeastConflict = errors.New("wrong expected version")

// leastIndex is how the least engine keeps its index.
type leastIndex int

const (
	indexNone   leastIndex = iota // Go maps alone
	indexPebble                   // and pebble, each group's writes applied
	indexBulk                     // and pebble, in batches of 16 MiB
	indexTiered                   // and internal/tiered's tables, merged eight at a time
)

// leastEngine makes appends appends from each of writers through the
// least engine (see BenchmarkLeastEngine), its log in dir, its index kept
// as idx says, and returns the time they took.
func leastEngine(dir string, writers, appends int, idx leastIndex) (time.Duration, error) {
	const size = EventBytes
	f, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zeros := make([]byte, 1<<20)
	for range (writers*appends*(size+64))>>20 + 1 {
		if _, err := f.Write(zeros); err != nil {
			return 0, err
		}
	}
	if err := fdatasync(f); err != nil {
		return 0, err
	}

	var index *pebble.DB
	if idx == indexPebble || idx == indexBulk {
		po := &pebble.Options{
			MemTableSize:          32 << 20,
			FormatMajorVersion:    pebble.FormatNewest,
			DisableWAL:            true,
			Logger:                quietLogger{},
			L0CompactionThreshold: 8,
			L0StopWritesThreshold: 24,
		}
		for i := range po.Levels {
			po.Levels[i].BlockSize = 32 << 10
			po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
			po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.FastestCompression }
		}
		if index, err = pebble.Open(filepath.Join(dir, "index"), po); err != nil {
			return 0, err
		}
		defer index.Close()
	}

	// bulk: full batches, applied by a goroutine of their own.
	full := make(chan *pebble.Batch, 1)
	var applier sync.WaitGroup
	var applyErr error
	applier.Go(func() {
		for b := range full {
			if err := index.Apply(b, pebble.NoSync); err != nil && applyErr == nil {
				applyErr = err
			}
			b.Close()
		}
	})

	// tiered: full batches of entries, sorted and added to the set by a
	// goroutine of their own, merged by the set's.
	var set *tiered.Set
	if idx == indexTiered {
		if set, err = tiered.Open(filepath.Join(dir, "index"), tiered.Options{}); err != nil {
			return 0, err
		}
		defer set.Close()
	}
	entries := make(chan *ixMem, 1)
	var filer sync.WaitGroup
	var fileErr error
	filer.Go(func() {
		for m := range entries {
			if err := set.Add(binary.BigEndian.AppendUint64(nil, m.next), m.sorted()); err != nil && fileErr == nil {
				fileErr = err
			}
		}
	})

	reqs := make(chan *leastReq, writers)
	toSync := make(chan []*leastReq, 1) // one group waits while one syncs
	var stages sync.WaitGroup
	stages.Go(func() { // the committer
		defer close(toSync)
		var bulk *pebble.Batch
		if idx == indexBulk {
			bulk = index.NewBatch()
			defer func() { full <- bulk }() // the rest, applied after the run
		}
		var ix *ixMem
		if idx == indexTiered {
			ix = newIxMem()
			defer func() { entries <- ix }() // the rest, written after the run
		}
		heads := map[string]int64{}
		streams := map[string][]uint64{}
		ids := map[[16]byte]uint64{}
		table := crc32.MakeTable(crc32.Castagnoli)
		var off int64
		var pos uint64
		frame := make([]byte, 0, 1<<20)
		var key, val []byte
		for r := range reqs {
			group := []*leastReq{r}
		gather:
			for {
				select {
				case r, ok := <-reqs:
					if !ok {
						break gather
					}
					group = append(group, r)
				default:
					break gather
				}
			}
			now := time.Now().UnixMicro()
			frame = frame[:0]
			batch := bulk
			if idx == indexPebble {
				batch = index.NewBatch()
			}
			for _, r := range group {
				last, ok := heads[r.stream]
				if !ok {
					last = -1
				}
				if last != r.expected {
					r.err = errLeastConflict
					continue
				}
				if p, dup := ids[r.id]; dup {
					r.pos = p // a retry: its first result
					continue
				}
				rec := len(frame)
				frame = binary.LittleEndian.AppendUint32(frame, 0) // its length, set below
				frame = binary.LittleEndian.AppendUint64(frame, pos)
				frame = binary.AppendUvarint(frame, uint64(last+1))
				frame = binary.AppendVarint(frame, now)
				frame = binary.AppendUvarint(frame, uint64(len(r.stream)))
				frame = append(frame, r.stream...)
				frame = binary.AppendUvarint(frame, uint64(len(r.typ)))
				frame = append(frame, r.typ...)
				frame = append(frame, r.id[:]...)
				frame = binary.AppendUvarint(frame, uint64(len(r.data)))
				frame = append(frame, r.data...)
				binary.LittleEndian.PutUint32(frame[rec:], uint32(len(frame)-rec-4))
				frame = binary.LittleEndian.AppendUint32(frame, crc32.Checksum(frame[rec:], table))
				heads[r.stream] = last + 1
				streams[r.stream] = append(streams[r.stream], pos)
				ids[r.id] = pos
				if ix != nil {
					ix.runs[r.stream] = append(ix.runs[r.stream], ixRun{version: last + 1, pos: pos, off: uint64(off) + uint64(rec), len: uint64(len(frame) - rec)})
					ix.ids = append(ix.ids, ixID{binary.BigEndian.Uint64(r.id[:]), binary.BigEndian.Uint64(r.id[8:]), pos})
					ix.entries += 2
					ix.next = pos + 1
				}
				if batch != nil {
					val = binary.BigEndian.AppendUint64(val[:0], pos)
					key = append(append(append(key[:0], 'r'), r.stream...), 0)
					key = binary.BigEndian.AppendUint64(key, uint64(last+1))
					if err := batch.Set(key, val, nil); err != nil {
						r.err = err
						continue
					}
					key = append(append(key[:0], 'i'), r.id[:]...)
					if err := batch.Set(key, val, nil); err != nil {
						r.err = err
						continue
					}
				}
				r.pos = pos
				pos++
			}
			switch {
			case idx == indexPebble:
				err := index.Apply(batch, pebble.NoSync)
				batch.Close()
				if err != nil {
					for _, r := range group {
						r.err = err
					}
				}
			case idx == indexBulk && bulk.Len() >= 16<<20:
				full <- bulk
				bulk = index.NewBatch()
			case ix != nil && ix.entries >= 256<<10:
				entries <- ix
				ix = newIxMem()
			}
			if _, err := f.WriteAt(frame, off); err != nil {
				for _, r := range group {
					r.err = err
					r.done <- struct{}{}
				}
				continue
			}
			off += int64(len(frame))
			toSync <- group
		}
	})
	stages.Go(func() { // the syncer
		for group := range toSync {
			// Whatever was written since joins this sync.
		more:
			for {
				select {
				case g, ok := <-toSync:
					if !ok {
						break more
					}
					group = append(group, g...)
				default:
					break more
				}
			}
			err := fdatasync(f)
			for _, r := range group {
				if err != nil {
					r.err = err
				}
				r.done <- struct{}{}
			}
		}
	})

	var failed error
	var failOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := &leastReq{stream: fmt.Sprint("w", w), expected: -1, typ: "E", data: make([]byte, size), done: make(chan struct{}, 1)}
			for k := range appends {
				binary.BigEndian.PutUint64(r.id[:], uint64(k))
				binary.BigEndian.PutUint64(r.id[8:], uint64(w))
				reqs <- r
				<-r.done
				if r.err != nil {
					failOnce.Do(func() { failed = r.err })
					return
				}
				r.expected++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(reqs)
	stages.Wait()
	close(full)
	applier.Wait()
	close(entries)
	filer.Wait()
	if failed == nil {
		failed = applyErr
	}
	if failed == nil {
		failed = fileErr
	}
	if failed == nil && set != nil {
		// The merges the run called for are done, so that the CPU counted
		// is that of the whole index.
		failed = set.Settle()
	}
	if index != nil && failed == nil {
		// The index writes still in memory reach the disk, so that the CPU
		// counted is that of the whole index (bar compactions to come).
		failed = index.Flush()
	}
	return elapsed, failed
}

// ixMem is the tiered arm's index entries not yet on disk, kept as an
// engine would keep them to answer reads: each stream's runs in version
// order, and the event IDs' records in commit order. Sorting them for the
// set then takes a sort of the stream names and one of the IDs, which
// time-ordered IDs leave almost sorted.
type ixMem struct {
	runs    map[string][]ixRun
	ids     []ixID
	entries int
	next    uint64 // the position after the last append it holds
}

type ixRun struct {
	version       int64
	pos, off, len uint64
}

// ixID is an event ID's record: the ID as two integers, which sort it
// as its bytes sort, and the position.
type ixID struct {
	hi, lo, pos uint64
}

func newIxMem() *ixMem { return &ixMem{runs: map[string][]ixRun{}} }

// sorted returns the entries in key order: the IDs' records ('i' ‖ id),
// then the runs ('r' ‖ stream ‖ 0 ‖ version); each run record holds its
// first position, count, segment, offset and length of its records, as
// diskstore's.
func (m *ixMem) sorted() iter.Seq[tiered.Entry] {
	slices.SortFunc(m.ids, func(a, b ixID) int {
		if c := cmp.Compare(a.hi, b.hi); c != 0 {
			return c
		}
		return cmp.Compare(a.lo, b.lo)
	})
	names := slices.Sorted(maps.Keys(m.runs))
	return func(yield func(tiered.Entry) bool) {
		var key, val []byte
		for _, x := range m.ids {
			key = binary.BigEndian.AppendUint64(append(key[:0], 'i'), x.hi)
			key = binary.BigEndian.AppendUint64(key, x.lo)
			val = binary.BigEndian.AppendUint64(val[:0], x.pos)
			if !yield(tiered.Entry{Key: key, Value: val}) {
				return
			}
		}
		for _, name := range names {
			for _, r := range m.runs[name] {
				key = append(append(append(key[:0], 'r'), name...), 0)
				key = binary.BigEndian.AppendUint64(key, uint64(r.version))
				val = binary.AppendUvarint(val[:0], r.pos)
				val = binary.AppendUvarint(val, 1)
				val = binary.AppendUvarint(val, 1)
				val = binary.AppendUvarint(val, r.off)
				val = binary.AppendUvarint(val, r.len)
				if !yield(tiered.Entry{Key: key, Value: val}) {
					return
				}
			}
		}
	}
}

// quietLogger keeps pebble's notes out of the benchmark's output.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)         {}
func (quietLogger) Errorf(string, ...any)        {}
func (quietLogger) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
