// Package cairn is an event store for event-sourced systems.
//
// A [Store] keeps streams of events. Each stream is an ordered sequence of
// events numbered from version 0; every event also has a position in the
// store's global log, numbered from 0 in commit order. Appends are guarded by
// an [ExpectedVersion] (optimistic concurrency), so that two writers deciding
// on the same state cannot both succeed.
//
// The Store is a facade over a [Backend], the storage engine. The engines
// that ship with cairn live in sub-packages: memstore (in memory, for tests
// and examples), diskstore (an embedded on-disk engine, the default) and
// pgstore (PostgreSQL). Every engine passes the conformance suite in the
// storetest package, which any third-party engine can run too.
//
// # Writing
//
// [Store.Append] appends events to one stream and returns the version and
// global position of the last one. All events of an append are written
// contiguously in the global log and become visible together. When Append
// returns without error the events are durable, unless the engine was opened
// in a mode that says otherwise.
//
// An append that fails its expected-version check returns a
// [*WrongExpectedVersionError], which matches [ErrWrongExpectedVersion] with
// errors.Is and carries the stream, the expectation and the actual version.
// Nothing is written.
//
// Appends are idempotent by event ID: repeating an append whose events
// (identified by their IDs) were already recorded by an earlier append with a
// compatible expectation returns the earlier result and writes nothing. An
// event without an ID gets a time-ordered UUID (version 7) from the Store.
//
// # Reading
//
// [Store.Stream] and [Store.All] return iterators (iter.Seq2[Event, error])
// that page through a stream or the global log without holding the whole
// result in memory; [Store.ReadStream] and [Store.ReadAll] return bounded
// slices. The global log is gapless for readers: a reader never sees position
// N+1 before position N is visible, so following the log from a position
// never skips an event that commits late.
//
// # Versions and Maestro's sequences
//
// cairn's versions are 0-based. Maestro's sequence numbers are 1-based:
// sequence = version + 1. [Store.GetEvents] takes Maestro's bounds
// (min < sequence ≤ max) and is the only place where sequences appear.
//
// # Caveats
//
//   - Without an engine that implements [BatchAppender], [Store.AppendBatch]
//     appends stream by stream and is not atomic.
//   - Only the first event's ID keys retry detection; engines are not required
//     to reject a reused ID elsewhere in an append.
//   - ReadAll returns the events of deleted and truncated streams until the
//     engine compacts them away; positions of the remaining events never change.
package cairn
