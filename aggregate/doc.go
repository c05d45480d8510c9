// Package aggregate runs the command lifecycle of event-sourced aggregates
// over a [cairn.Store], after Maestro's: hydrate the state, decide, commit
// with optimistic concurrency, retry on conflict, snapshot.
//
// An aggregate kind is a [Definition]: an initial state S, a Decide function
// that turns a command C into events E (or refuses it with a domain error),
// and an Evolve function that folds an event into the state. Everything is
// typed; events are ordinary Go types registered with a [Codec] under the
// type names the store records:
//
//	codec := aggregate.NewCodec[AccountEvent](nil) // JSON
//	aggregate.MustRegister[Opened](codec, "Opened")
//	aggregate.MustRegister[Deposited](codec, "Deposited")
//
// A [Repository] handles commands for one kind of aggregate.
// [Repository.Handle] hydrates the aggregate, calls Decide, and commits the
// events on the condition that the aggregate is still at the version it
// read; when another writer got there first it decides again on the newer
// state, a bounded number of times with jittered backoff. Transactional
// projections ([Definition.Projections]) update read models in the same
// commit as the events, or abort it.
//
// # Decisions over dynamic consistency boundaries
//
// A [Decider] decides commands whose consistency boundary is not one
// stream but the events that some queries select (dynamic consistency
// boundaries, dcb.events): its [Decision] names, for each command, the
// projections of its decision model, each a [cairn.Query] and a fold of
// the events it selects into the state. [Decider.Handle] reads them, calls
// Decide, and appends the events it returns with a [cairn.AppendCondition]
// that fails if an event any of the queries selects was appended since the
// read; then it reads and decides again, as Handle does on a version
// conflict. The course subscriptions of dcb.events, where a subscription
// must respect both the course's capacity and the student's limit, are one
// Decision, and storetest runs the specification's worked examples through
// it on every engine.
//
// # Streams, versions and sequences
//
// The events of the aggregate with id X of category C are the stream
// "C-X", for example "account-42" (see [Repository.StreamID]); the
// category may not contain '-', so the first '-' of a stream id separates
// the two. Versions are cairn's: 0-based within the stream, -1 for an
// aggregate whose stream does not exist. Maestro's sequence numbers are
// 1-based: sequence = version + 1. The package speaks of versions only; a
// snapshot policy of every N events snapshots at the sequences N, 2N, 3N ….
//
// # Deleted and truncated streams
//
// An aggregate's history is the readable events of its stream. Deleting
// the stream ([cairn.Store.DeleteStream]) makes it a new aggregate: Fetch
// and Load return the initial state at version -1, and the next command is
// decided on the initial state and committed expecting no stream. The
// stream is then recreated with versions that continue after the deleted
// ones, so the aggregate's first event has a version above 0; its history
// is the events from that one on, and Replay of an earlier version returns
// [ErrVersionNotFound]. The engines remove a stream's snapshot when they
// delete the stream, and a repository's cache notices the deletion: before
// it uses a cached state it checks that the stream still holds the events
// the state was computed from.
//
// Truncation ([cairn.Store.TruncateStream]) follows the same rule. When the
// newest snapshot is continued by the readable events (it is at or after
// the version before the first of them), it holds the effect of the
// truncated events, and the aggregate's state is the snapshot's followed
// by the events after it: take a snapshot, then truncate the stream before
// its version + 1, to reclaim space without changing the aggregate. When
// the stream is truncated past its newest snapshot, the aggregate starts
// again from the first readable event, as after a deletion: the
// truncated events are no longer part of its history. Deletion and
// truncation cannot be told apart from the stream itself (a recreated
// stream reads like a truncated one), which is why they share a rule.
//
// # Snapshots
//
// A snapshot stores an aggregate's state, encoded with the codec's
// [Encoding], with the schema version [Options.SnapshotSchema] recorded in
// its metadata as {"schema":N} (with "origin", the version of the first
// event of the aggregate's history, when its stream was recreated). Snapshots are written on demand
// ([Repository.Snapshot]) and, with [Options.SnapshotEvery], by policy:
// after a commit, from a bounded queue served by one goroutine, so that
// they never delay or fail a command. The store keeps a snapshot only when
// it is newer than the one it has, so repositories on several machines may
// all write them. Hydration ignores a snapshot of another schema, or one
// that does not decode, and rebuilds the state from the events.
//
// # Caching
//
// A Repository keeps recently used states in a bounded LRU cache
// ([Options.CacheSize]). Before using a cached state, [Repository.Handle]
// and [Repository.Fetch] check that its stream still holds the events it
// was computed from, and read the events committed after it, so a state
// cached by one process never hides another process's writes, deletions or
// truncations; only [Repository.Load] returns cached states as they are.
// The check reads the stream's first readable event as well as the events
// from the cached version on.
//
// # Caveats
//
//   - States are shared between goroutines through the cache: Evolve must
//     return a new state rather than modify the one it is given, and
//     callers must not modify maps or slices inside states they receive.
//   - The state must survive its encoding for snapshots: with [JSON], keep
//     it in exported fields.
//   - A snapshot that reaches the store after its stream was deleted (a
//     policy snapshot of a commit that preceded the deletion, or
//     [Repository.Snapshot] racing with it) is ignored when it is older
//     than the version before the recreated stream's first event, but at
//     exactly that version it reads as a snapshot followed by a truncation,
//     and its state would be used. The policy writer checks that the stream
//     still holds the snapshot's event just before writing it, which
//     leaves a narrow window; delete aggregates that are not receiving
//     commands, or give a new aggregate a new id.
//   - When Handle succeeds, the command's events were committed exactly
//     once. When it fails with an error other than a domain error, a
//     projection's error or a conflict (a connection lost during the commit,
//     say), the events may or may not have been committed: Fetch to find
//     out before sending the command again.
package aggregate
