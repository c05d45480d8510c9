package diskstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore/internal/seglog"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/google/uuid"
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
// viewMu guards view and live; pipe.subMu guards the submission of writes;
// log's own mutex guards its map of segment files. Each is a leaf: no
// code holds two of them at once, so there is no order to keep. Every
// other field is set by Open, atomic, or owned by one goroutine (the
// committer or the syncer), as marked.
type DB struct {
	pdb  *pebble.DB
	log  *seglog.Log
	opts Options
	lg   *slog.Logger

	// failure is set once a write or fsync failed.
	failure atomic.Pointer[error]
	// opened is set once Open has succeeded; an Open that fails never
	// sets it. Until then a failure is not logged (Open returns it), and
	// the first damage pebble reports is kept in damage (guarded by
	// openMu, as is the setting of opened), for Open to fail with.
	opened atomic.Bool
	openMu sync.Mutex
	damage error

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
	heads     map[string]*head
	next      uint64 // next global position
	frameBuf  []byte
	unflushed uint64 // memSize of the index writes in pebble's memtable
	memCap    uint64 // at most the capacity of pebble's memtable (see growMemtable)
	written   marker // the marker of the last frame written
	// maxID is at least the greatest event ID with a retry record. An
	// append whose first ID is greater (the common case with time-ordered
	// IDs) cannot be a retry, and skips the lookup.
	maxID uuid.UUID
	// Owned by the syncer goroutine.
	//
	// anchor is a snapshot older than the read views. Pebble looks for
	// compactions to schedule whenever its earliest snapshot is closed;
	// the anchor keeps that from happening after every group, and is
	// renewed every anchorGroups groups and after each purge step (so
	// that compaction can drop what the step deleted).
	anchor *pebble.Snapshot
	groups int
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
)

// Open opens the store in dir, creating it if it does not exist. The index
// (pebble) lives in dir, the log in dir/log.
func Open(dir string, opts Options) (*DB, error) {
	opts.ensureDefaults()
	d := &DB{
		opts:  opts,
		lg:    opts.Logger,
		heads: map[string]*head{},
		live:  map[*view]struct{}{},
	}
	d.pipe = newPipeline(d, opts.MaxGroupEvents)
	po := &pebble.Options{
		FS:                 opts.FS,
		CacheSize:          opts.CacheBytes,
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
	if opts.ReadOnly {
		if _, err := opts.FS.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("diskstore: open %s: %w", dir, ErrNoStore)
		}
		po.ReadOnly = true
		po.FS = sharedLockFS{po.FS}
	}
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		return nil, d.openError(dir, indexFault{err})
	}
	d.pdb = pdb
	if err := d.init(); err != nil {
		_ = pdb.Close()
		return nil, d.openError(dir, err)
	}
	logDir := opts.FS.PathJoin(dir, "log")
	if _, serr := opts.FS.Stat(logDir); opts.ReadOnly && errors.Is(serr, os.ErrNotExist) {
		err = ErrNoStore // seglog.Open would create it
	} else if d.log, err = seglog.Open(opts.FS, logDir, opts.SegmentBytes, opts.NoSync); err == nil {
		err = d.recover()
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
	if err := d.growMemtable(); err != nil {
		_ = d.log.Close()
		_ = pdb.Close()
		return nil, fmt.Errorf("diskstore: open %s: %w", dir, wrapErr(err))
	}
	d.unflushed = 0
	d.counting.Store(true)
	d.anchor = d.pdb.NewSnapshot()
	d.publish(d.pdb.NewSnapshot(), d.next)
	d.pipe.start(d.next)
	return d, nil
}

