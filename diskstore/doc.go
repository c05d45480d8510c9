// Package diskstore is cairn's embedded engine, the default: a store in one
// directory, built on the pebble key-value store
// (github.com/cockroachdb/pebble/v2). It implements the whole backend
// contract and every optional capability: atomic multi-stream batches,
// truncation, soft deletes and tombstones, compaction that gives space back,
// disk size, health, snapshots, and projections committed in the same batch
// as their events, with a read API for their tables.
//
//	db, err := diskstore.Open("./cairn-data", diskstore.Options{})
//	if err != nil { … }
//	store := cairn.NewStore(db, cairn.Options{})
//	defer store.Close()
//
// # Durability and group commit
//
// Every write is one pebble batch written to the write-ahead log and fsynced
// before the call returns. A single committer goroutine takes all the writes
// waiting at a moment, checks their expected versions against the stream
// heads it keeps in memory, assigns versions and global positions, and
// commits them in one batch with one fsync, so that concurrent writers share
// fsyncs. While one group's fsync runs, the committer already prepares and
// writes the next; a second goroutine waits for the fsyncs in log order and
// only then answers each group's writers. Readers see a pebble snapshot of
// each group, published once the group is durable: they never see a write
// that is not durable yet, and never see position N+1 before N.
// Options.NoSync skips the fsync, for tests and benchmarks only.
//
// A failed write or fsync (a full disk included) fails the writes of its
// group, and the store refuses every later write with an error matching
// [ErrFailed], as does [DB.Health]. Nothing is half-written: pebble's
// recovery replays only whole batches. Reopen the store once the disk is
// fixed.
//
// # Integrity
//
// Pebble checksums its log records and table blocks; in addition every value
// the engine stores carries a CRC-32C of its key and payload. Data that fails
// either check is reported with an error matching [cairn.ErrCorrupt] and is
// never returned as an event.
//
// # On-disk format, version 1
//
// Keys start with one byte that names the kind of record. Integers in keys
// are big-endian so that keys sort numerically; stream ids and table names
// are followed by a 0x00 byte, which they never contain, so that the keys of
// one stream sort together and streams sort by id. Every value starts with
// the 4-byte CRC-32C (Castagnoli) of its key and the rest of the value.
//
//	'F'                                  format: "cairn-diskstore" ‖ uint32 version
//	'H'                                  the next position, written by compaction
//	'z' ‖ position [8]                   an event: content type [1], version
//	                                     uvarint, created varint (Unix µs), id
//	                                     [16], then stream, type, data, metadata
//	                                     each as uvarint length ‖ bytes, then the
//	                                     tag count and each tag likewise
//	'r' ‖ stream ‖ 0x00 ‖ version [8]    a run: one append to the stream, whose
//	                                     first event has that version; value:
//	                                     first position uvarint, count uvarint
//	'm' ‖ stream                         the stream's state: flags [1] (1 soft-
//	                                     deleted, 2 tombstoned), before uvarint
//	                                     (reads skip lower versions), purged
//	                                     uvarint (lower versions were removed)
//	'i' ‖ event id [16]                  the position of the first event of an
//	                                     append [8]: retries are found by it
//	's' ‖ stream                         the stream's snapshot: version uvarint,
//	                                     created varint, data and metadata as
//	                                     uvarint length ‖ bytes
//	't' ‖ table ‖ 0x00 ‖ key             a read model entry: the value as given
//
// A stream's versions are contiguous, and so are the positions of one
// append, so one run record per append maps versions to positions: reading
// a stream seeks the run that holds the first version wanted, then reads the
// events at consecutive positions. The stream record is written when the
// stream is created and when its state changes, not on every append; its
// last version is that of its last run.
//
// Events sort after every other record: the log only grows at its end, so
// the tables pebble flushes hold disjoint ranges of events, which stay in
// one sublevel and are not rewritten again and again by compactions.
//
// [Open] writes the format record in a new directory and refuses a directory
// whose format version it does not know.
//
// # Caveats
//
//   - Projections given to CommitAll run on the committer goroutine while
//     other writes wait; they must be quick and must not call the store.
//   - Compaction removes the retry record of an append whose first event it
//     removes: repeating that append afterwards appends it again (when its
//     expectation allows).
//   - Compact rewrites the whole database to give the space back at once:
//     it takes time in proportion to the size of the store. Between
//     compactions pebble reclaims the space of large deletions by itself,
//     more lazily.
//   - The events returned by one read share memory in chunks of 16 KiB:
//     keeping one event keeps its chunk.
//   - One process at a time: pebble locks the directory.
package diskstore
