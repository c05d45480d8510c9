// The calls of KurrentDB's compatibility surface, through the published
// Node.js client, run against cairn serve: node compat.mjs CONNECTION-STRING HTTP-BASE-URL.
// It prints one line per fact it observed; the Go test (TestNodeCompat)
// compares them with what KurrentDB answers.
import {
  KurrentDBClient,
  jsonEvent,
  START,
  END,
  NO_STREAM,
  STREAM_EXISTS,
  PINNED_BY_CORRELATION,
  persistentSubscriptionToStreamSettingsFromDefaults,
  persistentSubscriptionToAllSettingsFromDefaults,
  ErrorType,
} from "@kurrent/kurrentdb-client";

const [connectionString, base] = process.argv.slice(2);
if (!connectionString || !base) {
  console.error("usage: node compat.mjs CONNECTION-STRING HTTP-BASE-URL");
  process.exit(2);
}
setTimeout(() => {
  console.error("timed out");
  process.exit(3);
}, 60_000).unref();

const client = KurrentDBClient.connectionString(connectionString);
const say = (...parts) => console.log(parts.join(" "));
const failure = async (what, fn) => {
  try {
    await fn();
    say(what, "succeeded");
  } catch (e) {
    say(what, e.type ?? `untyped ${e.constructor.name}: ${e.message}`);
    return e;
  }
};

// Persistent subscriptions: every setting as created, through gRPC.
const settings = persistentSubscriptionToStreamSettingsFromDefaults({
  startFrom: START,
  resolveLinkTos: true,
  extraStatistics: true,
  messageTimeout: 12_000,
  maxRetryCount: 3,
  checkPointAfter: 4_000,
  checkPointLowerBound: 5,
  checkPointUpperBound: 60,
  maxSubscriberCount: 1,
  liveBufferSize: 70,
  readBatchSize: 8,
  historyBufferSize: 90,
  consumerStrategyName: PINNED_BY_CORRELATION,
});
await client.appendToStream("jobs", [jsonEvent({ type: "Job", data: { n: 1 } }), jsonEvent({ type: "Job", data: { n: 2 } })]);
await client.createPersistentSubscriptionToStream("jobs", "workers", settings);
const info = await client.getPersistentSubscriptionToStreamInfo("jobs", "workers");
const s = info.settings;
say(
  "info",
  info.eventSource,
  info.groupName,
  `startFrom=${s.startFrom}`,
  `resolveLinkTos=${s.resolveLinkTos}`,
  `extraStatistics=${s.extraStatistics}`,
  `messageTimeout=${s.messageTimeout}`,
  `maxRetryCount=${s.maxRetryCount}`,
  `checkPointAfter=${s.checkPointAfter}`,
  `checkPointLowerBound=${s.checkPointLowerBound}`,
  `checkPointUpperBound=${s.checkPointUpperBound}`,
  `maxSubscriberCount=${s.maxSubscriberCount}`,
  `liveBufferSize=${s.liveBufferSize}`,
  `readBatchSize=${s.readBatchSize}`,
  `historyBufferSize=${s.historyBufferSize}`,
  `strategy=${s.consumerStrategyName}`,
);
await client.createPersistentSubscriptionToAll(
  "audit",
  persistentSubscriptionToAllSettingsFromDefaults({ startFrom: END }),
);
const allInfo = await client.getPersistentSubscriptionToAllInfo("audit");
say("info $all", allInfo.eventSource, allInfo.groupName, `startFrom=${allInfo.settings.startFrom}`);
const forStream = await client.listPersistentSubscriptionsToStream("jobs");
say("list jobs", forStream.map((g) => g.groupName).join(","));
const everything = await client.listAllPersistentSubscriptions();
say("list all", everything.map((g) => `${g.eventSource}/${g.groupName}`).sort().join(","));