// init checks the format key, writing it in a new store.
func (d *DB) init() error {
	v, closer, err := d.pdb.Get(formatKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		it, err := d.pdb.NewIter(nil)
		if err != nil {
			return indexFault{err}
		}
		nonEmpty := it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return indexFault{err}
		}
		if nonEmpty {
			return fmt.Errorf("the directory holds a pebble database that is not a cairn store")
		}
		if d.opts.ReadOnly {
			return ErrNoStore
		}
		val := append([]byte(formatMagic), 0, 0, 0, FormatVersion)
		if err := d.pdb.Set(formatKey, seal(formatKey, val), pebble.NoSync); err != nil {
			return indexFault{err}
		}
		if err := d.pdb.Flush(); err != nil {
			return indexFault{err}
		}
	case err != nil:
		return indexFault{err}
	default:
		p, err := unseal(formatKey, v)
		ok := err == nil && len(p) == len(formatMagic)+4 && string(p[:len(formatMagic)]) == formatMagic
		var version uint32
		if ok {
			version = uint32(p[len(p)-4])<<24 | uint32(p[len(p)-3])<<16 | uint32(p[len(p)-2])<<8 | uint32(p[len(p)-1])
		}
		_ = closer.Close()
		if !ok {
			return indexFault{fmt.Errorf("%w: unreadable format record", cairn.ErrCorrupt)}
		}
		if version != FormatVersion {
			return fmt.Errorf("on-disk format version %d; this build reads version %d", version, FormatVersion)
		}
	}
	return nil
}

// recover brings the index up to date with the log: it replays the index
// writes of the frames after the one the index on disk last recorded (those
// still in pebble's memtable when the process or the machine stopped),
// finds the end of the log, and makes the last segment the one appended to.
func (d *DB) recover() error {
	m, ok, err := d.marker(d.pdb)
	if err != nil {
		return indexFault{err}
	}
	segs := d.log.Segments()
	if !ok {
		// The index holds no frame of the log: a new store, a crash
		// before the index was first flushed, or an index removed to be
		// rebuilt. The whole log is replayed, which only a log never
		// compacted allows: compaction frees the frames' index writes
		// and headers (a replay would take the first freed bytes for
		// the end of the log, and overwrite what follows) and removes
		// whole segments.
		if len(segs) > 0 && (segs[0] != 1 || d.log.Compacted()) {
			return errNoRebuild
		}
		m = marker{seg: 1}
	} else if err := d.log.Has(m.seg); err != nil {
		return err
	}
	var buf []byte
	seg, end, next := m.seg, m.end, m.next
	for len(segs) > 0 {
		size, err := d.log.Size(seg)
		if err != nil {
			return err
		}
		for {
			var frame []byte
			var whole bool
			frame, whole, err = d.log.ReadFrame(seg, end, size, buf)
			buf = frame
			if err != nil {
				return err
			}
			if !whole {
				if err := d.log.CheckTail(seg, end, size); err != nil {
					return err
				}
				break
			}
			fm, err := checkFrame(frame, seg, end, next)
			if err != nil {
				return err
			}
			next = fm.next
			if d.opts.ReadOnly {
				return ErrNeedsRecovery
			}
			b := d.pdb.NewBatch()
			if err := b.SetRepr(slices.Clone(seglog.FrameIndex(frame))); err != nil {
				return fmt.Errorf("%w: log segment %d offset %d: %v", cairn.ErrCorrupt, seg, end, err)
			}
			if err := d.pdb.Apply(b, pebble.NoSync); err != nil {
				return indexFault{err}
			}
			d.unflushed += memSize(b)
			_ = b.Close()
			end += int64(len(frame))
		}
		if err := d.log.Has(seg + 1); err != nil {
			break
		}
		seg, end = seg+1, 0
	}
	if !d.opts.ReadOnly {
		if err := d.log.StartAppending(seg, end); err != nil {
			return err
		}
	}
	// The committer's state is read from the index only now that it holds
	// every frame of the log: read before the replay, it would miss the
	// writes acknowledged after the index was last flushed.
	m, _, err = d.marker(d.pdb)
	if err != nil {
		return indexFault{err}
	}
	d.next = m.next
	if err := d.loadMaxID(); err != nil {
		return indexFault{err}
	}
	return nil
}

