// Package export writes a cairn store's log as JSON lines, and imports such
// an export into any store: to move events from one engine to another (the
// embedded engine to PostgreSQL and back), to keep a portable copy, or to
// inspect a store with ordinary tools (jq, grep).
//
//	n, err := export.Write(ctx, source, file, export.Options{})
//	…
//	st, err := export.Import(ctx, target, file, export.ImportOptions{})
//
// # The format
//
// One JSON object per line, UTF-8. The first line is the header, the last
// the end record; between them every event of the log (or of the streams
// the export was limited to), in position order, each stream's first event
// preceded by the stream's state:
//
//	{"cairn_export":{"format":1,"created":"2026-05-04T10:00:00Z","head":41}}
//	{"stream_state":{"stream":"order-1","state":"live","first_version":0}}
//	{"stream":"order-1","version":0,"position":0,"id":"0196…","type":"OrderPlaced","content_type":"application/json","data":{"total":42},"metadata":{"user":"ada"},"tags":["vip"],"created":"2026-05-04T09:59:58.123456Z"}
//	{"stream":"blob","version":0,"position":1,"id":"0196…","type":"Raw","content_type":"application/octet-stream","data_base64":"AAE=","created":"…"}
//	{"end":{"events":2,"streams":2}}
//
// An event line has the same fields as the lines of `cairn read`. Its data
// is embedded as JSON ("data") when the content type is JSON and the bytes
// are compact, valid UTF-8 JSON, so that they come back byte for byte;
// otherwise it is base64 ("data_base64"): binary data, and JSON written with
// spaces or newlines. Metadata follows the same rule ("metadata" or
// "metadata_base64"). An event line has an "id"; the other records have a
// single key ("cairn_export", "stream_state", "end"), so that
// `jq 'select(.id)'` selects the events.
//
// A stream's state is "live", "deleted" (soft-deleted: reads say not found,
// a new append continues after its last version) or "tombstoned"; for a live
// stream first_version is the first version its reads return (above 0 when
// it was truncated). Stream metadata set through the KurrentDB protocol is
// the stream "$$" + name, exported like any stream and along with the
// streams it describes.
//
// The log includes the events of deleted and truncated streams that the
// source engine has not yet compacted away: an import replays them and
// deletes or truncates again, so that the target reproduces the source.
// The engine's records of deletions (the stream cairn.DeletionsStream) are
// not exported: the import's deletes and tombstones record themselves.
//
// # Import
//
// [Import] appends the events in the export's order, the events of
// consecutive lines grouped into atomic batches, each stream's events with
// the exact expected version they had, so that every event keeps its stream
// version. After the last event it truncates, deletes and tombstones the
// streams as their states say.
//
// An import is idempotent by event id: run again after an interruption (a
// crash, a cancelled context, a reader that failed half-way) it recognises
// the events that are already in the target, by the contract's retry rule
// (the same events with the same ids and expectation return the first
// result), appends the rest, and finishes with no event twice. Where the
// retry rule cannot recognise an append (the earlier run grouped the events
// differently), the import reads the target stream, checks that the events
// it holds are the export's, event id by event id, and appends what is
// missing. A target stream that holds other events at the same versions is
// an error that names the stream, the version and both ids; nothing more is
// written.
//
// # Caveats
//
//   - Positions and creation times are the target's: an engine assigns them
//     when it commits, and no API sets them. The events keep their relative
//     order in the global log, and their stream versions.
//   - A stream whose first versions were truncated and then compacted away
//     starts, in the export, above version 0. The import fills the missing
//     versions with placeholder events (type [PlaceholderType], no data, ids
//     derived from the stream and version) and truncates them away, so that
//     versions match; they stay in the target's global log until the target
//     compacts.
//   - What no read returns cannot be exported: a stream deleted or
//     tombstoned whose events were all compacted away, and the exact point
//     of a truncation beyond a stream's last event (exported as a
//     truncation at its end). Snapshots and projections' read models are not
//     exported: they are derived from the events.
//   - Writes that continue during an export are not exported beyond the
//     head recorded at the start; a stream truncated or deleted during the
//     export may be exported in either state.
//   - Importing through a cairn server (cairn://) writes through its cairn.v1
//     API, which refuses the "$$" streams of stream metadata.
//   - One export's events should be imported into a target that holds
//     nothing else of theirs; events with ids already in the target in other
//     streams are refused as duplicates.
package export
