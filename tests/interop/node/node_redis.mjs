// Interop cases for node-redis (`redis` on npm), RESP2 and RESP3: createClient, duplicate()
// subscribers, subscribe / pSubscribe / sSubscribe with listeners (string and buffer mode),
// PUBSUB helpers, and resubscription after a CLIENT KILL or a server restart.

import { createClient } from "redis";
import {
  HOST, PORT, PAYLOADS, NON_ASCII_PAYLOAD, WAIT, nonAsciiNames,
  Inbox, check, eq, finish, once, restartServer, runCase, short, unique, until, within,
} from "./common.mjs";

const VERSION = (await import("redis/package.json", { with: { type: "json" } })).default.version;
console.error(`redis (node-redis) ${VERSION}`);

function options(p, extra = {}) {
  return {
    socket: {
      host: HOST,
      port: PORT,
      connectTimeout: WAIT,
      // Reconnect quickly: cases that restart the server wait for the resubscription.
      reconnectStrategy: (retries) => (retries > 200 ? new Error("gave up reconnecting") : 50),
    },
    RESP: p,
    ...extra,
  };
}

/** A connected client; closed after the case. */
async function connect(t, p, extra = {}) {
  const client = createClient(options(p, extra));
  return track(t, client);
}

async function track(t, client) {
  client.errors = [];
  client.on("error", (err) => client.errors.push(err));
  t.defer(() => client.destroy());
  // node-redis retries a failed handshake; bound it so a broken server fails fast.
  await within(client.connect(), WAIT, "connect()");
  check(client.isReady, "client is not ready after connect()");
  return client;
}

/** The usual node-redis pattern: a publisher, and a duplicate() of it that subscribes. */
async function pair(t, p, extra = {}) {
  const pub = await connect(t, p, extra);
  const sub = await track(t, pub.duplicate());
  return { pub, sub };
}

