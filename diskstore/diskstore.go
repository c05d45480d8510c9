package diskstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// ErrFailed is matched (with errors.Is) by the errors of writes refused
// because an earlier write or fsync failed, and by [DB.Health] afterwards. A
// store that failed keeps serving reads of what was durable; reopen it (after
// fixing the disk) to write again.
var ErrFailed = errors.New("diskstore: a disk write or fsync failed; the store refuses writes until it is reopened")

// ErrIndexDamaged is matched (with errors.Is) by the error of an [Open]
// that found the index (pebble's files in the store's directory) damaged or
// missing while the log is there; so is [cairn.ErrCorrupt]. The error's text
// says how to recover: an index can be rebuilt from a log that was never
// compacted.
var ErrIndexDamaged = errors.New("diskstore: the index is damaged")

// DB is the embedded engine: a [cairn.Backend] over a log of events in
// segment files and a pebble database that indexes them, in one directory.
// It implements every optional interface of the backend contract.
//
// # Durability
//
// Every write (appends, batches, commits with projections, deletes,
// truncations, snapshots) is one frame appended to the log and synced
// before the call returns, unless [Options.NoSync] is set. If a write or
// sync fails, the call returns an error matching [ErrFailed] and so does
// every later write and [DB.Health]: the engine never carries on after a
// failed fsync, because the kernel may have dropped the dirty pages it
// failed to write.
//
// # Concurrency
//
// A DB is safe for concurrent use. Writes are handed to a single committer
// goroutine, which owns the stream heads (last version and state, cached in
// memory and loaded lazily), checks expected versions, assigns versions and
// positions, encodes every write waiting at that moment into one frame
// appended to the log, and applies the frame's index writes to pebble's
// memtable. A second goroutine, the syncer, syncs the log for all the
// frames appended since its last sync (group commit), then publishes their
// state and answers their writers, in log order.
//
// Readers read from a pebble snapshot of the index taken after each group
// and published once the group is durable, so they never see a write before
// it is durable, never see half of a group, and never see position N+1
// before N.
//
// # Locks
//
// viewMu guards view and live; openMu guards damage and the setting of
// opened while Open runs; pipe.subMu guards the submission of writes;
// log's own mutex guards its map of segment files. Each is a leaf: no
// code holds two of them at once, so there is no order to keep. Every
// other field is set by Open, atomic, or owned by one goroutine (the
// committer or the syncer), as marked.
type DB struct {
	pdb  *pebble.DB
	po   *pebble.Options
	dir  string
	log  *seglog.Log
	opts Options
	lg   *slog.Logger

	// stats counts the group commit's work (CommitStats).
	stats commitCounters

	// failure is set once a write or fsync failed.
	failure atomic.Pointer[error]
	// opened is set once Open has succeeded; an Open that fails never
	// sets it. Until then a failure is not logged (Open returns it), and
	// the first damage pebble reports is kept in damage (guarded by
	// openMu, as is the setting of opened), for Open to fail with.
	opened atomic.Bool
	openMu sync.Mutex
	damage error
	// compacting holds a token while a Compact runs.
	compacting chan struct{}
	// filterBuilds counts the goroutines building ID filters
	// (idfilter.go), which stop when filterStop is closed (Close).
	filterBuilds sync.WaitGroup
	filterStop   chan struct{}
	// migrate is set by Open for a store of format 2, whose events it
	// files in the index (migrate.go).
	migrate bool
	// idsInIndex: the store is of a format (3 or 2) whose index holds the
	// retry records of every frame up to its marker (see markIDs).
	idsInIndex bool
	// runsInPebble: the store is of a format (4 or before) whose index
	// holds the runs of every frame up to its marker, and whose replay
	// applies them to the memtable, until Open converts it (runs.go).
	runsInPebble bool
	// cut is set once compaction has removed events from the log (Open
	// reads it from the index): from then on, an entry of an index list
	// may outlive its event, and reads through the index check each
	// event's locator (see liveness). Until then every entry's event is
	// there, which spares reads the check.
	cut atomic.Bool

	// sealed counts (at most) the memtables the committer had pebble set
	// aside for flushing; flushed counts those pebble flushed, in the
	// flush jobs that began once Open was done (counted). Pebble must
	// never flush more: a memtable it set aside by itself could hold a
	// write that is not durable yet.
	sealed, flushed atomic.Int64
	counting        atomic.Bool
	counted         sync.Map // flush job IDs begun while counting

	// The commit pipeline: the committer and syncer goroutines.
	pipe *pipeline

	// The read view.
	viewMu  sync.RWMutex
	view    *view
	live    map[*view]struct{} // views not released yet
	readers sync.WaitGroup

	// Owned by the committer goroutine.
	heads      map[string]*head
	lists      listHeads   // the heads of the index's lists (filing.go)
	filing     filing      // the index entries of the group being committed
	writes     indexWrites // the index writes of the group being committed
	evs        []groupEvent
	staged     []stagedID  // the retry records of the group being committed
	stagedRuns []stagedRun // its runs
	runRecs    []byte      // and their index writes
	groupIDs   groupIDs    // the first IDs of the group being committed
	next       uint64      // next global position
	frameBuf   []byte
	unflushed  uint64 // memSize of the index writes in pebble's memtable
	memCap     uint64 // at most the capacity of pebble's memtable (see growMemtable)
	grown      bool   // growMemtable was called
	written    marker // the marker of the last frame written (or replayed)
	// recent tells the IDs that have no retry record, for most new
	// appends, without a lookup (recentids.go).
	recent recentIDs
	// ids holds the retry records not in the index yet (ids.go).
	ids retryRecords
	// Owned by the syncer goroutine.
	//
	// anchor is a snapshot older than the read views. Pebble looks for
	// compactions to schedule whenever its earliest snapshot is closed;
	// the anchor keeps that from happening after every group, and is
	// renewed every anchorGroups groups and after each purge step (so
	// that compaction can drop what the step deleted).
	anchor *pebble.Snapshot
	groups int

	// backups admits one backup at a time, and keeps compaction from
	// freeing parts of the log while a backup copies it (backup.go).
	backups gate
}

