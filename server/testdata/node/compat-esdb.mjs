// The compatibility calls through the older published Node.js client,
// @eventstore/db-client, run against cairn serve: node compat-esdb.mjs
// HOST:PORT. It prints one line per fact it observed; the Go test
// (TestNodeCompatEventStoreClient) compares them with what KurrentDB
// answers.
import {
  EventStoreDBClient,
  jsonEvent,
  START,
  persistentSubscriptionToStreamSettingsFromDefaults,
} from "@eventstore/db-client";

const [connectionString, base] = process.argv.slice(2);
if (!connectionString || !base) {
  console.error("usage: node compat-esdb.mjs CONNECTION-STRING HTTP-BASE-URL");
  process.exit(2);
}
setTimeout(() => {
  console.error("timed out");
  process.exit(3);
}, 60_000).unref();

const client = EventStoreDBClient.connectionString(connectionString);
const say = (...parts) => console.log(parts.join(" "));
const failure = async (what, fn) => {
  try {
    await fn();
    say(what, "succeeded");
  } catch (e) {
    say(what, e.type ?? `untyped ${e.constructor.name}: ${e.message}`);
  }
};

await client.appendToStream("jobs", [jsonEvent({ type: "Job", data: { n: 1 } })]);
for await (const r of client.readStream("jobs", { fromRevision: START })) {
  say("read", r.event.streamId, r.event.revision, r.event.type);
}

const settings = persistentSubscriptionToStreamSettingsFromDefaults({
  startFrom: START,
  maxRetryCount: 4,
  historyBufferSize: 60,
  checkPointUpperBound: 70,
  consumerStrategyName: "Pinned",
});
await client.createPersistentSubscriptionToStream("jobs", "workers", settings);
const info = await client.getPersistentSubscriptionToStreamInfo("jobs", "workers");
say("info", info.groupName, info.settings.maxRetryCount, info.settings.historyBufferSize, info.settings.checkPointUpperBound, info.settings.consumerStrategyName);
say("list", (await client.listPersistentSubscriptionsToStream("jobs")).map((g) => g.groupName).join(","));
await client.replayParkedMessagesToStream("jobs", "workers");
say("replayed parked");
await failure("create twice", () => client.createPersistentSubscriptionToStream("jobs", "workers", settings));
await failure("info of a missing group", () => client.getPersistentSubscriptionToStreamInfo("jobs", "nope"));
await failure("delete of a stream never written", () => client.deleteStream("never-written"));
await failure("oversized append", () =>
  client.appendToStream("big", jsonEvent({ type: "Big", data: { blob: "x".repeat(200_000) } })),
);
await failure("append past its deadline", () =>
  client.appendToStream("late", jsonEvent({ type: "Late", data: {} }), { deadline: -1000 }),
);

await client.dispose();
console.log("done");
