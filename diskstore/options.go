package diskstore

import (
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure a [DB]. The zero value is ready to use and durable.
type Options struct {
	// NoSync acknowledges appends without waiting for the write-ahead log
	// to reach stable storage. It is for tests and benchmarks only: after
	// a crash of the machine (not only of the process) acknowledged
	// appends can be lost. Never use it for data you want to keep.
	NoSync bool
	// VisibleBeforeSync is for a store that copies a log kept durable
	// elsewhere, as each node of a natsstore cluster keeps its copy of
	// the cluster's log: a write is visible to readers, and a group given
	// to [DB.Apply] is reported applied ([Applying.Applied]), once it is
	// written to this store's log and index, before its log is synced;
	// the log is synced in the background, at most every SyncInterval.
	// Writers ([DB.Append] and the others) and [Applying.Wait] are still
	// answered only once their writes are durable, and a crash keeps the
	// store whole and consistent, with every write it acknowledged as
	// durable; what readers saw of the rest may be lost with a crash of
	// the machine, and must be applied again from the log it copies
	// ([DB.Mark] names where to start). Never set it for a store that is
	// not such a copy.
	VisibleBeforeSync bool
	// SyncInterval is, with VisibleBeforeSync, the least time between two
	// syncs of the log in the background (the sync does not wait when
	// the store needs the writes durable, to flush its index or move to a
	// new segment). Zero syncs as soon as the last sync is done.
	SyncInterval time.Duration
	// Logger receives diagnostics from the engine and from pebble. Nil
	// discards them.
	Logger *slog.Logger
	// FS is the filesystem the store lives on. Nil means the operating
	// system's. Tests pass pebble's in-memory or fault-injecting
	// filesystems.
	FS vfs.FS
	// CacheBytes is the size of the block cache. Zero means 64 MiB. The
	// memtables take their memory beside it (see reservedMemtables).
	CacheBytes int64
	// MemTableBytes is the size of a memtable. Zero means 32 MiB.
	MemTableBytes uint64
	// MaxCachedStreams bounds how many streams' heads (last version and
	// state) the writer keeps in memory. Zero means 100,000. Streams not
	// cached are read from disk on their next append.
	MaxCachedStreams int
	// MaxGroupEvents bounds the events committed in one group commit.
	// Zero means 16,384.
	MaxGroupEvents int
	// SegmentBytes is the size past which the log goes on in a new
	// segment file. Zero means 256 MiB.
	SegmentBytes int64
	// ReadOnly opens an existing store for reading only: nothing in the
	// directory is created or changed, so that it can live on read-only
	// media, and every write (Compact included) fails with [ErrReadOnly];
	// Health reports only a failed read. The directory's lock is taken
	// shared: a process that holds the store for writing (a running
	// server) excludes a read-only open, and read-only opens do not
	// exclude each other. A directory that holds no store is refused with
	// [ErrNoStore]. A store that was not closed cleanly, whose index lags
	// its log, or one of on-disk format 2, is refused with
	// [ErrNeedsRecovery]: recovery (or the conversion) writes the index,
	// so open it once for writing first.
	ReadOnly bool

	// pendingRecords is the number of runs and retry records in memory at
	// which they are handed off (maxPendingRecords unless a test sets it).
	pendingRecords int
}

func (o *Options) ensureDefaults() {
	if o.pendingRecords <= 0 {
		o.pendingRecords = maxPendingRecords
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 32 << 20
	}
	if o.MaxCachedStreams <= 0 {
		o.MaxCachedStreams = 100_000
	}
	if o.MaxGroupEvents <= 0 {
		o.MaxGroupEvents = 16 << 10
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 256 << 20
	}
}
