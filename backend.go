package cairn

import (
	"context"
	"time"
)

// Backend is the contract every storage engine implements: the required
// callbacks of the reckon_db event-log backend. An engine's constructor plays
// the part of the seed's init.
//
// The [Store] validates every input before it calls a Backend, fills in
// missing event IDs and checks counts and directions, so an engine may assume
// well-formed arguments. The exception is [Tx]: a projection calls it
// directly, so it checks what it is given itself. All methods must be safe
// for concurrent use.
//
// The rules every engine follows, and which storetest checks:
//
//   - Append checks expected against the stream's current version (-1 when
//     the stream does not exist or was soft-deleted) with
//     [ExpectedVersion.Check], in the same critical section or transaction
//     that writes. On success the events get consecutive versions and
//     consecutive global positions, and become visible to readers together.
//     When Append returns, the events are durable. Once it has returned
//     successfully the engine no longer uses the slice of events it was
//     given: the Store reuses its copy of a large append's events.
//   - Before the version check, Append looks up the first event's ID; when it
//     was recorded already, the engine returns [RetryResult] for the recorded
//     events of that stream starting at the recorded version, and writes
//     nothing.
//   - A tombstoned stream fails every append, read and delete with
//     [ErrStreamDeleted] (see [Deleted]).
//   - A soft-deleted stream reads as not found; an append that accepts a
//     missing stream (NoStream or Any) recreates it, with versions continuing
//     after the last deleted one.
//   - Every successful DeleteStream and TombstoneStream appends one
//     deletion record ([NewDeletionRecord] of the stream, whether the
//     delete is hard, and the version the expected version was checked
//     against) to [DeletionsStream], with expected version Any, in the same
//     critical section or transaction as the delete: readers see the
//     delete and the record together, a crash keeps both or neither, and a
//     refused delete writes no record. The record is an event like any
//     other (its position follows the log's, its version its stream's).
//   - The global log is gapless for readers: ReadAll never returns position
//     N+1 while N is committed but not yet visible.
type Backend interface {
	// Append appends events to stream if expected holds.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events []EventData) (AppendResult, error)

	// ReadStream returns at most count events of stream starting at version
	// from, in direction dir. A backward read with from = StreamEnd starts
	// at the last event. Events removed by truncation or deletion are
	// skipped. A stream that does not exist (or was soft-deleted) returns an
	// error matching ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, from int64, count int, dir Direction) ([]Event, error)

	// ReadAll returns at most count events of the global log starting at
	// position from, in direction dir. A backward read with from = LogEnd
	// starts at the last event.
	ReadAll(ctx context.Context, from uint64, count int, dir Direction) ([]Event, error)

	// StreamVersion returns the version of the stream's last event, or an
	// error matching ErrStreamNotFound.
	StreamVersion(ctx context.Context, stream string) (int64, error)

	// StreamExists reports whether the stream exists (and is not deleted).
	StreamExists(ctx context.Context, stream string) (bool, error)

	// HasEvents reports whether the store holds any event.
	HasEvents(ctx context.Context) (bool, error)

	// ListStreams returns at most limit existing streams whose ids sort
	// after the id after (byte order), in ascending order.
	ListStreams(ctx context.Context, after string, limit int) ([]string, error)

	// DeleteStream soft-deletes the stream if its version satisfies
	// expected, checked as Append checks it and in the same critical
	// section or transaction as the delete; the stream's snapshot goes with
	// it. A stream that does not exist (and satisfies expected) gives an
	// error matching ErrStreamNotFound.
	DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error

	// Close releases the engine's resources. Calls after Close fail with
	// ErrClosed.
	Close() error
}

// SizedReader is implemented by engines that can end a read by the size of
// its events as well as by their number, so that a reader of large events
// never holds many of them at once. ReadStreamSized and ReadAllSized are
// ReadStream and ReadAll that also stop after the event that brings the
// data and metadata read to maxBytes or more: they return at least one
// event when there is one, and hold at most maxBytes plus one event. A
// sized read that returns fewer than count events is at the end only if its
// events hold less than maxBytes ([Sized] says so).
type SizedReader interface {
	ReadStreamSized(ctx context.Context, stream string, from int64, count, maxBytes int, dir Direction) ([]Event, error)
	ReadAllSized(ctx context.Context, from uint64, count, maxBytes int, dir Direction) ([]Event, error)
}

