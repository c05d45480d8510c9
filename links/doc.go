// Package links serves KurrentDB's link events and standard projections
// over a [cairn.Store].
//
// # Links
//
// A link is an event of type [LinkType] ("$>") whose data, "N@stream",
// names the event at version N of stream. An application may write links
// like any other event. A read that resolves links ([Reader.Resolve],
// KurrentDB's resolveLinkTos) returns each link with the event it names
// ([Resolved]); when that event is gone (its stream deleted or tombstoned,
// truncated past it, hidden by the [Options.Visible] rules, or removed by
// compaction) it returns the link alone, as KurrentDB does; so it does when
// the reader may not read the event's stream ([Options.Readable]). Data that does
// not parse makes an ordinary event, returned as it is.
//
// # The standard projections
//
// KurrentDB's standard projections write streams of links: $ce-<category>
// ($by_category), $et-<type> ($by_event_type), $streams ($streams),
// $category-<category> ($stream_by_category, whose events are stream
// references, type [StreamReferenceType], whose data is a stream id) and
// $bc-<correlation id> ($by_correlation_id). cairn writes nothing for
// them: the engine's index ([cairn.IndexReader]), written in the same
// commit as the events, files every event under its category, type, first
// event of a stream and correlation id, and a [Reader] reads those lists
// as the streams ([Virtual]). A category is the part of a stream id before
// the first '-', KurrentDB's default; [CheckQuery] refuses any other
// separator, or the last '-'.
//
// An entry's number is its version in the stream: numbers start at 0 and
// have no gaps, and never change. The event an entry reads as is built
// for each read; it is not in the log, and so never in a read of $all:
//
//   - its type is $> (or $@ in $category- streams), its content type
//     binary, its data "N@stream" naming the filed event (in $ce-
//     streams, a filed link's own data: KurrentDB links to what a link
//     names);
//   - its id is a name-based UUID of the stream and the number, the same
//     on every read (persistent subscriptions acknowledge by it);
//   - its position is the filed event's position, so positions ascend
//     with numbers; its creation time is the filed event's.
//
// Whether a projection is enabled, and where a disabled one stopped, is
// kept by [Projections].
//
// # Caveats
//
//   - The index keeps an entry whose event compaction removed; the entry
//     still has its number. When the engine no longer knows the event's
//     stream, the entry reads as a link with no data, which names nothing.
//   - Reading a virtual stream needs an engine that keeps the index;
//     otherwise reads fail with an error matching [cairn.ErrNotSupported].
//   - KurrentDB files the events of system streams ('$') in $streams and
//     $et- streams too; the index files them under their tags only.
package links
