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
//	chunks     the events, in chunks of consecutive events of one append
//	           (see below): first position (the primary key), stream and
//	           first version (unique), number of events, the id of the
//	           append's first event on its first chunk (unique, for retry
//	           detection), creation time (timestamptz), and one array per
//	           column with an element per event: ids, types and content
//	           types (or one type and content type for all), data and
//	           metadata (bytea, stored as given), tags
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
// # Chunks
//
// The events of an append are split, in order, into chunks of up to about
// 8000 bytes (an estimate made by the engine from the events' sizes), each
// one row. A row of that size stays whole in the table's pages (the table's
// toast_tuple_target is 8160), and an append of 1000 events of 256 bytes
// inserts 38 rows and 77 index entries (position, stream and version, and
// its first event id), where a row and two index entries per event made
// such appends about half as fast as a plain INSERT of the same rows into
// a bare table (docs/benchmarks.md). A single event is a chunk of one. An
// event larger than a chunk is a chunk of its own, whose data PostgreSQL
// moves out of line (TOAST).
//
// Readers expand chunks into events with unnest. Reads of the log find the
// chunk that holds the first position asked for (the last one that starts
// at or before it) and read chunks forward by position; reads of a stream
// do the same by the stream's first versions. Both stop reading chunks once
// they have the events asked for. Forward reads order their query by chunk
// only, so that PostgreSQL streams the events without sorting them, and
// check that each chunk's events came in order (the executor's order,
// which SQL leaves open); a read that finds them out of order is made again
// with the events sorted in the query. Positions and versions inside a chunk are
// consecutive, so an event's position and version are its chunk's plus its
// place in it. The versions of a stream need no index per event to stay
// unique: every append to a stream holds the stream's row lock from its
// version check to its commit.
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
//     the head row, inserts the chunks of events at the positions it
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
// A group of appends runs on its own (an append whose group has started
// waits for the group's outcome even if its own context ends), so each
// attempt is bounded by Options.GroupTimeout (30 seconds by default): an
// attempt on a connection that went silent is abandoned and tried again
// the same way.
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
//   - Compact deletes truncated and deleted events (whole chunks, or the
//     leading events of a chunk, which is rewritten) but does not VACUUM;
//     autovacuum reclaims the space. An append whose first event was
//     compacted away is no longer recognised when repeated.
//   - Reading costs more than it would with a row per event, as the chunks
//     are expanded by unnest: reading the whole log (W5 in
//     docs/benchmarks.md) runs at about three quarters of the speed.
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
