// Package seglog is the log of cairn's embedded engine: the events, and the
// commit point of every write.
//
// The log is a sequence of segment files in one directory, numbered from 1
// and named by the number in 16 hex digits and ".log". The engine appends
// one frame per group commit to the last segment and syncs it; a frame never
// spans two segments, and the log goes on in a new segment once the last
// one passes its size limit. A frame is
//
//	magic        [4] "cLF1"
//	events bytes [4] little-endian
//	index bytes  [4] little-endian
//	crc32c       [4] of the three fields above and the body
//	events       one record per event: uvarint length ‖ the event value
//	index        the group's index writes, as a pebble batch
//
// so that the log alone holds everything a group wrote: its events and the
// changes to the index (pebble) that go with them. What the events and the
// index writes hold is the engine's business: this package frames them,
// checks them, and finds the end of the log after a crash.
//
// # Files
//
//   - log.go: [Log], the segment files: opening, appending, syncing,
//     rolling over to a new segment, punching holes and removing segments.
//   - frame.go: the frame format: building a frame ([BeginFrame],
//     [SealFrame]), reading one back ([Log.ReadFrame]) and telling a torn
//     end of the log from damage ([Log.CheckTail]).
//   - reader.go: [Reader], which reads event records through a window
//     (which, for one stream's reads, starts small and grows as the reads
//     go on; for sparse reads, through a read-only mapping of the segment
//     made by package internal/mmap), and [Records], which splits them.
//   - alloc_*.go, punch_*.go: what the operating system offers for
//     preallocating space, punching holes and counting allocated blocks.
//
// # Concurrency
//
// One goroutine appends (Reserve, Write, StartAppending and the segment
// rollover they do); one goroutine at a time may Sync, concurrently with
// Write; any number read, at offsets of frames that are durable. The map of
// open segments is guarded by Log.mu, a leaf lock.
package seglog
