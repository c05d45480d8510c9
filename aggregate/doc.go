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
// # Streams, versions and sequences
//
// The events of the aggregate with id X of category C are the stream
// "C-X", for example "account-42" (see [Repository.StreamID]); the
// category may not contain '-', so the first '-' of a stream id separates
// the two. Versions are cairn's: 0-based within the stream, -1 for an
// aggregate without events. Maestro's sequence numbers are 1-based:
// sequence = version + 1. The package speaks of versions only; a snapshot
// policy of every N events snapshots at the sequences N, 2N, 3N ….
//
// # Snapshots
//
// A snapshot stores an aggregate's state, encoded with the codec's
// [Encoding], with the schema version [Options.SnapshotSchema] recorded in
// its metadata as {"schema":N}. Snapshots are written on demand
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
// ([Options.CacheSize]). [Repository.Handle] and [Repository.Fetch] read the
// events committed after a cached state before using it, so a state cached
// by one process never hides another process's writes; only
// [Repository.Load] returns cached states as they are.
//
// # Caveats
//
//   - States are shared between goroutines through the cache: Evolve must
//     return a new state rather than modify the one it is given, and
//     callers must not modify maps or slices inside states they receive.
//   - The state must survive its encoding for snapshots: with [JSON], keep
//     it in exported fields.
//   - Hydrating an aggregate whose stream was truncated or deleted past
//     its newest snapshot fails with an error saying which events are
//     missing, rather than computing a state from part of the history.
//     Deleting an aggregate's stream is not an aggregate operation: the
//     caches of running repositories and the stored snapshot do not learn
//     of it. Give a new aggregate a new id instead.
//   - When Handle succeeds, the command's events were committed exactly
//     once. When it fails with an error other than a domain error, a
//     projection's error or a conflict (a connection lost during the commit,
//     say), the events may or may not have been committed: Fetch to find
//     out before sending the command again.
package aggregate
