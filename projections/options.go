package projections

import (
	"log/slog"
	"time"
)

// Defaults applied by [Options.EnsureDefaults].
const (
	// DefaultHandlerTimeout is KurrentDB's default ProjectionExecutionTimeout.
	DefaultHandlerTimeout = 250 * time.Millisecond
	// DefaultMemoryBudget bounds the growth of the live heap during one
	// call into a projection's JavaScript.
	DefaultMemoryBudget = 128 << 20
	// DefaultMaxStateBytes bounds a partition's state as JSON; KurrentDB
	// warns about checkpoints of more than 8 MB.
	DefaultMaxStateBytes = 8 << 20
	// DefaultCheckpointHandledThreshold is KurrentDB's
	// CheckpointHandledThreshold.
	DefaultCheckpointHandledThreshold = 4000
	// DefaultCheckpointUnhandledThreshold is the number of events a
	// projection scans without handling them before it checkpoints its
	// position.
	DefaultCheckpointUnhandledThreshold = 10000
	// DefaultCheckpointAfter is the longest a caught-up projection holds
	// what it produced (and the events it emitted) before it checkpoints.
	DefaultCheckpointAfter = 100 * time.Millisecond
	// DefaultMaxPendingEvents bounds the events emitted and not yet
	// written; KurrentDB's MaxWriteBatchLength is 500.
	DefaultMaxPendingEvents = 4000
	// DefaultMaxPendingBytes bounds their data and metadata.
	DefaultMaxPendingBytes = 8 << 20
	// DefaultMaxEmitsPerEvent bounds the events one handler call emits.
	DefaultMaxEmitsPerEvent = 10000
	// DefaultPartitionCacheSize is the number of partition states a
	// projection keeps in memory.
	DefaultPartitionCacheSize = 4096
	// DefaultMaxCallDepth bounds the JavaScript call stack.
	DefaultMaxCallDepth = 4096
)

// Options configure a [Manager]. The zero value is ready to use.
type Options struct {
	// Logger receives diagnostics, and what scripts log with log(). Nil
	// discards them.
	Logger *slog.Logger

	// HandlerTimeout is how long one call into a projection's JavaScript
	// (a handler, partitionBy, a transform, the query's definition) may
	// run before it is stopped and the projection faulted. Zero means
	// DefaultHandlerTimeout; negative means no limit.
	HandlerTimeout time.Duration
	// MemoryBudget is how much the process's live heap may grow during
	// one call into a projection's JavaScript before the call is stopped
	// and the projection faulted; see the package documentation for what
	// it guarantees. Zero means DefaultMemoryBudget; negative means no
	// limit.
	MemoryBudget int64
	// MaxStateBytes bounds the JSON of a partition's state (checked after
	// every handler) and of a result; the built-ins that make a string,
	// an array or a buffer in one call are bounded by it too. Zero means
	// DefaultMaxStateBytes.
	MaxStateBytes int

	// CheckpointHandledThreshold is the number of events handled after
	// which a projection checkpoints. Zero means
	// DefaultCheckpointHandledThreshold.
	CheckpointHandledThreshold int
	// CheckpointUnhandledThreshold is the number of events scanned but
	// not handled after which a caught-up projection checkpoints its
	// position. Zero means DefaultCheckpointUnhandledThreshold.
	CheckpointUnhandledThreshold int
	// CheckpointAfter is how long a caught-up projection waits, after its
	// last checkpoint, before it checkpoints what it produced since; the
	// events it emits become visible then. Zero means
	// DefaultCheckpointAfter.
	CheckpointAfter time.Duration
	// MaxPendingEvents and MaxPendingBytes bound the events emitted and
	// not yet written: reaching either makes the projection checkpoint.
	// Zero means DefaultMaxPendingEvents and DefaultMaxPendingBytes.
	MaxPendingEvents int
	MaxPendingBytes  int
	// MaxEmitsPerEvent bounds the events one handler call may emit. Zero
	// means DefaultMaxEmitsPerEvent.
	MaxEmitsPerEvent int
	// PartitionCacheSize is the number of partition states a projection
	// keeps in memory; the others are read from the store when needed.
	// Zero means DefaultPartitionCacheSize.
	PartitionCacheSize int
	// ReadBatch is the number of events read from the store at a time.
	// Zero means 512.
	ReadBatch int
	// MaxCallDepth bounds the JavaScript call stack. Zero means
	// DefaultMaxCallDepth.
	MaxCallDepth int

	// Builtins are the system's projections (such as KurrentDB's
	// $by_category), listed by Statistics and enabled, disabled and reset
	// through the Manager like the others.
	Builtins []Builtin
}

// EnsureDefaults fills in zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HandlerTimeout == 0 {
		o.HandlerTimeout = DefaultHandlerTimeout
	}
	if o.MemoryBudget == 0 {
		o.MemoryBudget = DefaultMemoryBudget
	}
	if o.MaxStateBytes <= 0 {
		o.MaxStateBytes = DefaultMaxStateBytes
	}
	if o.CheckpointHandledThreshold <= 0 {
		o.CheckpointHandledThreshold = DefaultCheckpointHandledThreshold
	}
	if o.CheckpointUnhandledThreshold <= 0 {
		o.CheckpointUnhandledThreshold = DefaultCheckpointUnhandledThreshold
	}
	if o.CheckpointAfter <= 0 {
		o.CheckpointAfter = DefaultCheckpointAfter
	}
	if o.MaxPendingEvents <= 0 {
		o.MaxPendingEvents = DefaultMaxPendingEvents
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if o.MaxEmitsPerEvent <= 0 {
		o.MaxEmitsPerEvent = DefaultMaxEmitsPerEvent
	}
	if o.PartitionCacheSize <= 0 {
		o.PartitionCacheSize = DefaultPartitionCacheSize
	}
	if o.ReadBatch <= 0 {
		o.ReadBatch = 512
	}
	if o.MaxCallDepth <= 0 {
		o.MaxCallDepth = DefaultMaxCallDepth
	}
}

// limits returns the limits of the scripts of a store whose events may have
// maxEventBytes of data and metadata.
func (o *Options) limits(maxEventBytes int) scriptLimits {
	return scriptLimits{
		maxStateBytes: o.MaxStateBytes,
		maxEventBytes: maxEventBytes,
		maxEmits:      o.MaxEmitsPerEvent,
		callDepth:     o.MaxCallDepth,
		builtinLimit:  max(o.MaxStateBytes, 1<<20),
	}
}