const cases = {
  async subscribe_listener(t, p) {
    const { pub, sub } = await pair(t, p);
    const ch = unique("sub");
    const inbox = new Inbox();
    await sub.subscribe(ch, (message, channel) => inbox.push([message, channel]));
    for (let i = 0; i < 50; i++) eq(await pub.publish(ch, `m${i}`), 1, "PUBLISH count");
    eq(await inbox.take(50), Array.from({ length: 50 }, (_, i) => [`m${i}`, ch]),
      "messages in order");
    await sub.unsubscribe(ch);
    eq(await pub.publish(ch, "after"), 0, "PUBLISH count after unsubscribe");
  },

  async two_listeners_one_channel(t, p) {
    const { pub, sub } = await pair(t, p);
    const ch = unique("two");
    const first = new Inbox();
    const second = new Inbox();
    const l1 = (m) => first.push(m);
    await sub.subscribe(ch, l1);
    await sub.subscribe(ch, (m) => second.push(m));
    // Two listeners share one server-side subscription.
    eq(await pub.pubSubNumSub(ch), { [ch]: 1 }, "PUBSUB NUMSUB with two listeners");
    eq(await pub.publish(ch, "both"), 1, "PUBLISH count");
    eq([await first.next(), await second.next()], ["both", "both"], "both listeners called");
    await sub.unsubscribe(ch, l1);
    eq(await pub.pubSubNumSub(ch), { [ch]: 1 }, "NUMSUB after removing one listener");
    await sub.unsubscribe(ch);
    eq(await pub.pubSubNumSub(ch), { [ch]: 0 }, "NUMSUB after removing all listeners");
  },

  async psubscribe_listener(t, p) {
    const { pub, sub } = await pair(t, p);
    const base = unique("pat");
    const inbox = new Inbox();
    await sub.pSubscribe(`${base}.*`, (message, channel) => inbox.push([message, channel]));
    eq(await pub.publish(`${base}.x`, "hello"), 1, "PUBLISH count for a pattern match");
    eq(await pub.publish(`${base}-no`, "no"), 0, "PUBLISH count without a match");
    eq(await inbox.next(), ["hello", `${base}.x`], "pattern listener");
    await sub.pUnsubscribe(`${base}.*`);
    eq(await pub.publish(`${base}.x`, "after"), 0, "PUBLISH count after pUnsubscribe");
  },

  async ssubscribe_listener(t, p) {
    const { pub, sub } = await pair(t, p);
    const ch = unique("shard");
    const inbox = new Inbox();
    await sub.sSubscribe(ch, (message, channel) => inbox.push([message, channel]));
    eq(await pub.sPublish(ch, "sharded"), 1, "SPUBLISH count");
    eq(await pub.publish(ch, "global"), 0, "PUBLISH count on a shard-only channel");
    eq(await inbox.next(), ["sharded", ch], "sharded listener");
    eq(await pub.pubSubShardNumSub(ch), { [ch]: 1 }, "PUBSUB SHARDNUMSUB");
    eq(await pub.pubSubShardChannels(`${ch}*`), [ch], "PUBSUB SHARDCHANNELS");
  },

  async publish_counts_and_order(t, p) {
    const { pub, sub } = await pair(t, p);
    const other = await track(t, pub.duplicate());
    const base = unique("count");
    const ch = `${base}.c`;
    const inbox = new Inbox();
    await sub.subscribe(ch, (m, c) => inbox.push(["message", m, c]));
    await sub.pSubscribe(`${base}.*`, (m, c) => inbox.push(["pmessage", m, c]));
    await other.subscribe(ch, () => {});
    eq(await pub.publish(ch, "x"), 3, "PUBLISH count: channel + pattern + channel");
    eq(await inbox.take(2), [["message", "x", ch], ["pmessage", "x", ch]],
      "channel listener before pattern listener");
  },

  async pubsub_introspection(t, p) {
    const { pub, sub } = await pair(t, p);
    const other = await track(t, pub.duplicate());
    const base = unique("intro");
    const numpat = await pub.pubSubNumPat();
    await sub.subscribe([`${base}:a`, `${base}:b`], () => {});
    await other.subscribe(`${base}:a`, () => {});
    await other.pSubscribe([`${base}:*`, `${base}:?`], () => {});
    eq(await pub.pubSubNumSub([`${base}:a`, `${base}:b`, `${base}:none`]),
      { [`${base}:a`]: 2, [`${base}:b`]: 1, [`${base}:none`]: 0 }, "pubSubNumSub");
    // node-redis parses NUMSUB as a flat array, in RESP3 too; so do its users' raw calls.
    eq(await pub.sendCommand(["PUBSUB", "NUMSUB", `${base}:a`]), [`${base}:a`, 2],
      "raw PUBSUB NUMSUB");
    eq((await pub.pubSubChannels(`${base}:*`)).sort(), [`${base}:a`, `${base}:b`],
      "pubSubChannels");
    eq((await pub.pubSubNumPat()) - numpat, 2, "pubSubNumPat increase");
  },

  async client_name(t, p) {
    const name = unique(`nr${p}`).replaceAll(":", "-");
    const { pub, sub } = await pair(t, p, { name });
    eq(await pub.clientGetName(), name, "CLIENT GETNAME");
    // duplicate() keeps the options, the name included.
    eq(await sub.clientGetName(), name, "CLIENT GETNAME of the duplicate");
  },

  async ping_while_subscribed(t, p) {
    const { sub } = await pair(t, p);
    await sub.subscribe(unique("ping"), () => {});
    // RESP2 answers PING in subscribe mode with ["pong", ""], which node-redis reports as
    // "pong"; RESP3 answers +PONG.
    eq(await sub.ping(), p === 2 ? "pong" : "PONG", "PING while subscribed");
  },

  async non_ascii_channel(t, p) {
    const [ch, pat] = nonAsciiNames();
    const { pub, sub } = await pair(t, p);
    const inbox = new Inbox();
    await sub.subscribe(ch, (m, c) => inbox.push(["message", m, c]));
    await sub.pSubscribe(pat, (m, c) => inbox.push(["pmessage", m, c]));
    eq(await pub.publish(ch, NON_ASCII_PAYLOAD), 2, "PUBLISH count");
    eq(await inbox.take(2), [["message", NON_ASCII_PAYLOAD, ch],
      ["pmessage", NON_ASCII_PAYLOAD, ch]], "listeners");
    eq(await pub.pubSubNumSub(ch), { [ch]: 1 }, "NUMSUB");
  },

  async resubscribe_after_client_kill(t, p) {
    await resubscribeCase(t, p, async (admin, subId) => {
      eq(await admin.clientKill({ filter: "ID", id: subId }), 1, "CLIENT KILL ID count");
    });
  },

  async resubscribe_after_restart(t, p) {
    await resubscribeCase(t, p, () => restartServer());
  },
};