// BatchAppender is implemented by engines that append to several streams in
// one atomic transaction. On failure no request is written and the error is a
// [*BatchError] whose entries say which expectations failed. A request
// without events is check-only: the engine checks its expectation (and
// that its stream is not tombstoned) with the others, in the same critical
// section or transaction, and writes nothing for it; its result is the
// stream's current version (-1 when it does not exist) and position 0.
type BatchAppender interface {
	AppendBatch(ctx context.Context, requests []AppendRequest) ([]AppendResult, error)
}

// Truncater is implemented by engines that can drop the head of a stream:
// after TruncateStream(stream, before), reads of stream skip versions below
// before; versions of the rest do not change.
type Truncater interface {
	TruncateStream(ctx context.Context, stream string, before int64) error
}

// Tombstoner is implemented by engines that can hard-delete a stream: it can
// never be written or read again. TombstoneStream checks expected as
// DeleteStream does, removes the stream's snapshot, and accepts a stream that
// was never written.
type Tombstoner interface {
	TombstoneStream(ctx context.Context, stream string, expected ExpectedVersion) error
}

// Compacter is implemented by engines that can reclaim the space of deleted
// and truncated events.
type Compacter interface {
	Compact(ctx context.Context) error
}

// DiskSizer is implemented by engines that can report their size on disk.
type DiskSizer interface {
	DiskBytes(ctx context.Context) (int64, error)
}

// GroupCommitter is implemented by engines that commit concurrent writes
// in groups, each group one write and one sync (diskstore: one frame of
// its log, made durable by an fdatasync that the groups written meanwhile
// share; pgstore: one call, made durable by a synchronous commit): it
// reports how much was shared.
type GroupCommitter interface {
	CommitStats() CommitStats
}

// CommitStats counts the group commit of an engine since it was opened:
// how many writes each group and each sync carried (Writes divided by
// Groups and by Syncs), and how long the syncs took. The counts only grow;
// the difference between two readings describes what happened between
// them.
type CommitStats struct {
	// Writes is the number of write requests (appends, batches, deletes,
	// commits with projections) in the groups committed, those refused
	// (a wrong expected version, say) included.
	Writes uint64
	// Groups is the number of groups committed.
	Groups uint64
	// Syncs is the number of syncs the engine made for writes; zero when
	// it runs without syncs. A sync makes every group before it durable;
	// a write refused alone, which forms no group, is answered after one
	// too, so Syncs can exceed Groups.
	Syncs uint64
	// SyncTime is the time those syncs took, as the engine can measure
	// it: diskstore times its fdatasync calls; pgstore, whose commit
	// flushes within the call that writes, the whole round trip of each
	// group's call.
	SyncTime time.Duration
}

// HealthChecker is implemented by engines that can report whether they can
// serve reads and writes.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// Snapshotter is implemented by engines that store snapshots.
type Snapshotter interface {
	// CommitSnapshot stores s if its version is newer than the stored
	// snapshot's and its stream is not soft-deleted or tombstoned (checked
	// under the delete's lock or transaction, so that a snapshot racing a
	// delete never outlives it); otherwise it does nothing and succeeds.
	CommitSnapshot(ctx context.Context, s Snapshot) error
	// GetSnapshot returns the stored snapshot of stream when
	// min < version ≤ max, and false otherwise.
	GetSnapshot(ctx context.Context, stream string, min, max int64) (Snapshot, bool, error)
}

