// Package projections runs KurrentDB's user-defined projections over a
// [cairn.Store]: queries written in JavaScript that fold events into state,
// partition it, and emit or link events to other streams.
//
// A [Manager] stores, starts and stops projections, and answers for them:
// Create (continuous, one-time or transient, with or without emit),
// Update, Delete, Enable, Disable, Abort, Reset, Statistics, State and
// Result, RestartSubsystem: the calls of KurrentDB's Projections service,
// which package server serves over gRPC. The queries run in goja, an
// ECMAScript engine written in Go, one runtime per projection.
//
// # Queries
//
// A query is KurrentDB's JavaScript:
//
//	options({ resultStreamName: 'order-totals' })
//	fromCategory('order')
//	.foreachStream()
//	.when({
//		$init: function () { return { total: 0 }; },
//		OrderPlaced: function (s, e) { s.total += e.body.amount; }
//	})
//	.outputState()
//
// Selectors: fromAll, fromStream, fromStreams (names or an array),
// fromCategory and fromCategories (a category is the part of a stream id
// before its first '-'). fromAll passes the streams applications write and
// their metadata streams, not the system's ('$'), and leaves out link events
// unless options({$includeLinks: true}). fromStream resolves the links in
// its stream to the events they point to; fromStream('$ce-<category>') and
// fromStream('$et-<type>') read that category or event type.
//
// Then foreachStream() (a state per stream) or partitionBy(f) (a state per
// value of f(event), a string or a number; other values skip the event),
// when({...}) with $init, $initShared (which makes the query bi-state: its
// handlers receive [state, sharedState]), $any, $created, $deleted and
// handlers by event type, and outputState(), transformBy(f), filterBy(f)
// and outputTo(stream, partitionPattern). The legacy on_event and on_any
// work too. A handler receives the state and the event and may change the
// state or return a new one. The event has streamId, sequenceNumber,
// eventType, eventId, isJson, body and data (the parsed JSON), bodyRaw,
// metadata and metadataRaw, linkMetadata and linkMetadataRaw (for an event
// reached through a link), partition and category. Events whose data is
// not what their content type says (JSON that does not parse, empty data)
// are skipped, as KurrentDB skips them.
//
// A query that keeps a state per stream (foreachStream) learns of the
// deletion of each stream of its source from the log, where the engine
// records every delete with it ([cairn.Deletion]): $deleted(state, event,
// streamId, isSoftDeleted) runs on the stream's partition, at the
// deletion's place in the log, so that a restarted projection handles it
// once, as any event. The event is the delete as KurrentDB records it: a
// $metadata event of the stream's metadata stream ($$<stream>) whose $tb
// is 9223372036854775807 for a soft delete, a $streamDeleted event of the
// stream at that revision for a tombstone; its partition is the stream.
// As in KurrentDB, a query partitioned by partitionBy, or bi-state, is
// told of no deletion.
//
// In handlers: emit(stream, type, body, metadata) writes a JSON event;
// linkTo(stream, event, metadata) a link ($> with data
// "<sequenceNumber>@<streamId>"); linkStreamTo(stream, linkedStream) a $@
// event; copyTo is accepted and does nothing, as in KurrentDB; log(...)
// writes to the Manager's logger. A projection may emit only when created
// with emit enabled, and only to streams applications may write; the
// events it emits carry $causedBy, the id of the event handled, in their
// metadata. options() accepts resultStreamName, $includeLinks,
// reorderEvents, processingLag and biState, in any case, and refuses any
// other option, as KurrentDB does.
//
// Create and Update refuse a query that does not compile, throws while it
// declares itself, or selects nothing, and say why; nothing is stored.
//
// # Streams
//
// Everything a projection needs is kept in the store, in system streams
// named and typed as KurrentDB's:
//
//	$projections-$all                      $ProjectionCreated / $ProjectionDeleted (data: the name)
//	$projections-<name>                    $ProjectionUpdated: the definition (query, mode, flags,
//	                                       epoch, version), KurrentDB's field names
//	$projections-<name>-checkpoint         $ProjectionCheckpoint: data the state; metadata the tag
//	$projections-<name>-<part>-checkpoint  $Checkpoint: a partition's state, tagged
//	$projections-<name>-result             Result: the result (outputState), also
//	$projections-<name>-<part>-result      per partition (or resultStreamName, outputTo)
//	$projections-<name>-partitions         $partition: each partition, once
//	$projections-<name>-emittedstreams     $StreamTracked: each stream emitted to (trackEmittedStreams)
//
// A checkpoint's metadata is KurrentDB's checkpoint tag,
// {"$v":"<projection id>:<epoch>:<version>:1","$c":<position>,"$p":<position>}
// (or "$s":{"<stream>":<version>} for a projection of one stream), the
// position of the last event processed; a bi-state projection adds
// "$shared", its shared state. The projection id is the version of the
// $ProjectionCreated event, so that a projection deleted and created again
// under the same name ignores the old one's checkpoints; the epoch changes
// on Reset, which starts the projection again from the beginning. The
// checkpoint stream is trimmed to its last two checkpoints from time to
// time, as KurrentDB's $maxCount of 2 does.
//
// # Exactly-once emits
//
// A continuous projection holds what it produces (the events it emits, the
// states and results of the partitions that changed, new partitions and
// emitted streams) until its next checkpoint, and writes it all with the
// checkpoint in one [cairn.Store.AppendBatch]: on an engine with atomic
// batches (every engine of cairn), either the checkpoint and everything
// before it are durable or none of it is, and a restarted projection
// resumes from its last checkpoint and produces the same events again. It
// checkpoints after CheckpointHandledThreshold events, when MaxPendingEvents
// or MaxPendingBytes are held, and within CheckpointAfter of catching up;
// the events it emits become visible then.
//
// Every event a projection writes has a deterministic id (a UUID version 5
// of the projection, its epoch, the position of the event that caused it
// and its index among that event's emits), so a batch written again after
// an ambiguous failure is recognised by the engine as a retry. On an engine
// without atomic batches the projection appends each event on its own, in
// order, the checkpoint last: a crash may leave some written, and the
// restarted projection, writing them again with the same ids, has each
// recognised and skipped (see [cairn.RetryResult]). Partition states are
// tagged with their checkpoint's position, and a partition's state is read
// as of the last checkpoint, so a state written after it is ignored.
//
// The checkpoint stream is written with the version the projection last
// wrote as expected version: a second Manager running the same projection
// faults at its next checkpoint ("checkpoint stream ... has been written to
// from the outside") instead of emitting twice.
//
// # Budgets
//
// A call into a projection's JavaScript (a handler, partitionBy, a
// transform, the query's definition) runs under budgets; exceeding one
// faults the projection with a [BudgetError] as its reason, and nothing
// else stops. A handler that throws faults its projection with the
// exception's message ([ScriptError]). A faulted projection keeps the state
// of its last good event; Enable runs it again from its last checkpoint.
//
//   - Time: a call running longer than HandlerTimeout (KurrentDB's 250 ms
//     by default) is interrupted.
//   - Memory: while a call runs, a watchdog samples the heap through
//     runtime/metrics; once it has grown by more than MemoryBudget since
//     the call began, the watchdog forces a collection and interrupts the
//     call if the live heap is still more than MemoryBudget above the live
//     heap of the last collection before the call.
//   - State: after every handler the state is written as JSON, which must
//     fit in MaxStateBytes; the limit is enforced while writing, so a
//     state whose JSON would be huge costs at most the limit to refuse.
//   - Stack: the call depth is bounded (MaxCallDepth).
//   - The built-ins that make a large string, array or buffer in one call
//     from small arguments (String.prototype.repeat, padStart, padEnd,
//     Array.prototype.fill and join, ArrayBuffer and the typed arrays) are
//     wrapped to refuse results of more than max(MaxStateBytes, 1 MiB)
//     characters, elements or bytes.
//
// What this guarantees: a handler that loops, recurses or keeps allocating
// in JavaScript is stopped within a few milliseconds of passing its budget
// (the watchdog ticks every 2 ms, or a tenth of the timeout), and the heap
// it leaves is bounded by about the budget plus what was allocated in that
// time. What it does not: the heap is the process's, so memory that other
// goroutines retain during a call counts against it (a false fault is
// possible under a burst of other allocations; calls shorter than a tick
// are never measured); an interrupt lands between two JavaScript
// instructions, never inside a native built-in, so one native call that
// allocates or computes a lot from what the script already holds (joining
// a million references to one large string, a regular expression with
// back-references that backtracks, a huge BigInt power) runs to its end
// before the watchdog can act. The budgets protect the server from a
// faulty query, not from a hostile one: creating projections is an
// administrator's privilege, as in KurrentDB.
//
// # Caveats
//
//   - A deletion reaches $deleted only from the stream or category sources
//     and fromAll, not from an event type source; and only for a stream
//     the projection has seen an event of (one with a partition).
//   - Category and event type sources scan the global log; an index can
//     replace them (see source.go) without changing the checkpoints.
//   - Result streams get one Result event per partition per checkpoint
//     (KurrentDB writes one per event), and transformBy and filterBy run on
//     a copy of the state. One-time and transient projections write
//     nothing: their state and result live in memory.
//   - The standard projections ($by_category, $by_event_type, $streams,
//     $stream_by_category, $by_correlation_id) are not run by this package;
//     [Builtin] is how the system's projections join the Manager.
//   - Reset's write_checkpoint flag is accepted and not used, as in
//     KurrentDB; reorderEvents and processingLag have no effect, because
//     every source is read in log order.
//   - A partition's state stream id, $projections-<name>-<partition>-checkpoint,
//     must be a valid stream id (at most 512 bytes, no control characters);
//     a partition that cannot be named faults the projection.
package projections