// loadMaxID finds the greatest event ID with a retry record. The committer
// skips the retry lookup of an append whose first ID is greater, so it
// must be called after the replay: an ID recorded in a replayed frame and
// missed here would make a retry of its append, or an append of the same ID
// to another stream, be written again.
func (d *DB) loadMaxID() error {
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixID}, UpperBound: []byte{prefixID + 1}})
	if err != nil {
		return wrapErr(err)
	}
	if it.Last() && len(it.Key()) == 17 {
		copy(d.maxID[:], it.Key()[1:])
	}
	return wrapErr(errors.Join(it.Error(), it.Close()))
}

// damagedWhileOpening keeps err, damage pebble reported, for Open to fail
// with, and reports true, unless Open has succeeded.
func (d *DB) damagedWhileOpening(err error) bool {
	d.openMu.Lock()
	defer d.openMu.Unlock()
	if d.opened.Load() {
		return false
	}
	if d.damage == nil {
		d.damage = err
	}
	return true
}

// indexFault marks an error of the index (pebble, or a record in it) met
// by Open, as opposed to one of the log, so that Open can say which is
// damaged.
type indexFault struct{ err error }

func (e indexFault) Error() string { return e.err.Error() }

func (e indexFault) Unwrap() error { return e.err }

// errNoRebuild is the error of a replay from the start of a compacted log.
var errNoRebuild = errors.New("the index is missing or empty and the log was compacted")

// indexError is the error of an Open that found the index damaged.
type indexError struct {
	msg   string
	cause error
}

func (e *indexError) Error() string { return e.msg }

func (e *indexError) Unwrap() error { return e.cause }

func (e *indexError) Is(target error) bool {
	return target == ErrIndexDamaged || target == cairn.ErrCorrupt
}

// openError returns the error of an Open of dir that failed with err. When
// the index is damaged (pebble reports corruption, or misses a file it
// lists), it says so in one line, and how to recover: move the index
// aside and have Open rebuild it from the log, unless the log was
// compacted.
func (d *DB) openError(dir string, err error) error {
	logDir := d.opts.FS.PathJoin(dir, "log")
	var fault indexFault
	switch {
	case errors.Is(err, errNoRebuild):
		return &indexError{msg: fmt.Sprintf("diskstore: open %s: the index is missing or empty, and the log (%s) was compacted, so the index cannot be rebuilt from it: "+
			"put back the index's files (every entry of %s except the directory log) or restore the store from a backup", dir, logDir, dir)}
	case errors.As(err, &fault) && (pebble.IsCorruptionError(fault.err) || errors.Is(fault.err, os.ErrNotExist) || errors.Is(fault.err, cairn.ErrCorrupt)):
		cause := fault.err
		d.openMu.Lock()
		if d.damage != nil {
			cause = d.damage // it names the damaged file
		}
		d.openMu.Unlock()
		how := fmt.Sprintf("the log (%s) holds every event, and the index can be rebuilt from it: "+
			"move every entry of %s except the directory log elsewhere (keep them until the store has opened), then open the store again, which replays the whole log", logDir, dir)
		if seglog.Compacted(d.opts.FS, logDir) {
			how = fmt.Sprintf("the log (%s) was compacted, so the index cannot be rebuilt from it: restore the store from a backup", logDir)
		}
		return &indexError{msg: fmt.Sprintf("diskstore: open %s: the index is damaged (%s); %s", dir, oneLine(cause), how), cause: cause}
	}
	return fmt.Errorf("diskstore: open %s: %w", dir, wrapErr(err))
}

// oneLine returns the text of err on one line, without the detail carrier
// pebble joins to the errors of damaged files.
func oneLine(err error) string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "<corruption detail carrier>" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// marker reads the marker: the end of the last frame the index holds.
func (d *DB) marker(r pebble.Reader) (marker, bool, error) {
	v, closer, err := r.Get(markerKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return marker{}, false, nil
	}
	if err != nil {
		return marker{}, false, wrapErr(err)
	}
	defer closer.Close()
	m, err := decodeMarker(v)
	return m, err == nil, err
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
		// writes. Flushing it spares the next Open a replay.
		d.sealed.Add(1)
		err = wrapErr(d.pdb.Flush())
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
