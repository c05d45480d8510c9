// Package pgstore is cairn's PostgreSQL engine: several application
// processes share one database, and every one of them sees the same streams
// and the same gapless global log.
//
// [Open] connects through a pgx connection pool, creates its schema (by
// default "cairn") on first use and migrates it by numbered, idempotent
// migrations run under an advisory lock, so that processes starting at the
// same time do not trip over each other. The engine implements
// [cairn.Backend] and every optional interface of the root package; wrap it
// with [cairn.NewStore].
//
// # Tables
//
// All tables live in the engine's schema:
//
//	events     one row per event: position (the primary key), stream, version,
//	           id (unique), type, content type, data and metadata (bytea, stored
//	           as given), tags (text[]), created (timestamptz)
//	streams    one row per stream: last version, truncation point, deleted and
//	           tombstoned flags; the row lock serialises appends to one stream
//	head       one row: the next global position
//	snapshots  the newest snapshot of each stream
//	read_model (table, key, value) rows written by projections through cairn.Tx
//	migrations the schema version
//
// Stream ids, read-model tables and keys use the "C" collation, so that they
// sort in byte order.
//
// # Global order
//
// Positions are 0-based and dense, and a reader following the log never sees
// position N+1 before position N, so it never skips an event that commits
// late and never waits out a gap. An append (or a batch of appends) is one SQL
// transaction in two pipelined round trips:
//
//  1. BEGIN; lock the rows of its streams (creating them if needed, in id
//     order, so that transactions cannot deadlock); look up the first event
//     ids (retry detection). The engine then checks the expectations.
//  2. Update the streams' versions; as the very last statement, increment the
//     head row and insert the events at the positions it returns; NOTIFY;
//     COMMIT.
//
// The head row's lock is taken by the last statement and held until the
// commit is durable and visible, then released. Positions are therefore
// handed out in commit order: the transaction that takes position N+1 can
// only do so after the one holding N has committed. A reader's snapshot
// that shows N+1 shows N as well. Rolled-back transactions release the lock
// without consuming positions, so there are no holes. The cost is that the
// final statement and the commit's WAL flush of concurrent appends happen
// one at a time; everything before it (locking streams, checks, the client
// round trip) runs in parallel. docs/benchmarks.md has the figures.
//
// Pool connections carry the application_name "cairn:<schema>" unless the
// URL sets one.
//
// # Durability
//
// An append returns after PostgreSQL reports its COMMIT, so the events are
// as durable as the server's settings make a commit (with the default
// synchronous_commit = on, flushed to the WAL). When the connection fails
// before the outcome of an append is known, the engine tries again on
// another connection; the retry is recognised by the first event's ID, so
// the events are never written twice.
//
// # Notifications
//
// Every append sends a NOTIFY on the channel of its schema with the last
// position, delivered by PostgreSQL after the commit. [Store.Notify] listens
// on a dedicated connection; after a reconnect it reports the current head so
// that subscribers catch up on what they missed, and it polls the head
// periodically in case a notification is lost.
//
// # Projections
//
// [Store.CommitAll] runs projections inside the SQL transaction of the
// append. The [cairn.Tx] they receive writes to the read_model table; [SQLTx]
// returns the underlying pgx.Tx so that a projection can write its own
// tables in the same transaction. Such a commit holds the head lock while
// its projections run, so projections should be short.
//
// # Caveats
//
//   - Appends that are concurrent take the global position lock one after the
//     other at commit: the write throughput of the whole database is bounded
//     by how fast PostgreSQL commits one transaction at a time.
//   - Compact deletes the rows of truncated and deleted events but does not
//     VACUUM; autovacuum reclaims the space.
//   - The schema name is used in identifiers and a NOTIFY channel; it must be
//     a valid PostgreSQL identifier of at most 50 bytes.
package pgstore