// Tx is the write side of a read model inside an engine's transaction, handed
// to a [Projection]. A read model is a set of tables, each mapping string keys
// to byte values. Engines may expose their native transaction too (for
// example pgstore hands out the SQL transaction).
//
// The rules every engine's Tx follows, and which storetest checks:
//
//   - Get sees the transaction's own writes (the value of its last Put, or
//     nothing after its Delete) and, for keys it has not written, what
//     earlier commits left. Tables are apart: one key in two tables names
//     two entries.
//   - A table name follows [ValidateTable] and a key [ValidateKey] (the
//     empty string is not a key). Get, Put and Delete refuse any other
//     with an [*InvalidArgumentError] for the field "table" or "key", and
//     write nothing: a projection calls Tx directly, so the Store cannot
//     check.
//   - Put keeps its own copy of the value, and Get returns a copy the
//     caller may change.
//   - The writes are kept when the commit is, and dropped with it when any
//     projection fails or the append is refused (see [Projection]).
//   - A Tx lives as long as its commit: once CommitAll returns, every call
//     fails with an error and writes nothing.
type Tx interface {
	Get(ctx context.Context, table, key string) ([]byte, bool, error)
	Put(ctx context.Context, table, key string, value []byte) error
	Delete(ctx context.Context, table, key string) error
}

// Projection updates a read model in the same transaction as the events it
// is given (Maestro's transactional projections). An error aborts the whole
// commit: neither the events nor any projection's writes are kept.
type Projection func(ctx context.Context, tx Tx, events []Event) error

// TxCommitter is implemented by engines that commit events together with
// projections' writes (Maestro's commit_all).
type TxCommitter interface {
	CommitAll(ctx context.Context, req AppendRequest, projections []Projection) (AppendResult, error)
}

// ReadModelReader is implemented by engines whose [Tx] writes can be read back
// outside a commit.
//
// The rules every ReadModelReader follows, and which storetest checks:
//
//   - ReadModelGet refuses a table that [ValidateTable] refuses and a key
//     that [ValidateKey] refuses, and ReadModelScan the arguments that
//     [ValidateScan] refuses, with an [*InvalidArgumentError] for the
//     field, as [Tx] does: the server hands them requests without passing
//     through a Store.
//   - ReadModelScan lists the keys that sort strictly after after, in byte
//     order: after = "" lists from the first key, which is never empty.
type ReadModelReader interface {
	ReadModelGet(ctx context.Context, table, key string) ([]byte, bool, error)
	// ReadModelScan returns at most limit entries of table whose keys start
	// with prefix and sort after after, in key order.
	ReadModelScan(ctx context.Context, table, prefix, after string, limit int) ([]Entry, error)
}

// Notifier is implemented by engines that learn of commits made by other
// processes (for example through PostgreSQL's LISTEN/NOTIFY). The Store
// already signals its own appends, so an engine without other writers need
// not implement Notifier.
//
// The rules every Notifier follows, and which storetest checks:
//
//   - Every commit that ends after Notify returns, made through this engine
//     or by another process, is followed by a call fn(head) with head at
//     least the commit's last position. One call may cover several commits;
//     a call may repeat a head or report one below an earlier call's.
//   - When fn(head) is called, the events up to position head are durable
//     and visible to reads.
//   - The calls of one fn never overlap. fn must not block, and must not
//     call stop.
//   - Once stop returns, fn is not called again. stop may be called more
//     than once, and after Close. Registrations are apart: stopping one
//     leaves the others running.
//   - Close ends every registration as stop does. Notify on a closed engine
//     returns a stop and never calls fn.
type Notifier interface {
	Notify(fn func(head uint64)) (stop func())
}

// RetryResult decides what an append that repeats a recorded event ID
// returns. recorded holds the stream's events from the version at which the
// first event's ID was recorded, in order (at least len(events) of them when
// available). When the events are a repeat of that earlier append (the same
// IDs in the same order, in the same stream, and consistent with expected)
// it returns the earlier result; otherwise an error matching
// [ErrDuplicateEvent].
func RetryResult(stream string, expected ExpectedVersion, events []EventData, recorded []Event) (AppendResult, error) {
	dup := func() (AppendResult, error) {
		return AppendResult{}, &StreamError{Op: "append to", Stream: stream, Err: ErrDuplicateEvent}
	}
	if len(recorded) < len(events) {
		return dup()
	}
	for i, e := range events {
		r := recorded[i]
		if r.StreamID != stream || r.ID != e.ID {
			return dup()
		}
	}
	first := recorded[0]
	if v, ok := expected.Version(); ok && first.Version != v+1 {
		return dup()
	}
	last := recorded[len(events)-1]
	return AppendResult{Version: last.Version, Position: last.Position}, nil
}

// Now returns the commit time engines record: the current UTC time,
// truncated to microseconds so that every engine stores the same value.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
