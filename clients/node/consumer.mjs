// A civic subscriber in Node.js with a plain Redis client (the `redis` package from npm).
//
// Reads one civic stream in a consumer group of its own, takes the CloudEvent from each entry's `__data__`
// field (entries written before civic moved to `__data__` hold it in `event`), handles each event once by its
// id, and acknowledges an entry only after handling it. Prints one JSON line per handled event.
//
//   REDIS_URL=redis://127.0.0.1:6379/0 STREAM=civic:stream:registration GROUP=my-app node consumer.mjs
//
// STOP_AFTER=n ends after n handled events (used by civic's test); otherwise it runs until interrupted.
import { createClient } from "redis";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379/0";
const stream = process.env.STREAM ?? "civic:stream:registration";
const group = process.env.GROUP ?? "node-example";
const consumer = process.env.CONSUMER ?? `node-${process.pid}`;
const stopAfter = Number(process.env.STOP_AFTER ?? "0");

const client = createClient({ url });
client.on("error", (err) => console.error("redis:", err.message));
await client.connect();

async function ensureGroup() {
  try {
    // At 0, not $: the group sees everything still in the stream, also what was published before it existed.
    await client.xGroupCreate(stream, group, "0", { MKSTREAM: true });
  } catch (err) {
    if (!String(err.message).includes("BUSYGROUP")) throw err;
  }
}

const seen = new Set(); // a real subscriber keeps handled event ids in its own database
let handled = 0;

function handle(event) {
  if (seen.has(event.id)) return; // a redelivery or a replay: already done
  seen.add(event.id);
  handled += 1;
  console.log(JSON.stringify({ id: event.id, type: event.type, tenant: event.tenant, subject: event.subject,
    aggregatesequence: event.aggregatesequence, data: event.data }));
}

await ensureGroup();
let own = "0"; // first what was delivered to this consumer before and not acknowledged, then new entries
while (stopAfter === 0 || handled < stopAfter) {
  let reply;
  try {
    reply = await client.xReadGroup(group, consumer, { key: stream, id: own }, { COUNT: 100, BLOCK: 1000 });
  } catch (err) {
    if (String(err.message).includes("NOGROUP")) { await ensureGroup(); continue; } // Redis lost its data
    throw err;
  }
  const messages = reply?.[0]?.messages ?? [];
  if (own === "0" && messages.length === 0) { own = ">"; continue; }
  for (const { id, message } of messages) {
    const raw = message?.__data__ ?? message?.event;
    if (raw !== undefined) {
      try { handle(JSON.parse(raw)); } catch (err) { console.error(`entry ${id} is not a CloudEvent:`, err.message); }
    }
    await client.xAck(stream, group, id);
    if (stopAfter !== 0 && handled >= stopAfter) break;
  }
}
await client.quit();
