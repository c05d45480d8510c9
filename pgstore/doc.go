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
//	events     one row per event: position (the primary key, its only
//	           index), stream, version, id, type, content type, data and
//	           metadata (bytea, stored as given), tags (text[]) and created
//	           (timestamptz)
//	runs       one row per append to a stream: stream and first version (the
//	           primary key), first position, number of events, and the id of
//	           the first event (unique, for retry detection); the events of
//	           an append have consecutive versions and positions
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
// A stream is read through its runs: the runs that hold the versions asked
// for, found by the runs' key, then the events of each by position, a range
// of the events' key. An append therefore maintains one index entry per
// event (its position) and two per append (the run's key and first id),
// rather than a second entry per event for (stream, version), which made
// large appends markedly slower (docs/benchmarks.md has the figures).
// Versions need no unique index: every append to a stream holds the
// stream's row lock from its version check to its commit.
//
// # Global order
//
// Positions are 0-based and dense, and a reader following the log never sees
// position N+1 before position N, so it never skips an event that commits
// late and never waits out a gap. Every write of events is one SQL
// transaction that:
//
//  1. locks the rows of its streams, creating them if needed, in id order so
//     that transactions cannot deadlock;
//  2. looks up the first event ids (retry detection) and checks the
//     expectations against the locked rows;
//  3. updates the streams' versions; then, as late as possible, increments
//     the head row, inserts the runs and the events at the positions it
//     returns, queues a NOTIFY, and commits.
//
// The head row's lock is taken by the increment and held until the commit
// is durable and visible, then released. Positions are therefore handed out
// in commit order: the transaction that takes position N+1 can only do so
// after the one holding N has committed, so a reader's snapshot that shows
// N+1 shows N as well. A transaction that rolls back releases the lock
// without consuming positions, so there are no holes.
//
// The cost is that the end of every write (the insert and the commit's WAL
// flush) happens one at a time in the whole database. The engine makes up
// for it with group commit: the appends that a process receives while its
// previous write is in flight are sent together as one call of the schema's
// append_group function (one statement, one round trip, one transaction,
// one WAL flush), in which each append keeps its own outcome: one that fails
// its expectation does not stop the others. One such call per process is
// in flight at a time; the appends that arrive meanwhile form the next
// group. Batches ([Store.AppendBatch]) and commits with projections are
// transactions of their own, in two and more round trips.
// docs/benchmarks.md has the figures.
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
//   - Writes take the global position lock one after the other at commit:
//     the write throughput of the whole database is bounded by how fast
//     PostgreSQL commits one transaction at a time, times the size of the
//     groups. Many processes with one writer each group nothing.
//   - With synchronous_commit = off (or fsync = off) on the server, an
//     append can return, and readers can see its events, before they are
//     durable; a crash of the server then loses them and their positions are
//     handed out again. Keep the defaults.
//   - An event id is unique only as the first event of an append; a reused
//     id elsewhere in an append is not rejected.
//   - Compact deletes the rows of truncated and deleted events, and the runs
//     left without events, but does not VACUUM; autovacuum reclaims the
//     space. An append whose first event was compacted away is no longer
//     recognised when repeated.
//   - The schema name is used in identifiers and a NOTIFY channel; it must be
//     a valid PostgreSQL identifier of at most 50 bytes.
//
// # Testing
//
// The tests need a database: set CAIRN_TEST_POSTGRES to its URL, for example
//
//	CAIRN_TEST_POSTGRES='postgres://cairn:cairn@127.0.0.1:5432/cairn?sslmode=disable' go test ./pgstore
//
// Each test works in a schema of its own and drops it. Without the variable
// the tests skip, and under CI=true they fail.
package pgstore
