// Package kurrentdbsvc serves a [cairn.Store] over the KurrentDB
// (EventStoreDB) gRPC protocol, so that the official KurrentDB clients work
// against cairn unchanged.
//
// It implements the v1 Streams service (Append, Read, Delete, Tombstone,
// BatchAppend), subscriptions through Read (catch-up then live, on a stream
// or on $all, with server-side stream-name and event-type filters and
// checkpoints), the v2 multi-stream append and KurrentDB 26.1's
// AppendRecords (both on [cairn.Store.AppendBatch]; AppendRecords checks
// the streams it does not write with check-only requests of the same
// atomic batch), persistent subscriptions (create, update, delete, read
// with ack and nack, info, list, replay parked) on the groups of package
// subscription, the Projections service (every call) on a
// [projections.Manager], the discovery services: server features and
// gossip, which describes a cluster of one node, alive and leader, the
// scavenge calls of the Operations service (its code generated in package
// operationspb), and the Users service (package userspb) over the host's
// user database (package users). [Services.HTTPHandler] serves KurrentDB's HTTP API
// (/ping, /info, /health/live, /gossip, /stats and, with
// [Options.AtomPub], the AtomPub append), which the host serves on the
// same port. [Version] is the KurrentDB version the services match.
//
// As KurrentDB: a batch append past the client's deadline is answered
// with DEADLINE_EXCEEDED and the Timeout detail and not written; a soft
// delete of a stream that does not exist fails with wrong-expected-version
// (a tombstone of one never written succeeds when it allows a missing
// stream); the v2 appends keep a record's schema in the metadata v1 reads
// return ($schema.name, $schema.format).
//
// The services are the protocol alone: [Services.Register] puts them on a
// gRPC server, and the server that hosts them (package server: the
// listener, TLS, authentication, metrics, shutdown) gives them what they
// need of it in a [Host]. They never import the host.
//
// # Access control
//
// With an ACL checker ([Host.Access]), every call is decided for the
// principal the host put in its context (package auth), by the rules of
// KurrentDB's legacy authorization policy and stream ACLs (package acl):
//
//   - Read of a stream, and a subscription to it, need $r of its ACL; a
//     read or subscription of $all, filtered or not, $r of $all's ACL
//     ($$$all's metadata; administrators by default). Append, BatchAppend
//     and the v2 append need $w of each stream; Delete and Tombstone $d.
//     Reading and writing "$$x" need $mr and $mw of x.
//   - Create, Update and Delete of a persistent subscription, ReplayParked,
//     RestartSubsystem and the scavenge calls take an administrator or an
//     operator ($ops); consuming a group needs $r of its stream ($all for a
//     group on $all); GetInfo and List an authenticated user.
//   - The Users service: administrators create, update, delete, enable,
//     disable, reset passwords and read anyone; a user reads its own
//     details and changes its own password (giving the current one).
//
// A refusal is PermissionDenied with the trailer exception=access-denied,
// which the clients turn into their access-denied error; a BatchAppend
// refusal answers its correlation id only, and the v2 append carries
// AccessDeniedErrorDetails. Administrators may write system streams (their
// names start with '$', $settings among them) through the Store's system
// view, as KurrentDB lets them; a $settings event or a metadata $acl that
// is not an ACL is refused, since it would grant nothing. Without a
// checker every call is allowed, and system streams are not written.
//
// # Mapping
//
// cairn has one global position per event; the protocol's commit and prepare
// positions are both that position. A stream's revision is the event's
// version. The event type, content type (application/json or
// application/octet-stream) and creation time travel in the protocol's
// system metadata; an event's metadata is the protocol's custom metadata.
// Reads of $all from a position include the event at that position in both
// directions; subscriptions from a position or revision start after it, as
// KurrentDB's do.
//
// # Stream metadata
//
// A stream's metadata is the last event of its metadata stream, "$$" and
// the stream's name, a JSON object. Reads and subscriptions of the stream
// enforce $maxCount (only the last n events), $maxAge (only events younger
// than that many seconds) and $tb (only versions from it on), as KurrentDB
// does; reads of $all do not. Other properties are kept as given. A
// metadata stream keeps only its last event; reading one that was never
// written returns no event rather than stream-not-found.
//
// # Deletions
//
// cairn's engines record every delete and tombstone in the log, in the
// commit that makes it ([cairn.Deletion], an event of the system stream
// $deletions). Reads and subscriptions of $all, and persistent
// subscriptions, present each record as KurrentDB writes the delete: a
// tombstone as a $streamDeleted event of the stream, at revision
// 9223372036854775807 (long.MaxValue), without data; a soft delete as a
// $metadata event of the stream's metadata stream, $$<stream>, whose data
// is {"$tb":9223372036854775807}. Filters of reads and subscriptions of
// $all match them under those names, so that a filter excluding system
// events leaves them out. A read of the deleted stream fails with
// stream-not-found (soft) or stream-deleted (tombstone), as in KurrentDB.
//
// # Persistent subscriptions
//
// A group runs with the consumer strategy it was created or updated with:
// RoundRobin, DispatchToSingle, Pinned or PinnedByCorrelation (see
// [subscription.Strategy]); unknown names are refused; a Create that names
// no strategy takes the deprecated enum, whose zero is DispatchToSingle, as
// KurrentDB does, and an Update always takes the enum.
//
// Every setting of Create and Update, and the options of a consumer (Read)
// and its nacks, is checked, and a value out of its range is refused with
// InvalidArgument naming the field, as the protocol spells it; nothing is
// written and no value is replaced by another. Negative counts, sizes and
// durations are refused, a min_checkpoint_count above a non-zero
// max_checkpoint_count, a duration in ticks under a millisecond, a
// consumer buffer_size below one, an unknown nack action, a replay's
// stop_at below one. A max_retry_count of 0 means no retries and a message
// timeout of 0 no timeout, as in KurrentDB; a request without a message
// timeout takes 30 s, and a history_buffer_size or min_checkpoint_count of
// 0 takes cairn's default (500, 10).
//
// GetInfo and List report every setting as it was created or updated, the
// start in KurrentDB's formats ("C:n/P:n" on $all, a revision on a stream,
// -1 for the end), the group's statistics and its connections: each
// consumer's address, user, connection name (the client's connection-name
// header, "<unknown>" without one), slots, in-flight events and counts;
// rates are measured between two calls, as KurrentDB measures them. A
// group holds history_buffer_size events and checkpoints every
// min_checkpoint_count events processed; live_buffer_size,
// read_batch_size, max_checkpoint_count, checkpoint_after and
// extra_statistics are kept and reported and do not change how it runs.
// Errors carry KurrentDB's messages and trailers (exception, stream-name,
// group-name), from which the clients make their typed errors.
//
// # Links and the standard projections
//
// Reads, subscriptions and persistent subscriptions honour resolveLinkTos
// (package links): a link ($> event whose data is N@stream) arrives with
// the event it names in the protocol's ReadEvent{event, link}, or alone
// (link set, event empty) when that event is gone: deleted, tombstoned,
// truncated by cairn or by the stream's $tb, $maxCount or $maxAge, or
// compacted away. The streams of KurrentDB's standard projections ($ce-,
// $et-, $streams, $category-, $bc-) are read from the Store's index
// ([links.Reader]); their links report the position of the event they
// name and are never in $all. A stream filter whose one prefix is
// $idx-ce-<category> or $idx-et-<type> (KurrentDB 25.1's secondary
// indexes) reads and follows the index on reads and subscriptions of $all.
// [Host.Standard] says which standard projections are enabled.
//
// # Memory
//
// A request holds at most about three messages' worth, whatever it asks
// for; the host bounds a message (package server):
//
//   - An append (Append, BatchAppend, the v2 multi-stream append) holds its
//     events until it commits; [Options.MaxAppendBytes] bounds them, counted
//     as their encoded size plus [AppendEventOverhead] each. Past it the
//     append is refused with the protocol's maximum-append-size error (the
//     Go client's AppendTransactionSizeExceededError) and nothing of it is
//     written. A BatchAppend call holds at most that much across all its
//     open correlation ids and its appends in flight: it runs its appends
//     concurrently (to at most 128 streams at once; those to one stream
//     in the order they arrived), so that the engine commits them
//     together, and answers each as it finishes.
//   - A read or subscription holds one page of the engine's events, which
//     ends after 256 events or the event that brings it to 4 MiB of data
//     and metadata ([cairn.SizedReader]), and sends one event per message.
//
// # Filtered reads
//
// A read of $all (not a subscription) with a filter examines at most the
// filter's max events (its search window): if it has not found count
// matches by then it sends a checkpoint with the position of the last event
// examined and ends, and the client reads on from after that position. A
// filter whose window is "count" gives no max: the read searches until
// count matches or the end of the log, for as long as the caller's
// deadline allows (cancelling the call stops it). Subscriptions send a
// checkpoint every max × checkpointIntervalMultiplier events examined (32
// when no max is given). Matching an event costs one lookup per distinct
// prefix length, whatever the number of prefixes; a filter holds at most
// [MaxFilterPrefixes] prefixes of [MaxFilterPrefixBytes] bytes, or a
// regular expression of [MaxFilterRegexBytes] bytes, and a larger one is
// refused with InvalidArgument naming the limit.
//
// # Caveats
//
//   - Delete and Tombstone check the expected revision and then delete: an
//     append that lands between the two is deleted with the stream.
//   - Metadata streams ($$stream) are written through the engine, since the
//     Store reserves names starting with '$': their appends call no Store
//     hook, and only these services' subscribers are woken by them.
//   - Of the Operations service only the scavenge calls are served. The
//     official Go client ships no definition of it: a Go program calls it
//     through package operationspb.
//   - Content types other than JSON are recorded as binary.
//   - A soft delete writes no event to the metadata stream: reading
//     $$<stream> after it returns the metadata set before (KurrentDB
//     returns {"$tb": long.MaxValue}), and the $metadata event $all shows
//     for it has the revision of its record in $deletions. The filter of a
//     persistent subscription to $all matches a record as cairn stores it
//     (stream $deletions, type $deletion).
package kurrentdbsvc
