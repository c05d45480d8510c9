// Package tiered keeps sorted key-value entries in immutable files
// (tables) in one directory, merged in tiers: the on-disk half of an index
// that is kept in memory on a commit path and written to disk in bulk,
// off that path.
//
//	set, err := tiered.Open(dir, tiered.Options{})
//	…
//	err = set.Add(mark, entries) // sorted; durable on return
//	sn := set.Snapshot()
//	defer sn.Close()
//	v, ok, err := sn.Get(key)
//
// Its caller holds the newest entries in memory, answers from them, and
// hands them to [Set.Add] in one sorted batch once it has enough. Add
// writes them as a table of tier 0 and records a mark with it (for
// example the position in a log up to which the tables hold every entry,
// so that a restart replays the log from there). When a tier holds
// [Options.MergeWidth] tables, a goroutine of the set merges its oldest
// ones into one table of the next tier, so each entry is rewritten once
// each time the set grows MergeWidth times over: far less than a
// leveled LSM rewrites entries whose keys land all over the key space, as
// an index keyed by stream and by event ID does.
//
// Adds that come faster than the merges wait for them: an Add waits
// while tier 0 holds 4×MergeWidth tables or more, and the merger takes
// the full tier with the most tables first, so that no tier grows far
// past MergeWidth tables and a lookup reads few.
//
// There is no memtable, no write-ahead log and no compression: the
// caller's memory is the memtable, and its log is the write-ahead log.
//
// # Reads
//
// A [Snapshot] is the set at one moment: adds and merges after it do not
// change what it reads, and the tables it reads stay on disk until it is
// closed. [Snapshot.Get] reads one block of each table whose key range
// holds the key, newest table first; [Snapshot.Last] finds the greatest
// key of a range (the last entry of a prefix); an [Iter] merges the
// tables in key order, the newest entry of a key winning, tombstones
// ([Entry.Delete]) left out. Tables are read through read-only mappings of their files
// where the filesystem allows (package internal/mmap), with ReadAt
// elsewhere (an in-memory filesystem). [Snapshot.Verify] reads and checks
// every entry, as an offline check does.
//
// # Durability
//
// Add returns once its table and the manifest that lists it (with the
// mark) are synced, and the directory too. The manifest is replaced
// whole, by a rename: a crash leaves the set as it was before an Add or
// after it, mark included, and a merge either done or not. [Open] removes
// the files of tables no manifest lists, which a crash in the middle of an
// Add or a merge leaves behind. A failed write fails the set: every later
// Add returns the error ([Set.Err]).
//
// # Checkpoints
//
// [Snapshot.Checkpoint] makes a directory that opens as the set the
// snapshot holds: its tables hard-linked (they are never written again)
// or copied, and its manifest. A backup takes one while adds and merges
// go on.
//
// # Integrity
//
// Every block of a table carries a CRC-32C of its entries, and so do a
// table's index and the manifest. Data that fails a check is reported
// with a [*CorruptError] naming the file, matching [ErrCorrupt], and never
// returned as an entry.
//
// # Formats
//
// A table is a sequence of blocks (entries of uvarint key length ‖ uvarint
// value length << 1 | tombstone ‖ key ‖ value, then the block's CRC-32C),
// an index (the table's first key, then each block's last key, offset and
// length) and a 32-byte footer (index offset and length, entry count, the
// index's CRC-32C, magic "cTT1"). Tables are named by their number in 16
// hex digits and ".tbl". The manifest (MANIFEST) lists each table's
// number, tier and sequence (newer tables have greater ones), the next
// number and sequence, and the mark, then its CRC-32C; magic "cTM1".
//
// # Caveats
//
//   - A lookup reads one block of every table whose key range holds its
//     key: about MergeWidth tables a tier. There are no filters.
//   - A mapped block's checksum is checked the first time it is read
//     after Open, not at every read; an unmapped block's at every read.
//   - A disk that fails under a read of a mapped table stops the process
//     (SIGBUS) instead of failing the read.
//   - Tombstones are dropped only by a merge of the set's oldest tables.
//   - Each table's block index (a block's last key, offset and length)
//     is kept in memory: with 4 KiB blocks and keys of about 20 bytes,
//     some 1.5% of the table's size.
//   - One process at a time may open the set for writing: the caller
//     locks the directory. [Options.ReadOnly] opens it without writing
//     anything, for an offline check.
package tiered
