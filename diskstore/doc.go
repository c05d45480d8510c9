// Package diskstore is cairn's embedded engine, the default: a store in one
// directory, made of a log of events in segment files, written once, and an
// index of it in the pebble key-value store
// (github.com/cockroachdb/pebble/v2). It implements the whole backend
// contract and every optional capability: atomic multi-stream batches,
// truncation, soft deletes and tombstones, compaction that gives space back,
// disk size, health, snapshots, and projections committed in the same write
// as their events, with a read API for their tables; and the index of
// categories, event types, tags, first events and correlation ids
// ([cairn.IndexReader]), which serves reads by [cairn.Query] and append
// conditions ([cairn.Querier]).
//
//	db, err := diskstore.Open("./cairn-data", diskstore.Options{})
//	if err != nil { … }
//	store := cairn.NewStore(db, cairn.Options{})
//	defer store.Close()
//
// # Durability and group commit
//
// Every write is one frame appended to the log and fsynced (fdatasync)
// before the call returns: the frame holds the write's events and the
// changes to the index that go with them (runs, locators, stream states,
// snapshots, read-model entries; an append's retry record is derived from
// its run, see "On-disk format"). A single committer
// goroutine takes all the writes waiting at a moment, checks their expected
// versions against the stream heads it keeps in memory, assigns versions
// and global positions, appends them to the log as one frame, applies the
// frame's index changes to pebble's memtable (but for its runs and retry
// records, which it keeps in memory, see "On-disk format") and takes a
// snapshot; then it
// goes on with the next group at once, reading an index that holds every
// group before. A second goroutine, the syncer, syncs the log once for all
// the frames appended since its last sync (group commit: concurrent writers
// share fsyncs), then publishes the snapshot of the last of them to readers
// and answers their writers. Readers never see a write that is not durable
// yet, and never see position N+1 before N. Options.NoSync skips the fsync,
// for tests and benchmarks only. Options.VisibleBeforeSync, for a copy of
// a log kept durable elsewhere (a natsstore node's), publishes each group
// to readers before the sync and syncs behind, still answering writers
// only once durable.
//
// The log is the commit point and the index's only write-ahead log: pebble
// runs without one. Its memtable reaches the disk only when the committer
// has it flushed, which it does when the memtable is three quarters full
// (by an estimate that errs on the high side), and only
// after every group in flight is durable, so that the index on disk never
// holds a write the log does not. The last index change of
// every frame is a marker recording the frame's end, and [Open] replays the
// index changes of the frames after the marker on disk. A frame torn by a
// crash (its checksum fails and nothing intact follows it) was never
// acknowledged; Open drops it and overwrites it with zeros. A write whose
// index changes could take more than a quarter of the memtable is synced
// before they are applied. Pebble's first memtables are smaller than
// [Options.MemTableBytes]: the engine reads their size from pebble, and at
// its first flush has pebble start one of the configured size.
//
// Events are written once, to the log; pebble holds a few small records
// per append. An LSM holding the events would write each of them twice (its
// log, then its tables) and rewrite them in compactions.
//
// A failed write or fsync (a full disk included) fails the writes of its
// group, and the store refuses every later write with an error matching
// [ErrFailed], as does [DB.Health]. Reopen the store once the disk is
// fixed.
//
// # Retries
//
// The index records the first event ID of every append (its retry
// record). An append whose first event ID is recorded is not written
// again: a repeat of the same append (the same IDs, the same stream, an
// expectation it met) returns the first result, anything else fails with
// [cairn.ErrDuplicateEvent]. The committer keeps the first IDs of its
// last appends (up to 65,536) above a floor, the greatest ID recorded when
// the store was opened, and skips the lookup for an ID above the floor
// and not among them: time-ordered IDs (those a [cairn.Store] assigns, and
// those clients make moments before their appends reach it, out of order
// or not) mostly are. Open finds the greatest ID once it has replayed the
// log, so that a retry after a crash of an append acknowledged just before
// it is recognised too. The crash tests retry every append, acknowledged
// or not, after every crash, with random and with time-ordered IDs.
//
// # The index of categories, types and tags
//
// Every event is filed under the keys [cairn.IndexKeys] gives for it (its
// category, type, tags, the first event of its stream, its correlation
// id), in the same frame as the event: the frame's index writes hold, for
// each key, one block that lists the frame's events filed under it,
// numbered after the list's last entry. So the lists are numbered from 0
// without gaps, a reader sees an event and its entries together, and a
// crash keeps both or neither. An entry says where its event's record is
// in the log: reading a list, or a query (which reads the lists of its
// items' most selective keys), costs one read per event it returns, not a
// scan of the log. Deletes and truncations change no list; compaction
// removes events and keeps their entries, which reads then return with
// Found false (a query skips them), as the contract says.
//
// An append condition is checked by the committer, while it forms the
// group that writes the append: after every group before, and before any
// later one, so that two appends with the same condition cannot both pass
// it. It costs nothing when the committer knows that the lists it reads
// have no entry after the condition's After (the common case: a writer's
// condition on its own tags); otherwise it reads the entries after After.
//
// # Recovery
//
// The index can be rebuilt from a log that was never compacted: with the
// index gone, Open replays every frame of the log. When Open finds the
// index damaged (pebble reports corruption, or misses one of its own
// files) it fails with an error matching [ErrIndexDamaged] and
// [cairn.ErrCorrupt] that says how to recover: move every entry of the
// store's directory except the directory log elsewhere, and open the store
// again. [Repair] does that, once [Check] has found that a rebuild repairs
// every problem. Compaction frees parts of the log that only a replay would read
// (frames' headers and index writes, whole segments); it first leaves the
// file COMPACTED in the log's directory, and from then on Open refuses to
// rebuild the index from the log, saying so, rather than replay a log with
// holes: back up a compacted store to be able to restore it.
//
// # Applying a replicated log
//
// [DB.Apply] commits the writes of one record of a log kept elsewhere (a
// replicated engine's command log) as one frame, with the record's commit
// time and an opaque mark stored in the same frame; [DB.Mark] returns the
// mark of the last durable group, so a copy that restarts knows exactly
// which record to apply next: a crash keeps a group and its mark together
// or neither. Groups are committed in the order Apply is called, and the
// same groups applied to the same data decide the same outcomes,
// positions, versions and times on every copy. [DB.PlanCommit] runs the
// projections of a commit without writing, so that their writes can be
// carried in the log ([CommitWrite]).
//
// # Integrity
//
// Every frame carries a CRC-32C of its header and body, and every event
// record and index value a CRC-32C of its own (over its key and payload;
// for an event, over its position and encoding). Pebble checksums its own
// log and tables. Data that fails a check is reported with an error
// matching [cairn.ErrCorrupt] and is never returned as an event; a damaged
// frame followed by intact ones makes Open fail rather than drop them, and
// so do damage after the last frame of a segment that the log goes on
// from (such a segment was synced whole), a frame missing between two
// that Open replays (their positions do not follow on), and a frame whose
// index changes are not what the engine writes.
//
// # Backups and the offline check
//
// [DB.BeginBackup] lists a consistent set of the store's files while
// writes go on: a checkpoint of the index (pebble's), then the head (the
// last frame readers see), then the log's segments up to it. Opened, the
// copy is the store after a crash at the head: Open replays the frames the
// checkpoint lacks. Package diskstore/backup keeps such copies as
// generations of a backup set, incrementally, and restores them.
//
// [Check] verifies a store offline, without writing: every frame and
// event against its checksum, the index's locators, runs, retry records
// and streams' states against the log, and (for a log never compacted)
// the whole index against the one its log rebuilds. It names each problem
// (file and offset, or stream, version and position) and says whether
// rebuilding the index repairs it; [Repair] does.
//
// # On-disk format, version 5
//
// Version 3 added the index lists (the 'x' records) to version 2. A store
// of version 2 is converted by the first Open that may write to it: it
// files every event of the log in the index, then records version 5 (a
// read-only Open refuses it until then, with an error matching
// [ErrNeedsRecovery]). An index rebuilt from a log that began in version 2
// files the events of its first frames as it replays them.
//
// Version 4 took the retry records out of the frames' index writes and
// added the ID mark. The committer keeps the retry records it writes in
// memory, and each time pebble's memtable is flushed a goroutine writes
// them, sorted, as a table that pebble ingests whole, with the ID mark: the
// frame up to which the index holds every retry record. With IDs made at
// random (as the KurrentDB clients make them), which land all over the key
// space, that costs 18% less CPU an append than inserting them into the
// memtable one by one and compacting them through pebble's levels; with
// time-ordered IDs, which pebble ingests into its last level and never
// compacts again, about as much. Open replays the frames after the
// older of the marker and the ID mark, and derives the retry records of
// the frames after the ID mark from their runs and events (a read-only
// Open, which takes no appends, needs none of them). The first Open
// of a store of version 3 that may write to it records version 4 and an
// ID mark equal to its marker (it writes nothing else); a frame of version
// 3 holds its retry records, which the replay takes as they are.
//
// Version 5 took the runs (the 'r' records, one per append) out of pebble's
// memtable: they reach the index with the retry records, as a table of
// their own in the same ingest, so the ID mark is the frame up to which the
// index holds every run and every retry record. The committer keeps the
// runs it writes in memory, each stream's in version order; every read
// view holds the generations of runs in memory its snapshot of pebble may
// lack, and a stream's reads take its runs from pebble and then from
// memory. With 256 writers on two cores that took the process's CPU per
// append from 5.1 to 2.8 µs, and W2 from 0.71× to 0.99× of the raw file
// (docs/benchmarks.md). The frames are as in version 4:
// their index writes hold their runs, which Open takes into memory for the
// frames after the ID mark (a read-only Open too: it reads them) and
// leaves out of what it applies to pebble. Compaction's purge steps, which
// rewrite and remove runs of earlier appends, first have every run in
// memory ingested; their own writes go to the memtable, which is flushed
// before the next ingest. The first Open of a store of version 4 or 3 that
// may write to it flushes the runs its replay applied to the memtable,
// ingests what it keeps in memory, and then records version 5.
//
// The directory holds the index (pebble's files) and the log, in the
// subdirectory log: segment files named by their number (from 1) in 16 hex
// digits and ".log", and, once compaction has freed any of it, the empty
// file COMPACTED. A segment is a sequence of frames; the log goes on in
// a new segment once the last one passes [Options.SegmentBytes]. A frame is
//
//	magic        [4] "cLF1"
//	events bytes [4] little-endian
//	index bytes  [4] little-endian
//	crc32c       [4] of the three fields above and of the body
//	events       the records of the group's events, in position order:
//	             uvarint length ‖ event value (below)
//	index        the group's index changes, as a pebble batch
//
// An event value is the 4-byte CRC-32C of ('z' ‖ position [8]) and the rest,
// then content type [1], version uvarint, created varint (Unix µs), id [16],
// then stream, type, data, metadata each as uvarint length ‖ bytes, then the
// tag count and each tag likewise.
//
// Index keys start with one byte that names the kind of record. Integers in
// keys are big-endian so that keys sort numerically; stream ids and table
// names are followed by a 0x00 byte, which they never contain, so that the
// keys of one stream sort together and streams sort by id. Every value
// starts with the 4-byte CRC-32C (Castagnoli) of its key and the rest of
// the value.
//
//	'A'                                  the marker: segment [8], end of the
//	                                     last frame indexed [8], next
//	                                     position [8]
//	'F'                                  format: "cairn-diskstore" ‖ uint32 version
//	'I'                                  the ID mark: the last frame whose runs
//	                                     and retry records the index holds, as
//	                                     the marker
//	'P'                                  set (empty) by the first compaction that
//	                                     removed events: from then on reads
//	                                     through the index check each event's
//	                                     locator
//	'R'                                  the mark of the last group applied by
//	                                     [DB.Apply]: opaque bytes, as given
//	'L' ‖ position [8]                   a locator: the events of one frame (or
//	                                     what compaction left of them) from that
//	                                     position; value as a run's
//	'r' ‖ stream ‖ 0x00 ‖ version [8]    a run: one append to the stream, whose
//	                                     first event has that version; value:
//	                                     first position, count, segment, offset
//	                                     and length of its records, uvarints
//	                                     (ingested up to the ID mark; rewritten
//	                                     and removed by compaction)
//	'm' ‖ stream                         the stream's state: flags [1] (1 soft-
//	                                     deleted, 2 tombstoned), before uvarint
//	                                     (reads skip lower versions), purged
//	                                     uvarint (lower versions were removed)
//	'i' ‖ event id [16]                  the position of the first event of an
//	                                     append [8]: retries are found by it
//	                                     (in no frame's index writes but a
//	                                     compaction's removals)
//	's' ‖ stream                         the stream's snapshot: version uvarint,
//	                                     created varint, data and metadata as
//	                                     uvarint length ‖ bytes
//	't' ‖ table ‖ 0x00 ‖ key             a read model entry: the value as given
//	'x' ‖ kind [1] ‖ list ‖ number [8]   a block of the index list of a key
//	                                     (kind as cairn.IndexKind, list the
//	                                     uvarint length of its value and the
//	                                     value, or its SHA-256 when longer
//	                                     than 512 bytes): the entries one
//	                                     frame filed under it, from that
//	                                     number; value: segment, then per run
//	                                     of entries at consecutive positions
//	                                     its distance from the run before,
//	                                     count, the distance of its records
//	                                     from those of the run before, and
//	                                     their length, uvarints
//
// A stream's versions are contiguous, and so are the positions of one
// append and its records in the log, so one run record per append maps
// versions to positions and to the log: reading a stream seeks the run that
// holds the first version wanted and reads its records in one read. Reading
// the log in position order walks the locators, one per frame. The stream record is
// written when the stream is created and when its state changes, not on
// every append; its last version is that of its last run.
//
// [Open] writes the format record in a new directory and refuses a directory
// whose format version it neither reads nor converts (version 1 kept the
// events in pebble).
//
// # Compaction
//
// [DB.Compact] removes from the index the runs (or the first events of
// runs) of deleted, tombstoned and truncated streams, cutting them out of
// their frames' locators, then gives their bytes
// back to the filesystem: it punches holes (on Linux) over every range of
// the log that no locator points at (dead events, and the headers and index
// changes of frames that no replay needs any more), and removes segments
// that hold no live event. It frees nothing past the end of the last frame
// of the index it had flushed: appends go on while it runs, and their
// frames are in no index on disk until the next flush, so that a replay
// after a crash reads them whole.
//
// # Invariants
//
// Built with the race detector (go test -race) or the build tag invariants,
// the engine checks what it takes for granted and panics when a check fails:
// the syncer completes groups whose positions follow one another, and
// publishes positions that only rise; each frame's marker lies after the one
// before (a frame replayed at Open is checked likewise, in every build: see
// replay.go); the memtable never receives a batch it might have to set aside
// for (with writes that are not durable yet); pebble flushes no memtable the
// engine did not set aside (a breach that a production build logs at ERROR).
// Errors of writes to an index batch are never dropped: the group fails.
//
// # Files
//
//   - doc.go: this documentation. options.go: [Options].
//   - diskstore.go: [DB], [Open], Close and failure; recover.go: the
//     replay at Open of the log's frames the index on disk lacks;
//     replay.go: the checks of each frame replayed; openerr.go: how Open
//     tells a damaged index from a damaged log, and says how to recover.
//   - write.go: the write API; apply.go: applying the groups of a
//     replicated log; request.go: one type per operation handed
//     to the committer; pipeline.go: the commit pipeline (committer and
//     syncer goroutines, group commit) with its ownership rules;
//     commit.go: how one group is committed (frame, index batch,
//     memtable flushes) and published; group.go: the checks and writes of
//     each operation within a group; batch.go: a group's index writes,
//     added to its batch in key order; recentids.go: the recent first
//     event IDs that spare most retry checks a lookup; idfilter.go: the
//     filter of recorded IDs that spares the lookups of IDs clients make
//     at random; ids.go: the retry records in memory and their ingestion;
//     runs.go: the runs in memory, and how reads see them; tx.go: the
//     transaction projections write through.
//   - read.go: the read API; reader.go: reading runs and locators and
//     their records in the log; heads.go: streams' heads and states;
//     view.go: the durable read views readers share.
//   - filing.go: how events are filed in the index lists as groups are
//     committed; lists.go: reading a list's blocks and the events of its
//     entries; query.go: the read API of the index ([DB.ReadIndex],
//     [DB.ReadQuery]); condition.go: append conditions, checked by the
//     committer; migrate.go: the conversion of stores of format 2.
//   - compact.go: compaction.
//   - format.go: the key layout and value sealing; records.go: the index's
//     values; event.go: the encoding of events.
//   - index.go: what the engine asks of pebble and how it watches it.
//   - readonly.go, lock_*.go: opening a store read-only, and the shared
//     lock of its directory.
//   - backup.go: [DB.BeginBackup], the files of a consistent backup, and
//     the store's identity.
//   - check.go: [Check], its report and its problems; check_log.go: the
//     scan of the log's frames; check_index.go: the index's entries
//     against the log; check_replay.go: the index against the one its log
//     rebuilds; check_repair.go: [Repair].
//   - internal/seglog: the segment files, the frame format and the scan
//     that finds the end of the log.
//
// # Caveats
//
//   - The index of a compacted store cannot be rebuilt from its log (see
//     Recovery).
//   - Projections given to CommitAll run on the committer goroutine while
//     other writes wait; they must be quick and must not call the store.
//   - Appends whose first event IDs the clients made at random (UUIDv4,
//     as the KurrentDB clients do) make the committer keep a filter of
//     every first ID recorded (idfilter.go): after about a thousand such
//     appends since Open, a goroutine reads all the store's retry
//     records into it, once (and again at twice the size when the store
//     has doubled). It takes 10 bits of memory or more per append
//     recorded (it is sized for twice the records it finds), at most
//     32 MiB; past about 27 million appends it spares fewer lookups.
//     Appends with the Store's own (time-ordered) IDs never build one.
//   - Compaction removes the retry record of an append whose first event it
//     removes: repeating that append afterwards appends it again (when its
//     expectation allows).
//   - Compact walks every locator of the log: it takes time in proportion
//     to the number of appends in the store. Between compactions, removed
//     events keep their space.
//   - Holes are punched in whole blocks of 4 KiB: a removed event that
//     shares its blocks with live ones keeps its bytes until its segment
//     goes. On filesystems without hole punching (and on other systems than
//     Linux) space comes back only with whole segments.
//   - The events returned by one read share memory in chunks of 16 KiB:
//     keeping one event keeps its chunk.
//   - One write (an append, a batch) holds at most about 1 GiB of events;
//     a larger one is refused with an error that says so.
//   - One process at a time: pebble locks the directory. [Check] takes
//     the lock shared, so it refuses a store a server holds: check a
//     backup of it instead.
//   - While a backup copies the log, compaction waits before it frees
//     anything; it never punches holes in a segment that a backup shares
//     by a hard link (its space comes back when the segment goes, or at a
//     compaction after the backups that link it are deleted).
//   - The index lists keep the entries of the events compaction removed
//     (their numbers never change): they take about 8 bytes each in the
//     index, for good.
//   - The first Open of a store of format 2 reads its whole log to build
//     the index (about 0.4 s of CPU per million events, measured on the
//     development machine).
//   - Reads through the index (lists and queries) read the log through a
//     read-only memory mapping of its segments, which spares a system call
//     per event: a disk that fails under such a read stops the process
//     (SIGBUS) instead of failing the read, as with any mapped file.
package diskstore
