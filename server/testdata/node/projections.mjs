// Projections through the published Node.js client, as a KurrentDB
// application creates and queries them: node projections.mjs CONNECTION
// HTTP-BASE. It prints one line per fact; the Go test (TestNodeProjections)
// compares them with what KurrentDB shows.
import { KurrentDBClient, jsonEvent } from "@kurrent/kurrentdb-client";

const [connectionString] = process.argv.slice(2);
if (!connectionString) {
  console.error("usage: node projections.mjs CONNECTION-STRING HTTP-BASE-URL");
  process.exit(2);
}
setTimeout(() => {
  console.error("timed out");
  process.exit(3);
}, 60_000).unref();

const client = KurrentDBClient.connectionString(connectionString);
const say = (...parts) => console.log(parts.join(" "));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// until polls fn until it returns something truthy.
const until = async (what, fn) => {
  for (let i = 0; i < 500; i++) {
    const v = await fn();
    if (v) return v;
    await sleep(20);
  }
  throw new Error(`${what}: never`);
};

await client.appendToStream("order-1", [
  jsonEvent({ type: "OrderPlaced", data: { total: 42 } }),
  jsonEvent({ type: "OrderShipped", data: {} }),
]);
await client.appendToStream("order-2", jsonEvent({ type: "OrderPlaced", data: { total: 7 } }));

// A continuous projection that counts and sums, and one partitioned by
// stream.
await client.createProjection(
  "order-totals",
  `fromCategory("order").when({
     $init: function () { return { placed: 0, total: 0 }; },
     OrderPlaced: function (s, e) { s.placed++; s.total += e.data.total; return s; }
   })`,
);
await client.createProjection(
  "per-order",
  `fromCategory("order").foreachStream().when({
     $init: function () { return { events: 0 }; },
     $any: function (s, e) { s.events++; return s; }
   })`,
);
const state = await until("order-totals counts both orders", async () => {
  const s = await client.getProjectionState("order-totals");
  return s?.placed === 2 ? s : null;
});
say("state order-totals", JSON.stringify(state));
const part = await until("per-order counts order-1", async () => {
  const s = await client.getProjectionState("per-order", { partition: "order-1" });
  return s?.events === 2 ? s : null;
});
say("state per-order order-1", JSON.stringify(part));

// Live: a new order moves the state on.
await client.appendToStream("order-3", jsonEvent({ type: "OrderPlaced", data: { total: 1 } }));
const live = await until("order-totals counts the third order", async () => {
  const s = await client.getProjectionState("order-totals");
  return s?.placed === 3 ? s : null;
});
say("state order-totals", JSON.stringify(live));

const status = await client.getProjectionStatus("order-totals");
say("status", status.name, status.status);

// The list: the standard projections and the application's.
const list = await client.listProjections();
say("list", list.map((p) => p.name).sort().join(","));
const standard = list.filter((p) => p.name.startsWith("$"));
say("standard", standard.map((p) => `${p.name}=${p.status}`).sort().join(","));

// Disable, enable, delete.
await client.disableProjection("order-totals");
say("disabled", (await client.getProjectionStatus("order-totals")).status);
await client.enableProjection("order-totals");
say("enabled", (await client.getProjectionStatus("order-totals")).status);
await client.disableProjection("per-order");
await client.deleteProjection("per-order");
say("after delete", (await client.listProjections()).map((p) => p.name).filter((n) => !n.startsWith("$")).sort().join(","));
try {
  await client.getProjectionState("per-order");
  say("state of a deleted projection succeeded");
} catch (e) {
  say("state of a deleted projection", e.type ?? e.constructor.name);
}

await client.dispose();
console.log("done");