var (
	_ cairn.Backend         = (*DB)(nil)
	_ cairn.SizedReader     = (*DB)(nil)
	_ cairn.BatchAppender   = (*DB)(nil)
	_ cairn.Truncater       = (*DB)(nil)
	_ cairn.Tombstoner      = (*DB)(nil)
	_ cairn.Compacter       = (*DB)(nil)
	_ cairn.DiskSizer       = (*DB)(nil)
	_ cairn.HealthChecker   = (*DB)(nil)
	_ cairn.Snapshotter     = (*DB)(nil)
	_ cairn.TxCommitter     = (*DB)(nil)
	_ cairn.ReadModelReader = (*DB)(nil)
	_ cairn.IndexReader     = (*DB)(nil)
	_ cairn.Querier         = (*DB)(nil)
	_ cairn.GroupCommitter  = (*DB)(nil)
)

// reservedMemtables is how many memtables pebble's cache is made larger
// by: pebble reserves each memtable's size in the block cache, and holds
// two as a rule (the one written and the one being flushed, or one set
// aside until its readers are gone). A cache of CacheBytes alone held no
// block at all once the engine's memtables had grown to 2 × 32 MiB: every
// index read (among them the retry check of each append that brings its
// own event IDs) read, checked and decompressed its blocks from the file.
const reservedMemtables = 2

// Open opens the store in dir, creating it if it does not exist. The index
// (pebble) lives in dir, the log in dir/log.
func Open(dir string, opts Options) (*DB, error) {
	opts.ensureDefaults()
	d := &DB{
		dir:        dir,
		opts:       opts,
		lg:         opts.Logger,
		heads:      map[string]*head{},
		live:       map[*view]struct{}{},
		compacting: make(chan struct{}, 1),
		filterStop: make(chan struct{}),
	}
	d.pipe = newPipeline(d, opts.MaxGroupEvents)
	if opts.VisibleBeforeSync && !opts.NoSync {
		d.pipe.syncBehind(opts.SyncInterval)
	}
	po := d.pebbleOptions()
	if opts.ReadOnly {
		if _, err := opts.FS.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("diskstore: open %s: %w", dir, ErrNoStore)
		}
		po.ReadOnly = true
		po.FS = sharedLockFS{po.FS}
	} else if err := refuseBackupDir(opts.FS, dir); err != nil {
		return nil, err
	}
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		return nil, d.openError(dir, indexFault{err})
	}
	d.pdb, d.po = pdb, po
	if !opts.ReadOnly {
		err = d.removeIngestLeftovers()
	}
	if err == nil {
		err = d.init()
	}
	if err != nil {
		_ = pdb.Close()
		return nil, d.openError(dir, err)
	}
	logDir := opts.FS.PathJoin(dir, "log")
	if _, serr := opts.FS.Stat(logDir); opts.ReadOnly && errors.Is(serr, os.ErrNotExist) {
		err = ErrNoStore // seglog.Open would create it
	} else if d.log, err = seglog.Open(opts.FS, logDir, opts.SegmentBytes, opts.NoSync); err == nil {
		err = d.recover()
	}
	if err == nil && d.migrate {
		// A store of format 2: its events are filed in the index once.
		if opts.ReadOnly {
			err = errNeedsIndex{}
		} else {
			err = d.buildIndex()
		}
	}
	if err == nil {
		// The replay may have filled memtables, which pebble flushes as
		// it sees fit: nothing it replays is in flight. Count from here
		// on.
		if err = d.flushUnlessReadOnly(); err != nil {
			err = indexFault{err}
		}
	}
	// Damage pebble reported while opening (in its background jobs too,
	// in files the opening did not need) fails Open. Once Open has
	// succeeded, damage fails the store's writes, and is logged.
	d.openMu.Lock()
	if err == nil && d.damage != nil {
		err = indexFault{d.damage}
	}
	if err == nil {
		err = d.failed()
	}
	d.opened.Store(err == nil)
	d.openMu.Unlock()
	if err != nil {
		if d.log != nil {
			_ = d.log.Close()
		}
		_ = pdb.Close()
		return nil, d.openError(dir, err)
	}
	d.measureMemtable()
	d.unflushed = 0
	d.counting.Store(true)
	d.anchor = d.pdb.NewSnapshot()
	d.publish(d.pdb.NewSnapshot(), d.ids.gens, d.next)
	if !opts.ReadOnly {
		d.startIngester()
	}
	d.pipe.start(d.next)
	return d, nil
}

