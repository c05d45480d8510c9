// Package natsstore is cairn's replicated engine: a cluster of nodes that
// keeps every acknowledged write through the loss of any one machine, on
// NATS JetStream (github.com/nats-io/nats.go) rather than consensus of its
// own.
//
// # Log and apply
//
// One JetStream stream, replicated (three replicas by default, file
// storage), is the cluster's log. Each record of it is one group of writes
// as a node's writer formed it: appends with their expected versions (and
// conditions), atomic batches, deletes, tombstones, truncations,
// snapshots, commits with their projections' writes, the steps of a
// compaction's purge (each node gives the space back after the last). Every
// node applies the log, in order, into its own copy, an embedded engine
// ([diskstore]) in its directory: expected versions, retries by event ID,
// tombstones, positions, versions and commit times are all decided when a
// record is applied, from the record and the copy, so every node decides
// the same. A writer on any node publishes its record (with the record's
// id as the message id, so that a publish retried is logged once), waits
// until its own node has applied it, and returns what the apply decided.
// There is no leader among the cairn nodes; JetStream orders the log.
//
// Reads come from the node's copy: a caller always reads its own writes,
// and [DB.Sync] waits until the copy holds everything the log held when
// it was called, for a read that must see every write acknowledged
// anywhere.
//
//	db, err := natsstore.Open(ctx, natsstore.Options{
//		Dir: "./node1",
//		URL: "nats://h1:4222,nats://h2:4222,nats://h3:4222",
//	})
//	if err != nil { … }
//	store := cairn.NewStore(db, cairn.Options{})
//	defer store.Close()
//
// # Restarts, new nodes, trimming
//
// The copy stores the sequence of the last record applied in the same
// frame as that record's writes ([diskstore.DB.Apply]), so a node that
// restarts, after a crash too, applies the log from the next record on:
// never one twice, never one skipped. A new node replays the log from its
// start, while the log is whole; once it was trimmed, start a new node
// from a copy of another node's directory (a backup), which replays the
// rest. Each node reports itself in the cluster's registry (a key-value
// bucket beside the stream): its address, for gossip ([DB.Members]), and
// the last record it applied; [DB.Trim] removes the records below the
// lowest of those. A node that finds the log trimmed past what it applied
// stops with [ErrHalted] and says so. A node that is down holds trimming
// back until it returns or is forgotten: [OpenRegistry] opens the
// registry without being a node, for tools that list the nodes and
// forget one gone for good ([Registry.Forget]; `cairn nodes`).
//
// # Embedded NATS
//
// [StartServer] runs a NATS server with JetStream inside the process, so
// that three cairn processes form a cluster with nothing else installed:
// each runs a server, routed to the others', and a node connected to it.
//
// # Caveats
//
//   - A commit with projections ([DB.CommitAll]) runs its projections on
//     the writer's node, against its copy, then logs their writes with
//     the events. When other writes reach the log first the commit is
//     refused everywhere and planned again; under a heavy stream of writes
//     from other nodes it may fail after 64 tries.
//   - A record holds at most what the NATS servers take in one message
//     (max_payload: 1 MiB by default, 8 MiB on the embedded server): a
//     larger append is refused, saying so.
//   - JetStream survives the loss of power of a majority of its servers
//     only with sync_interval: always (the embedded server's default).
//   - Query reads and append conditions are the copy's: they come with
//     the embedded engine's support for them.
package natsstore
