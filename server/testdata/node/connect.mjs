// Connects with the connection string cairn serve prints, as a Node.js
// application would, and appends and reads one event: node connect.mjs
// CONNECTION-STRING. cmd/cairn's TestServeAsAUserWould runs it.
import { KurrentDBClient, jsonEvent, START } from "@kurrent/kurrentdb-client";

const [connectionString] = process.argv.slice(2);
if (!connectionString) {
  console.error("usage: node connect.mjs CONNECTION-STRING");
  process.exit(2);
}
setTimeout(() => {
  console.error("timed out");
  process.exit(3);
}, 60_000).unref();

const client = KurrentDBClient.connectionString(connectionString);
await client.appendToStream("order-2", jsonEvent({ type: "OrderPlaced", data: { total: 7 } }));
console.log("appended order-2");
for await (const { event } of client.readStream("order-2", { fromRevision: START })) {
  console.log("read", event.streamId, event.type);
}
await client.dispose();
