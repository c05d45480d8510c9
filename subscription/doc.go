// Package subscription delivers a [cairn.Store]'s events to consumers as they
// become durable: catch-up subscriptions, which read history and then follow
// new events live, and persistent subscriptions, named groups whose progress
// is kept in the store and whose events several consumers share.
//
// # Catch-up subscriptions
//
// [All] follows the global log from a position and [Stream] one stream from
// a version, each from [Start], [End], [At] or [After]. A [Subscription] is
// pulled with [Subscription.Next] (or ranged over with
// [Subscription.Messages]): it reads a page of history at a time, and once it
// has delivered everything durable it sends a KindCaughtUp message and waits
// for the Store to signal new events. There is no gap and no duplicate at the
// switch from history to live, because the subscription always reads from
// the number after the last one it delivered, and takes the Store's change
// signal before the read that finds nothing new.
//
// [Query] follows the events that match a [cairn.Query] (dynamic
// consistency boundaries): tags and types, read through the engine's index.
//
// A [Filter] (stream prefixes or regexp, event types exact, by prefix or
// regexp, tags) selects events in the subscription, so the consumer does not
// receive the rest; a filtered subscription on $all reports its progress
// through skipped events with KindCheckpoint messages, so that a consumer of
// rare events can resume without rescanning.
//
// Events are delivered only once durable: the Store signals a change after
// the engine's append has returned, which is after the events are durable;
// engines that see commits of other processes signal them the same way.
//
// # Links and the standard projections' streams
//
// A subscription or a group may follow any stream, system streams too,
// among them the streams of KurrentDB's standard projections ($ce-order,
// $et-OrderPlaced, $streams, $category-order, $bc-<id>), which package
// [links] reads from the index as streams of links: their numbers are the
// index's, gapless, and the catch-up reads them page by page from the
// number after the last one delivered, then waits for the Store's change
// signal taken before the read that found nothing new, so the switch to
// live skips and repeats nothing there either. With
// [Options.ResolveLinks] (or [Settings.ResolveLinks] for a group) each
// link is delivered with the event it names ([Message.Target],
// [Delivery.Target]), or alone when that event is gone. A filter's stream
// prefix $idx-ce-<category> or $idx-et-<type> (KurrentDB's secondary
// indexes) passes the events of a category or of a type.
//
// # Backpressure
//
// Subscriptions are pulled, so a slow consumer is held back by itself: a
// subscription reads at most [Options.BufferSize] events ahead, and memory
// does not grow with the distance between the consumer and the head of the
// log. Each event message carries its lag, and a live subscription that falls
// more than [Options.MaxLag] positions behind says so with a KindFellBehind
// message before it goes on reading history. A persistent subscription group
// holds at most [Settings.BufferSize] events (read ahead, in flight or
// waiting for a retry), and assigns a consumer no more than its
// [ConsumerOptions.InFlight] unanswered events.
//
// Nothing here starts a goroutine. Cancelling the context of a call ends it
// promptly; closing a Subscription, a Consumer, a Manager or the Store ends
// the calls waiting on them.
//
// # Persistent subscriptions
//
// A [Manager] keeps named groups on $all or on a stream, created, updated,
// listed and deleted through it, whose definitions, checkpoints and parked
// events are stored in the store itself (see [Manager] for how). Consumers
// connect to a group with [Manager.Connect] and share its events: each
// [Consumer] pulls events with [Consumer.Next] and answers them with
// [Consumer.Ack] or [Consumer.Nack] (retry, skip or park); the group assigns
// events to its consumers in turn (round-robin), or as the KurrentDB
// protocol's DispatchToSingle, Pinned or PinnedByCorrelation strategies do
// (see [Strategy]). Settings out of range are
// refused by Create and Update, never replaced ([Settings.Validate]). Delivery is at
// least once: an event is retried when it is nacked with retry, when it is
// not answered within [Settings.MessageTimeout] of Next returning it, or
// when its consumer leaves holding it; it is parked after
// [Settings.MaxRetryCount] retries, and [Manager.ReplayParked] delivers
// parked events again. Events assigned to a consumer and not yet returned by
// its Next go back to the group without counting a retry. After a restart a
// group resumes from its last checkpoint, which never passes an event that
// was not acked, skipped or parked.
//
// # Caveats
//
//   - Every waiting subscription wakes on every commit, and a subscription
//     to one stream then reads that stream even when the commit was to
//     another: many stream subscriptions under a high write rate cost one
//     small read each per wake-up. Commits that land while a subscriber is
//     reading share one wake-up.
//   - Lag is counted in global positions, also for a subscription to one
//     stream, whose lag therefore includes other streams' events.
//   - A group should be served by one Manager at a time; see [Manager].
//   - A group's parked list is one record, rewritten on every change: it
//     suits up to some thousands of parked events, not millions.
//   - Acks and nacks are matched by event ID. Two events with the same ID in
//     flight in one group at once (possible only when an engine accepts a
//     reused ID within one append) cannot be told apart.
package subscription