// RESP2 only: the server refuses other commands in subscribe mode with Redis's exact error,
// which node-redis passes on to the caller.
cases.resp2_subscribe_context_error = async (t, p) => {
  const { sub } = await pair(t, p);
  const ch = unique("ctx");
  await sub.subscribe(ch, () => {});
  let error = null;
  try {
    await sub.publish(ch, "from a subscribed RESP2 connection");
  } catch (err) {
    error = err;
  }
  check(error, "PUBLISH in subscribe mode did not fail");
  eq(error.message, "ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / " +
    "PING / QUIT / RESET are allowed in this context", "error text");
  // The connection stays subscribed and usable.
  eq(await sub.ping(), "pong", "PING after the refused command");
};

// RESP3 only: one connection can subscribe and run ordinary commands.
cases.resp3_commands_while_subscribed = async (t, p) => {
  const { sub } = await pair(t, p);
  const ch = unique("self");
  const inbox = new Inbox();
  await sub.subscribe(ch, (m) => inbox.push(m));
  eq(await sub.publish(ch, "to-myself"), 1, "PUBLISH from the subscribed connection");
  eq(await sub.echo("between"), "between", "ECHO on the subscribed connection");
  eq(await inbox.next(), "to-myself", "own message");
};

/**
 * Subscribes one duplicate() to many channels, patterns and shard channels, disrupts its
 * connection, and checks that node-redis's resubscription (all of it sent before any
 * reply) restored every subscription with messages arriving complete and in order.
 */
async function resubscribeCase(t, p, disrupt) {
  const { pub: admin, sub } = await pair(t, p);
  const subId = await sub.clientId();
  const base = unique("resub");
  const channels = Array.from({ length: 30 }, (_, i) => `${base}:c${i}`);
  const patterns = Array.from({ length: 10 }, (_, i) => `${base}:p${i}:*`);
  const shards = Array.from({ length: 10 }, (_, i) => `${base}:s${i}`);
  const inbox = new Inbox();
  await sub.subscribe(channels, (m, c) => inbox.push(`${c}=${m}`));
  await sub.pSubscribe(patterns, (m, c) => inbox.push(`p|${c}=${m}`));
  await sub.sSubscribe(shards, (m, c) => inbox.push(`s|${c}=${m}`));

  const readyAgain = once(sub, "ready", 10000);
  await disrupt(admin, subId);
  await readyAgain;
  await until(async () => {
    const numsub = await admin.pubSubNumSub(channels);
    const shardnumsub = await admin.pubSubShardNumSub(shards);
    return Object.values(numsub).every((v) => v === 1) &&
      Object.values(shardnumsub).every((v) => v === 1);
  }, "subscriptions not restored", 5000);
  const want = [];
  for (const [i, c] of channels.entries()) {
    eq(await admin.publish(c, `m${i}`), 1, `PUBLISH count on ${c} after reconnect`);
    want.push(`${c}=m${i}`);
  }
  for (const [i, pt] of patterns.entries()) {
    const c = pt.replace("*", "x");
    eq(await admin.publish(c, `pm${i}`), 1, `PUBLISH count on ${c} after reconnect`);
    want.push(`p|${c}=pm${i}`);
  }
  for (const [i, s] of shards.entries()) {
    eq(await admin.sPublish(s, `sm${i}`), 1, `SPUBLISH count on ${s} after reconnect`);
    want.push(`s|${s}=sm${i}`);
  }
  eq(await inbox.take(want.length), want, "messages after resubscription");
}

for (const [payloadName, data] of Object.entries(PAYLOADS)) {
  cases[`payload_${payloadName}`] = async (t, p) => {
    const { pub, sub } = await pair(t, p);
    const ch = unique("payload");
    const inbox = new Inbox();
    // bufferMode = true: the listener gets Buffers, byte for byte.
    await sub.subscribe(ch, (message, channel) => inbox.push([message, channel]), true);
    eq(await pub.publish(ch, data), 1, "PUBLISH count");
    const [message, channel] = await inbox.next();
    eq(channel, Buffer.from(ch), "channel");
    check(Buffer.isBuffer(message) && message.equals(data),
      `payload changed in transit: sent ${data.length} bytes, got ${short(message)}`);
  };
}

for (const p of [2, 3]) {
  for (const [name, fn] of Object.entries(cases)) {
    if (name.startsWith(`resp${5 - p}_`)) continue; // resp2_* cases on RESP2 only, and so on
    const timeout = name.startsWith("resubscribe") ? 20000 : 8000;
    await runCase(`node-redis/resp${p}/${name}`, (t) => fn(t, p), timeout);
  }
}
finish();
