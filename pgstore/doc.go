// Package pgstore is cairn's PostgreSQL engine: several application
// processes share one database, and every one of them sees the same streams
// and the same gapless global log.
//
// [Open] connects through a pgx connection pool, creates its schema (by
// default "cairn") on first use and migrates it by numbered, idempotent
// migrations run under an advisory lock, so that processes starting at the
// same time do not trip over each other. The engine implements
// [cairn.Backend] and every optional interface of the root package,
// [cairn.IndexReader] and [cairn.Querier] included; wrap it with
// [cairn.NewStore].
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
//	           metadata (bytea, stored as given), tags; and indexed, always
//	           true (see Index)
//	index_runs the index (cairn.IndexReader), in runs (see Index): kind,
//	           value, first number, first position, count
//	streams    one row per stream: last version, truncation point, deleted and
//	           tombstoned flags; the row lock serialises appends to one stream
//	head       one row: the next global position
//	durable    a row per connection that wrote one: a position below
//	           which every event is durable (see Durability)
//	notified   one row: the durable position last notified
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
// position N+1 before N, so it never skips an event that commits late and
// never waits out a gap. Every write of events is one SQL transaction that:
//
//  1. locks the rows of its streams, creating them if needed, in id order so
//     that transactions cannot deadlock;
//  2. looks up the first event ids (retry detection) and checks the
//     expectations against the locked rows (a lone append looks its id
//     up only when its stream refuses it: one that its stream accepts
//     and that repeats a recorded append fails on the unique first id,
//     and is then run step by step, as a batch is);
//  3. updates the streams' versions; then, as late as possible, increments
//     the head row, inserts the chunks of events at the positions it
//     returns, files them in the index, and commits.
//
// The head row's lock is taken by the increment and held until the commit
// is visible, then released. Positions are therefore handed out in commit
// order: the transaction that takes position N+1 can only do so after the
// one holding N has committed, so a reader's snapshot that shows N+1 shows
// N as well. A transaction that rolls back releases the lock without
// consuming positions, so there are no holes.
//
// The end of every write (its last inserts and its commit) thus happens one
// at a time in the whole database, but not its WAL flush: a group of
// appends commits asynchronously (see Durability), so that the lock is
// released as soon as the commit is visible, and the flushes of the writes
// of many processes overlap, PostgreSQL flushing once for all the commits
// waiting. Within a process, group commit gathers the appends that arrive
// while its previous write is in flight into one call of the schema's
// append_group function (one statement, one transaction), in which each
// append keeps its own outcome: one that fails its expectation does not
// stop the others. One such call per process is in flight at a time; the
// appends that arrive meanwhile form the next group. A lone append without
// a condition calls append_one, the same without arrays of requests.
// Batches of several requests ([Store.AppendBatch]; a batch of one is an
// append and joins a group) and commits with projections are transactions
// of their own, in two and more round trips, which commit synchronously,
// holding the head row's lock through their flush.
// docs/benchmarks.md has the figures.
//
// Pool connections carry the application_name "cairn:<schema>" and
// jit = off unless the URL sets them: the engine's queries are short, and
// JIT compilation, which the planner's estimates for reads by query call
// in, took 0.6 s for a read that runs in 30 ms.
//
// # Index
//
// Every event is filed under the keys [cairn.IndexKeys] gives it (its
// category, type, tags, correlation id, and the stream lists for a
// stream's first event), in the transaction that writes it. The engine
// computes the keys in Go and sends them with the events, so that the
// schema knows nothing of categories or metadata. index_runs stores the
// lists run-length encoded: a row is a run of entries of one key at
// consecutive numbers and consecutive positions, so an append of 1000
// events of one type to one stream adds two rows (its type and its
// category), and the single-event appends of a group to one category
// share theirs. A lone append whose run of a key continues the key's last
// run (the next number at the next position) lengthens that run rather
// than add a row: the appends of one writer, or of many processes writing
// one category and type, keep one row per key, and each adds no entry to
// index_runs' own indexes (migration 8). Such a run can end in entries not
// durable yet; readers cut every run at the durable mark. A key value longer than 512 bytes or holding a control
// character (a correlation id can be any string) is stored as a digest.
//
// The engine merges the runs of a write that meet and numbers them within
// the write; the schema places them at the write's positions and numbers
// them after their key's last entry (for a group
// whose appends are not all written, the schema merges them itself). It
// runs after the write has taken the head row's lock, in a
// statement that started after the lock was taken, so it sees every entry
// committed before it and no other write can add entries until this one
// commits: each list is numbered from 0 in position order with no gaps, and
// a reader following a list by number never sees N+1 before N, for the
// reason it never sees position N+1 before N. The primary key (kind, value,
// number) and a unique (kind, value, position) would refuse a break of
// that rule. Deletes, truncations and tombstones change no list, and
// Compact keeps every entry: [Store.ReadIndex] reports an entry whose event
// is gone with Found false. Migration 6 files the events stored before it,
// reading them in Go (about 8 s per million events on the development
// machine), in its transaction.
//
// [Store.ReadIndex] reads the runs that hold the numbers asked for and
// takes their events out of their chunks by subscript, one query.
// [Store.ReadQuery] reads, for each item of the query, the lists the
// schema's query_scans chooses: the list of one of its tags or the lists of
// its types, whichever have the fewest entries; it keeps the events that
// pass the item (item_matches) and merges the items in position order, at
// most count events from each list, in one query. A query that matches
// every event reads the log. An event of a system stream has no type in
// the index, so it matches no item with types.
//
// # Append conditions
//
// [Store.AppendBatch] and [Store.CommitAll] check each request's
// [cairn.AppendCondition] after the write has taken the head row's lock,
// the point that orders positions, in a statement that started after the
// lock was taken, and before the write commits: every event committed
// before is visible to the check, and none can commit between the check
// and the write. A check made before the lock, a SELECT ahead of the
// write, would let two writers with the same condition both pass and both
// write. A condition looks at the events before the write's own, and an
// append recognised as a retry returns the earlier result before its
// condition is checked. A failed condition writes nothing.
//
// A batch of one request is an append, and joins the group commit: a group
// with conditions takes the head row's lock before it checks its requests,
// rather than at its end, checks all their conditions against the events
// committed before in one statement (conditions_first), and a request whose
// condition fails gets its [*cairn.ConditionError] while the others are
// written. A conditional append whose query may match the events of an
// append before it in its group is checked against those events too, at
// the positions they get, as if that append had committed first: of
// writers contending on one tag, one commits and the others are refused in
// the same group. Batches of several requests and commits with projections
// run check_conditions, which raises when a condition fails so that the
// transaction writes nothing.
//
// # Durability
//
// An append returns once its events are durable: as durable as the server's
// settings make a synchronous commit (with the default synchronous_commit =
// on, flushed to the WAL). The transaction of a group of appends commits
// asynchronously (synchronous_commit = off for that transaction alone) and
// is followed, in the same round trip, by a second one, the schema's
// mark_durable, which commits synchronously: it writes the head it finds
// into the connection's own row of the durable table, and its WAL flush
// covers every commit before it, so every position below that head is
// durable once the row is visible. The rows of several processes do not
// contend, and their flushes overlap. Readers of events (the log, streams,
// the index, queries) read only below the durable mark, the largest of the
// rows, in the same statement as the events: they never see an event a
// crash of the server could lose, whose position would be handed out
// again. A read of what an append changed besides its events (a stream's
// version or existence, the list of streams) that finds the append not yet
// durable writes the mark itself before it answers; so does an append
// refused, or recognised as a retry, on the strength of one. The events of
// a process that ended between its commit and its mark are read once the
// next mark is written: by the next group of any process, a listener's
// poll (Notify), or Open.
//
// A Store whose groups follow one another with no other write between them
// (it writes alone) commits them synchronously instead, writing its mark
// and its notification in the same transaction: one transaction per group
// instead of three. That transaction is the call's own implicit one (no
// BEGIN and COMMIT are sent) when the connections' default isolation is
// READ COMMITTED, and an explicit READ COMMITTED one otherwise. The first
// write of another process in between makes it commit asynchronously
// again.
//
// When the connection fails before the outcome of an append is known, the
// engine tries again on another connection; the retry is recognised by the
// first event's ID, so the events are never written twice.
//
// [Store.CommitStats] counts the group calls that succeeded and the
// appends they held: how many appends shared each call.
//
// A group of appends runs on its own (an append whose group has started
// waits for the group's outcome even if its own context ends), so each
// attempt is bounded by Options.GroupTimeout (30 seconds by default; an
// attempt may run up to twice that, as attempts share one deadline): an
// attempt on a connection that went silent is abandoned and tried again
// the same way.
//
// # Notifications
//
// Every durable mark written by an append is announced by a NOTIFY on the
// channel of its schema with the last durable position, sent by a third
// transaction, notify_durable, which commits asynchronously (PostgreSQL
// holds its notification lock from the NOTIFY to the end of the commit,
// which must not include a flush) and skips the NOTIFY when the mark, or
// a later one, was notified already: the writes of many processes made
// durable by one flush are announced once. [Store.Notify] listens on a
// dedicated connection; after a reconnect it reports the current durable
// mark so that subscribers catch up on what they missed, and it polls
// periodically in case a notification is lost, writing the durable mark
// when the head is ahead of it.
//
// Where nobody listens, nobody is notified (migration 9): a listener
// records its connection in the listeners table before it LISTENs, and
// each durable mark tells its writer whether the schema has listeners. A
// writer whose last mark found none queues no notify_durable; its next
// mark notifies by itself, in its own transaction, if a listener has
// registered since. A mark holds the schema's listen gate (an advisory
// lock) shared until it commits and a listener registers holding it
// exclusively, so a mark that did not see a registration committed before
// the listener read the head. [cairn.NewStore] listens only once a
// subscriber asks (Changes or Head), so processes that only write make two
// transactions per append instead of three. A lone append that commits
// synchronously (a Store writing alone) looks for listeners in the
// statement that writes its mark, and notifies only when it finds one
// (migration 10): it holds the head row's lock from its increment to its
// commit, and a listener registers under that lock too (FOR SHARE), so
// the append either sees the registration or commits before it.
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
//     PostgreSQL makes one transaction visible at a time, times the size
//     of the groups. Processes with one writer each group nothing, and
//     each of their appends costs two transactions (the write, its
//     durable mark), three when some process listens (the
//     notification): 16 such processes append at a
//     fraction of the rate of plain INSERTs from as many processes
//     (docs/benchmarks.md, M1).
//   - A process that writes alone (see Durability) holds the head row's
//     lock through its commit's WAL flush, as every write did before
//     migration 7; the first write of another process makes it stop.
//   - Migration 7 makes earlier builds unable to write (their append_group
//     and index_append are gone); their readers, which do not know the
//     durable mark, can read events of a write not yet durable. Stop them
//     before migrating.
//   - The readers of builds before migration 8 read a run of the index
//     whole, and a run can now end in entries not durable yet: stop them
//     before migrating too.
//   - The listeners of builds before migration 9 do not register, so the
//     writers of later builds may not notify them: they catch up at their
//     next poll (Options.PollInterval). Stop them before migrating.
//   - With synchronous_commit = off (or fsync = off) on the server, or in
//     the URL, an append can return, and readers can see its events,
//     before they are durable (the durable mark is then committed
//     asynchronously too); a crash of the server then loses them and their
//     positions are handed out again. Keep the defaults.
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
//   - A group of appends with conditions holds the head row's lock while
//     it checks them, so conditional appends lengthen the serial section:
//     64 writers on conditions of their own tags ran at 0.64× the rate of
//     unconditional appends (docs/benchmarks.md).
//   - Conditions and index numbers rely on READ COMMITTED: each statement
//     of a write sees what committed before it. Conditions refuse to run at
//     another isolation level (default_transaction_isolation).
//   - A read by query reads the events of scattered matches one chunk each:
//     1000 matches scattered over 1M events take several times as long as
//     reading 1000 consecutive events of the log (docs/benchmarks.md).
//   - The functions of the write path run with the planner's sequential
//     and bitmap scans off (migration 11), so that the plans PostgreSQL
//     keeps for a connection look the growing tables up by their indexes,
//     whatever their statistics said when the plans were made. The reads
//     are prepared statements, whose plans PostgreSQL may make for tables
//     of a page and keep until the statistics of a table they read next
//     change: on a store analysed while small, reads slow down as the
//     tables grow, until autovacuum next analyses one of them (the
//     durable mark's table, which every write updates, is analysed often;
//     docs/benchmarks.md).
//   - Migration 6 indexes the events already stored in its transaction,
//     which holds the chunks table's lock: on a large log, the engines of
//     every process wait for it.
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