// A consumer: its events, its connection as the group reports it.
const sub = client.subscribeToPersistentSubscriptionToStream("jobs", "workers", { bufferSize: 10 });
let got = 0;
for await (const e of sub) {
  got++;
  if (got === 1) {
    await sub.nack("park", "parked by the script", e);
  } else {
    await sub.ack(e);
  }
  if (got === 2) break;
}
const withConsumer = await client.getPersistentSubscriptionToStreamInfo("jobs", "workers");
const conn = withConsumer.connections[0];
say("connections", withConsumer.connections.length, `named=${conn?.connectionName !== "" && conn?.connectionName !== "<unknown>"}`, `from=${conn?.from !== ""}`);
// The maximum of one subscriber is reached.
const second = client.subscribeToPersistentSubscriptionToStream("jobs", "workers");
await failure("second consumer", async () => {
  for await (const _ of second) break;
});
await sub.unsubscribe();
await client.replayParkedMessagesToStream("jobs", "workers");
say("replayed parked");
await client.replayParkedMessagesToAll("audit");
say("replayed parked $all");

// Typed errors of persistent subscriptions.
await failure("create twice", () => client.createPersistentSubscriptionToStream("jobs", "workers", settings));
await failure("info of a missing group", () => client.getPersistentSubscriptionToStreamInfo("jobs", "nope"));
await failure("delete of a missing group", () => client.deletePersistentSubscriptionToStream("jobs", "nope"));
await client.deletePersistentSubscriptionToStream("jobs", "workers");
say("deleted group");

// Deleting a stream that never existed.
await failure("delete of a stream never written", () => client.deleteStream("never-written"));
await failure("tombstone of a stream never written", () => client.tombstoneStream("never-written-either"));

// An oversized append, by the batch append.
await failure("oversized append", () =>
  client.appendToStream("big", jsonEvent({ type: "Big", data: { blob: "x".repeat(200_000) } })),
);
// A batch append past its deadline.
await failure("append past its deadline", () =>
  client.appendToStream("late", jsonEvent({ type: "Late", data: {} }), { deadline: -1000 }),
);

// The v2 multi-stream append keeps the schema in the metadata.
await client.multiStreamAppend([
  { streamName: "orders", events: [jsonEvent({ type: "OrderPlaced", data: { id: 1 }, metadata: { tenant: "acme" } })], expectedState: NO_STREAM },
]);
for await (const r of client.readStream("orders", { fromRevision: START })) {
  const m = r.event.metadata;
  say("multi-append metadata", `$schema.name=${m["$schema.name"]}`, `$schema.format=${m["$schema.format"]}`, `tenant=${m.tenant}`);
}

// AppendRecords with checks that hold and checks that fail.
const rec = (streamName, type) => ({ streamName, record: jsonEvent({ type, data: {} }) });
const ok = await client.appendRecords(
  [rec("cart-1", "Added"), rec("cart-2", "Added"), rec("cart-1", "Added")],
  [
    { type: "stream_state", streamName: "orders", expectedState: 0n },
    { type: "stream_state", streamName: "never-there", expectedState: NO_STREAM },
  ],
);
say("appendRecords", ok.responses.map((r) => `${r.streamName}@${r.revision}`).sort().join(","));
const violation = await failure("appendRecords with failing checks", () =>
  client.appendRecords(
    [rec("cart-3", "Added")],
    [
      { type: "stream_state", streamName: "orders", expectedState: 5n },
      { type: "stream_state", streamName: "never-there", expectedState: STREAM_EXISTS },
    ],
  ),
);
say("violations", (violation?.violations ?? []).map((v) => `${v.checkIndex}:${v.streamName}`).join(","));

// KurrentDB's HTTP endpoints, on the same port.
const ping = await fetch(`${base}/ping`);
say("http ping", ping.status, (await ping.json()).text);
const nodeInfo = await (await fetch(`${base}/info`)).json();
say("http info", nodeInfo.state, nodeInfo.authentication.type);
say("http live", (await fetch(`${base}/health/live`)).status);

await client.dispose();
console.log("done");
