// Stream ACLs through the published Node.js client, as a KurrentDB
// application sets and meets them: node acl.mjs ADMIN-CONNECTION HTTP-BASE
// ADA-CONNECTION BOB-CONNECTION. The Go test (TestNodeACL) creates ada (in
// accounting) and bob through the Users service first: the Node.js client
// has no users API. It prints one line per fact; the test compares them
// with what KurrentDB shows.
import { KurrentDBClient, jsonEvent, START, ErrorType } from "@kurrent/kurrentdb-client";

const [adminConnection, , adaConnection, bobConnection] = process.argv.slice(2);
if (!adminConnection || !adaConnection || !bobConnection) {
  console.error("usage: node acl.mjs ADMIN-CONNECTION HTTP-BASE ADA-CONNECTION BOB-CONNECTION");
  process.exit(2);
}
setTimeout(() => {
  console.error("timed out");
  process.exit(3);
}, 60_000).unref();

const admin = KurrentDBClient.connectionString(adminConnection);
const ada = KurrentDBClient.connectionString(adaConnection);
const bob = KurrentDBClient.connectionString(bobConnection);
const say = (...parts) => console.log(parts.join(" "));
const attempt = async (what, fn) => {
  try {
    await fn();
    say(what, "succeeded");
  } catch (e) {
    const typed = e.type === ErrorType.ACCESS_DENIED && e.constructor.name === "AccessDeniedError";
    say(what, ...(typed ? [e.type, "(AccessDeniedError)"] : [e.type ?? `untyped ${e.constructor.name}: ${e.message}`]));
  }
};
const read = async (client, stream, options = {}) => {
  const out = [];
  for await (const { event, link } of client.readStream(stream, { fromRevision: START, ...options })) {
    if (!link) out.push(`${event.revision} ${event.type}`);
    else out.push(`${link.revision} ${link.data} -> ${event ? `${event.streamId} ${event.revision} ${event.type}` : "none"}`);
  }
  return out;
};

// The administrator writes a ledger and gives it an ACL through the
// client's stream metadata.
await admin.appendToStream("ledger-1", [
  jsonEvent({ type: "Credited", data: { amount: 10 } }),
  jsonEvent({ type: "Debited", data: { amount: 3 } }),
]);
await admin.setStreamMetadata("ledger-1", {
  acl: { readRoles: ["accounting"], writeRoles: ["ada"], metaReadRoles: ["$admins"] },
});
const { metadata } = await admin.getStreamMetadata("ledger-1");
const acl = metadata.acl;
say("metadata", `readRoles=${acl.readRoles}`, `writeRoles=${acl.writeRoles}`, `metaReadRoles=${acl.metaReadRoles}`);

// bob is in no group: refused, with the client's AccessDenied error.
await attempt("bob reads ledger-1", () => read(bob, "ledger-1"));
await attempt("bob appends to ledger-1", () => bob.appendToStream("ledger-1", jsonEvent({ type: "Debited", data: { amount: 1000 } })));
await attempt("bob reads ledger-1's metadata", () => bob.getStreamMetadata("ledger-1"));
// ada is in accounting, and may write.
for (const line of await read(ada, "ledger-1")) say("ada reads ledger-1", line);
await attempt("ada appends to ledger-1", () => ada.appendToStream("ledger-1", jsonEvent({ type: "Credited", data: { amount: 5 } })));

// A category stream is a system stream: administrators only, until its
// ACL says otherwise; a resolved link shows only what the reader may read.
await attempt("ada reads $ce-ledger", () => read(ada, "$ce-ledger"));
await admin.setStreamMetadata("$ce-ledger", { acl: { readRoles: ["accounting", "bob"] } });
for (const line of await read(ada, "$ce-ledger", { resolveLinkTos: true })) say("ada reads $ce-ledger", line);
for (const line of await read(bob, "$ce-ledger", { resolveLinkTos: true })) say("bob reads $ce-ledger", line);

// A user's own streams are its to use, under the default ACLs.
await bob.appendToStream("bob-notes", jsonEvent({ type: "Noted", data: {} }));
for (const line of await read(bob, "bob-notes")) say("bob reads bob-notes", line);

await Promise.all([admin.dispose(), ada.dispose(), bob.dispose()]);
console.log("done");