// pebbleOptions returns the options the index is opened with: [Open] and
// [Check] open it alike.
func (d *DB) pebbleOptions() *pebble.Options {
	opts := d.opts
	po := &pebble.Options{
		FS:                 opts.FS,
		CacheSize:          opts.CacheBytes + reservedMemtables*int64(opts.MemTableBytes),
		MemTableSize:       opts.MemTableBytes,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{d},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				if pebble.IsCorruptionError(err) && d.damagedWhileOpening(err) {
					return
				}
				d.lg.Warn("diskstore: background error", "err", oneLine(err))
			},
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				err := fmt.Errorf("%w: %s: %w", cairn.ErrCorrupt, info.Path, info.Details)
				if !d.damagedWhileOpening(err) {
					d.fail(err)
				}
			},
			FlushBegin: func(info pebble.FlushInfo) {
				if d.counting.Load() {
					d.counted.Store(info.JobID, true)
				}
			},
			FlushEnd: func(info pebble.FlushInfo) {
				if _, ok := d.counted.LoadAndDelete(info.JobID); !ok || info.Err != nil || info.Ingest {
					return
				}
				d.noteFlushed(int64(info.Input))
			},
		},
		CompactionConcurrencyRange: func() (int, int) { return 1, 2 },
		// Every flushed memtable holds runs of most streams written
		// since the last, so each compaction of L0 into the level below
		// rewrites most of that level's runs. Compacting once eight
		// flushes have gathered rather than pebble's four halves how
		// often that happens: under 256 writers of single-event appends
		// it took the store's CPU per append from 9.1 to 7.6 µs
		// (BenchmarkAppendWriters, 600,000 appends), at the price of up
		// to twice as many tables for an iterator to merge before
		// compaction catches up. Writes stop at three times as many, as
		// with pebble's defaults.
		L0CompactionThreshold: 8,
		L0StopWritesThreshold: 24,
		// The log is the index's write-ahead log: pebble keeps none, and
		// its memtable reaches the disk when the committer has it flushed.
		DisableWAL: true,
	}
	for i := range po.Levels {
		// Bloom filters spare the lookups of event IDs and streams that
		// are not there (every new append's retry check) a read of each
		// level.
		po.Levels[i].BlockSize = 32 << 10
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		// MinLZ (pebble's fastest profile) costs less CPU than the
		// default Snappy on every flush and compaction.
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.FastestCompression }
	}
	return po
}

// fail records the first failure of a write; later writes are refused.
func (d *DB) fail(err error) error {
	werr := fmt.Errorf("%w: %w", ErrFailed, err)
	if d.failure.CompareAndSwap(nil, &werr) && d.opened.Load() {
		// (An Open that fails returns the error rather than log it.)
		d.lg.Error("diskstore: write failed; refusing further writes", "err", err)
	}
	return *d.failure.Load()
}

func (d *DB) failed() error {
	if p := d.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// Close waits for pending writes, then closes the store. Calls after Close
// fail with [cairn.ErrClosed].
func (d *DB) Close() error {
	if err := d.pipe.close(); err != nil {
		return err
	}
	// The committer has exited: no filter build starts after this one,
	// and no retry records are handed off.
	close(d.filterStop)
	d.filterBuilds.Wait()
	d.stopIngester()

	d.viewMu.Lock()
	old := d.view
	d.view = nil
	d.viewMu.Unlock()
	old.release()
	d.readers.Wait()
	_ = d.anchor.Close()
	var err error
	if d.failed() == nil && !d.opts.ReadOnly {
		// Every write was answered: the memtable holds only durable
		// writes. Flushing it, and ingesting the retry records in
		// memory, spares the next Open a replay.
		err = d.settleIDs()
		d.sealed.Add(1)
		err = errors.Join(err, wrapErr(d.pdb.Flush()))
	}
	return errors.Join(err, d.log.Close(), d.pdb.Close())
}

// DiskBytes returns the space the store's files take on disk: the log's
// segments and the index's logs, tables and manifests.
func (d *DB) DiskBytes(ctx context.Context) (int64, error) {
	v, err := d.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer d.releaseView(v)
	return int64(d.pdb.Metrics().DiskSpaceUsage()) + d.log.DiskBytes(), nil
}

// Metrics returns pebble's metrics, for diagnostics.
func (d *DB) Metrics() *pebble.Metrics { return d.pdb.Metrics() }
