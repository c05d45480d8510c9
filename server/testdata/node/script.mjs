// A KurrentDB application, in the style of the official Node.js client's
// documentation, run against cairn serve: node script.mjs HOST:PORT.
// It prints one line per fact it observed; the Go test compares them with
// what KurrentDB shows.
import {
  KurrentDBClient,
  jsonEvent,
  binaryEvent,
  START,
  FORWARDS,
  persistentSubscriptionToStreamSettingsFromDefaults,
} from "@kurrent/kurrentdb-client";

const [conn] = process.argv.slice(2);
if (!conn) {
  console.error("usage: node script.mjs kurrentdb://USER:PASSWORD@HOST:PORT?...");
  process.exit(2);
}
setTimeout(() => {
  console.error("timed out");
  process.exit(3);
}, 60_000).unref();

const client = KurrentDBClient.connectionString(conn);
const text = (data) => Buffer.from(data).toString("utf8");
const body = (e) => (e.isJson ? JSON.stringify(e.data) : text(e.data));
const show = (r) =>
  r.link
    ? `${r.link.streamId} ${r.link.revision} ${text(r.link.data)} -> ` +
      (r.event ? `${r.event.streamId} ${r.event.revision} ${r.event.type} ${body(r.event)}` : "none")
    : `${r.event.streamId} ${r.event.revision} ${r.event.type} ${body(r.event)}`;

// Appends, as an application records what happened.
await client.appendToStream("order-1", [
  jsonEvent({ type: "OrderPlaced", data: { id: 1, total: 42 } }),
  jsonEvent({ type: "OrderShipped", data: { id: 1 } }),
]);
await client.appendToStream("order-2", jsonEvent({ type: "OrderPlaced", data: { id: 2, total: 7 } }));
console.log("appended");

// The category stream, links resolved.
for await (const r of client.readStream("$ce-order", { direction: FORWARDS, fromRevision: START, resolveLinkTos: true })) {
  console.log("read " + show(r));
}

// A subscription to the category: history, then live events.
const sub = client.subscribeToStream("$ce-order", { fromRevision: START, resolveLinkTos: true });
let seen = 0;
for await (const r of sub) {
  console.log("subscription " + show(r));
  if (++seen === 3) {
    await client.appendToStream("order-2", jsonEvent({ type: "OrderShipped", data: { id: 2 } }));
    await client.appendToStream("order-3", jsonEvent({ type: "OrderPlaced", data: { id: 3, total: 1 } }));
  }
  if (seen === 5) break;
}
await sub.unsubscribe();

// The event-type stream, links as they are.
for await (const r of client.readStream("$et-OrderPlaced", { fromRevision: START })) {
  console.log("type " + show(r));
}

// A link the application writes itself.
await client.appendToStream("vip-orders", binaryEvent({ type: "$>", data: Buffer.from("1@order-1") }));
for await (const r of client.readStream("vip-orders", { fromRevision: START, resolveLinkTos: true })) {
  console.log("link " + show(r));
}

// A persistent subscription to the category, acked by its links.
await client.createPersistentSubscriptionToStream(
  "$ce-order",
  "node",
  persistentSubscriptionToStreamSettingsFromDefaults({ startFrom: START, resolveLinkTos: true }),
);
const info = await client.getPersistentSubscriptionToStreamInfo("$ce-order", "node");
console.log(`persistent info ${info.eventSource} ${info.groupName} resolveLinkTos=${info.settings.resolveLinkTos}`);
const group = client.subscribeToPersistentSubscriptionToStream("$ce-order", "node");
let acked = 0;
for await (const r of group) {
  console.log("persistent " + show(r));
  await group.ack(r);
  if (++acked === 5) break;
}
await group.unsubscribe();

await client.dispose();
console.log("done");
