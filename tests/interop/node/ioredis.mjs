// Interop cases for ioredis, RESP2 and RESP3: separate publisher and subscriber connections
// as ioredis users write them, subscribe callbacks, message events (string and Buffer),
// the INFO ready check, auto-pipelining, connectionName, sharded pub/sub, and automatic
// resubscription after a CLIENT KILL or a server restart.

import Redis from "ioredis";
import {
  HOST, PORT, PAYLOADS, NON_ASCII_PAYLOAD, WAIT, nonAsciiNames,
  Inbox, check, eq, finish, once, restartServer, runCase, short, unique, until, within,
} from "./common.mjs";

const VERSION = (await import("ioredis/package.json", { with: { type: "json" } })).default.version;
console.error(`ioredis ${VERSION}`);

/** A connected client; closed after the case. */
async function connect(t, protocol, options = {}) {
  const client = new Redis({
    host: HOST,
    port: PORT,
    protocol,
    connectTimeout: WAIT,
    maxRetriesPerRequest: 3,
    // Reconnect quickly: cases that restart the server wait for the resubscription.
    retryStrategy: (attempt) => (attempt > 100 ? null : 50),
    lazyConnect: true,
    ...options,
  });
  const errors = [];
  client.on("error", (err) => errors.push(err));
  t.defer(() => client.disconnect());
  // connect() resolves once the handshake and the INFO ready check are done.
  await within(client.connect(), WAIT, "connect()");
  eq(client.status, "ready", "client status after connect()");
  client.errors = errors;
  return client;
}

/** Subscribes and checks the count that the subscribe callback receives. */
function subscribeWithCallback(client, method, names, expectedCount) {
  return new Promise((resolve, reject) => {
    client[method](...names, (err, count) => {
      if (err) return reject(new Error(`${method.toUpperCase()} failed: ${err.message}`));
      try {
        eq(count, expectedCount, `${method.toUpperCase()} ${names.join(" ")} callback count`);
        resolve(count);
      } catch (e) {
        reject(e);
      }
    });
  });
}

const cases = {
  async handshake_ready_check(t, p) {
    const name = unique(`hello${p}`).replaceAll(":", "-");
    const client = new Redis({ host: HOST, port: PORT, protocol: p, connectionName: name,
      lazyConnect: true, retryStrategy: () => null, connectTimeout: WAIT });
    t.defer(() => client.disconnect());
    const errors = [];
    client.on("error", (err) => errors.push(err.message));
    const ready = once(client, "ready");
    client.connect().catch(() => {});
    // ioredis sends HELLO, CLIENT SETNAME and both CLIENT SETINFOs in one burst, then INFO,
    // and emits "ready" only if INFO parses with loading:0.
    await ready;
    eq(errors, [], "errors emitted during the handshake");
    eq(await client.client("GETNAME"), name, "CLIENT GETNAME after the handshake");
    const info = await client.info();
    check(/^loading:0\r?$/m.test(info), `INFO has no loading:0 line: ${short(info)}`);
  },

  async subscribe_callback_counts(t, p) {
    const sub = await connect(t, p);
    const [a, b, s] = [unique("a"), unique("b"), unique("s")];
    const pat = `${unique("pat")}.*`;
    await subscribeWithCallback(sub, "subscribe", [a, b], 2);
    await subscribeWithCallback(sub, "psubscribe", [pat], 3);
    // Shard channels are counted on their own.
    await subscribeWithCallback(sub, "ssubscribe", [s], 1);
    eq(await sub.punsubscribe(pat), 2, "PUNSUBSCRIBE count");
    eq(await sub.sunsubscribe(s), 0, "SUNSUBSCRIBE count");
    eq(await sub.unsubscribe(a), 1, "UNSUBSCRIBE one channel count");
    eq(await sub.unsubscribe(), 0, "UNSUBSCRIBE (all) count");
    // Out of subscriber mode, the connection takes ordinary commands again.
    eq(await sub.echo("back"), "back", "ECHO after leaving subscriber mode");
  },

  async message_event(t, p) {
    const pub = await connect(t, p);
    const sub = await connect(t, p);
    const ch = unique("msg");
    const inbox = new Inbox();
    sub.on("message", inbox.push);
    eq(await sub.subscribe(ch), 1, "SUBSCRIBE count");
    for (let i = 0; i < 50; i++) eq(await pub.publish(ch, `m${i}`), 1, "PUBLISH count");
    const got = await inbox.take(50);
    eq(got, Array.from({ length: 50 }, (_, i) => [ch, `m${i}`]), "message events in order");
  },

  async pmessage_event(t, p) {
    const pub = await connect(t, p);
    const sub = await connect(t, p);
    const base = unique("pmsg");
    const inbox = new Inbox();
    sub.on("pmessage", inbox.push);
    eq(await sub.psubscribe(`${base}.*`), 1, "PSUBSCRIBE count");
    eq(await pub.publish(`${base}.x`, "hello"), 1, "PUBLISH count for a pattern match");
    eq(await pub.publish(`${base}-nomatch`, "no"), 0, "PUBLISH count without a match");
    eq(await inbox.next(), [`${base}.*`, `${base}.x`, "hello"], "pmessage event");
  },

  async publish_counts_and_order(t, p) {
    const pub = await connect(t, p);
    const sub = await connect(t, p);
    const other = await connect(t, p);
    const base = unique("count");
    const ch = `${base}.c`;
    const inbox = new Inbox();
    sub.on("message", (c, m) => inbox.push("message", c, m));
    sub.on("pmessage", (pt, c, m) => inbox.push("pmessage", pt, c, m));
    eq(await sub.subscribe(ch), 1, "SUBSCRIBE count");
    eq(await sub.psubscribe(`${base}.*`), 2, "PSUBSCRIBE count");
    eq(await other.subscribe(ch), 1, "second subscriber's SUBSCRIBE count");
    // One connection matching by channel and by pattern is counted, and served, twice:
    // the channel message first.
    eq(await pub.publish(ch, "x"), 3, "PUBLISH count");
    eq(await inbox.take(2), [["message", ch, "x"], ["pmessage", `${base}.*`, ch, "x"]],
      "message then pmessage");
  },

  async ssubscribe_spublish(t, p) {
    const pub = await connect(t, p);
    const sub = await connect(t, p);
    const ch = unique("shard");
    const strings = new Inbox();
    const buffers = new Inbox();
    sub.on("smessage", strings.push);
    sub.on("smessageBuffer", buffers.push);
    eq(await sub.ssubscribe(ch), 1, "SSUBSCRIBE count");
    eq(await pub.spublish(ch, "sharded"), 1, "SPUBLISH count");
    eq(await pub.publish(ch, "global"), 0, "PUBLISH count on a shard-only channel");
    eq(await strings.next(), [ch, "sharded"], "smessage event");
    eq(await buffers.next(), [Buffer.from(ch), Buffer.from("sharded")], "smessageBuffer event");
    eq(await pub.call("PUBSUB", "SHARDNUMSUB", ch), [ch, 1], "PUBSUB SHARDNUMSUB");
  },

  async pubsub_introspection(t, p) {
    const pub = await connect(t, p);
    const sub1 = await connect(t, p);
    const sub2 = await connect(t, p);
    const base = unique("intro");
    const numpat = await pub.pubsub("NUMPAT");
    eq(await sub1.subscribe(`${base}:a`, `${base}:b`), 2, "SUBSCRIBE count");
    eq(await sub2.subscribe(`${base}:a`), 1, "SUBSCRIBE count");
    eq(await sub2.psubscribe(`${base}:*`), 2, "PSUBSCRIBE count");
    eq(await pub.pubsub("NUMSUB", `${base}:a`, `${base}:b`, `${base}:none`),
      [`${base}:a`, 2, `${base}:b`, 1, `${base}:none`, 0], "PUBSUB NUMSUB");
    eq((await pub.pubsub("CHANNELS", `${base}:*`)).sort(), [`${base}:a`, `${base}:b`],
      "PUBSUB CHANNELS");
    eq((await pub.pubsub("NUMPAT")) - numpat, 1, "PUBSUB NUMPAT increase");
  },

  async auto_pipelining(t, p) {
    const pub = await connect(t, p, { enableAutoPipelining: true });
    const sub = await connect(t, p);
    const ch = unique("autopipe");
    const inbox = new Inbox();
    sub.on("messageBuffer", (c, m) => inbox.push(m.toString()));
    eq(await sub.subscribe(ch), 1, "SUBSCRIBE count");
    const n = 500;
    // Issued in one tick: ioredis batches them into a few writes.
    const counts = await Promise.all([
      ...Array.from({ length: n }, (_, i) => pub.publish(ch, `a${i}`)),
      pub.pubsub("NUMSUB", ch),
    ]);
    eq(counts.slice(0, n), Array(n).fill(1), "PUBLISH counts");
    eq(counts[n], [ch, 1], "PUBSUB NUMSUB in the same batch");
    check(pub.autoPipelineQueueSize === 0, "auto-pipeline queue drained");
    eq(await inbox.take(n), Array.from({ length: n }, (_, i) => `a${i}`), "messages in order");
  },

  async connection_name(t, p) {
    const name = unique(`name${p}`).replaceAll(":", "-");
    const admin = await connect(t, p);
    const sub = await connect(t, p, { connectionName: name });
    eq(await sub.client("GETNAME"), name, "CLIENT GETNAME");
    const ch = unique("named");
    eq(await sub.subscribe(ch), 1, "SUBSCRIBE count");
    const list = await admin.client("LIST");
    const line = list.split("\n").find((l) => l.includes(` name=${name} `));
    check(line, `no CLIENT LIST line with name=${name}`);
    check(/ sub=1 /.test(line), `CLIENT LIST line of the subscriber lacks sub=1: ${line}`);
  },

  async ping_in_subscriber_mode(t, p) {
    const sub = await connect(t, p);
    eq(await sub.subscribe(unique("ping")), 1, "SUBSCRIBE count");
    // RESP2 answers PING in subscribe mode with a ["pong", msg] array; RESP3 as usual.
    eq(await sub.ping(), p === 2 ? ["pong", ""] : "PONG", "PING");
    eq(await sub.ping("hi"), p === 2 ? ["pong", "hi"] : "hi", "PING hi");
  },

  async non_ascii_channel(t, p) {
    const [ch, pat] = nonAsciiNames();
    const pub = await connect(t, p);
    const sub = await connect(t, p);
    const inbox = new Inbox();
    sub.on("message", (c, m) => inbox.push("message", c, m));
    sub.on("pmessageBuffer", (pt, c, m) => inbox.push("pmessage", pt, c, m));
    eq(await sub.subscribe(ch), 1, "SUBSCRIBE count");
    eq(await sub.psubscribe(pat), 2, "PSUBSCRIBE count");
    eq(await pub.publish(ch, NON_ASCII_PAYLOAD), 2, "PUBLISH count");
    eq(await inbox.take(2), [
      ["message", ch, NON_ASCII_PAYLOAD],
      ["pmessage", pat, Buffer.from(ch),
        Buffer.from(NON_ASCII_PAYLOAD)],
    ], "message and pmessageBuffer");
  },

  // RESP3 only (the loop below skips it for RESP2): a subscribed connection still takes
  // ordinary commands, since replies and push messages are told apart by their type.
  async commands_while_subscribed(t, p) {
    const sub = await connect(t, p);
    const ch = unique("self");
    const inbox = new Inbox();
    sub.on("message", inbox.push);
    eq(await sub.subscribe(ch), 1, "SUBSCRIBE count");
    eq(await sub.publish(ch, "to-myself"), 1, "PUBLISH from the subscribed connection");
    eq(await sub.echo("between"), "between", "ECHO on the subscribed connection");
    eq(await inbox.next(), [ch, "to-myself"], "own message");
  },

  async resubscribe_after_client_kill(t, p) {
    await resubscribeCase(t, p, async (admin, subId) => {
      eq(await admin.client("KILL", "ID", subId), 1, "CLIENT KILL ID count");
    });
  },

  async resubscribe_after_restart(t, p) {
    await resubscribeCase(t, p, () => restartServer());
  },
};

/**
 * Subscribes to many channels, patterns and shard channels, disrupts the connection, and
 * checks that ioredis's automatic resubscription (sent in one burst) restored every one of
 * them, with messages arriving complete and in order.
 */
async function resubscribeCase(t, p, disrupt) {
  const admin = await connect(t, p);
  const sub = await connect(t, p);
  const subId = await sub.client("ID");
  const base = unique("resub");
  const channels = Array.from({ length: 30 }, (_, i) => `${base}:c${i}`);
  const patterns = Array.from({ length: 10 }, (_, i) => `${base}:p${i}:*`);
  const shards = Array.from({ length: 10 }, (_, i) => `${base}:s${i}`);
  const inbox = new Inbox();
  sub.on("message", (c, m) => inbox.push(`${c}=${m}`));
  sub.on("pmessage", (pt, c, m) => inbox.push(`${pt}|${c}=${m}`));
  sub.on("smessage", (c, m) => inbox.push(`s:${c}=${m}`));
  eq(await sub.subscribe(...channels), 30, "SUBSCRIBE count");
  eq(await sub.psubscribe(...patterns), 40, "PSUBSCRIBE count");
  for (const [i, s] of shards.entries()) eq(await sub.ssubscribe(s), i + 1, "SSUBSCRIBE count");

  const readyAgain = once(sub, "ready", 10000);
  await disrupt(admin, subId);
  await readyAgain;
  // Ready fires before the resubscription replies; wait until the server has them all.
  await until(async () => {
    const numsub = await admin.pubsub("NUMSUB", ...channels);
    const shardnumsub = await admin.call("PUBSUB", "SHARDNUMSUB", ...shards);
    return numsub.every((v, i) => i % 2 === 0 || v === 1) &&
      shardnumsub.every((v, i) => i % 2 === 0 || v === 1);
  }, "subscriptions not restored", 5000);
  const want = [];
  for (const [i, c] of channels.entries()) {
    eq(await admin.publish(c, `m${i}`), 1, `PUBLISH count on ${c} after reconnect`);
    want.push(`${c}=m${i}`);
  }
  for (const [i, pt] of patterns.entries()) {
    const c = pt.replace("*", "x");
    eq(await admin.publish(c, `pm${i}`), 1, `PUBLISH count on ${c} after reconnect`);
    want.push(`${pt}|${c}=pm${i}`);
  }
  for (const [i, s] of shards.entries()) {
    eq(await admin.spublish(s, `sm${i}`), 1, `SPUBLISH count on ${s} after reconnect`);
    want.push(`s:${s}=sm${i}`);
  }
  eq(await inbox.take(want.length), want, "messages after resubscription");
}

for (const [payloadName, data] of Object.entries(PAYLOADS)) {
  cases[`payload_${payloadName}`] = async (t, p) => {
    const pub = await connect(t, p);
    const sub = await connect(t, p);
    const ch = unique("payload");
    const inbox = new Inbox();
    sub.on("messageBuffer", inbox.push);
    eq(await sub.subscribe(ch), 1, "SUBSCRIBE count");
    eq(await pub.publish(ch, data), 1, "PUBLISH count");
    const [channel, message] = await inbox.next();
    eq(channel, Buffer.from(ch), "channel");
    check(Buffer.isBuffer(message) && message.equals(data),
      `payload changed in transit: sent ${data.length} bytes, got ${short(message)}`);
  };
}

for (const p of [2, 3]) {
  for (const [name, fn] of Object.entries(cases)) {
    if (name === "commands_while_subscribed" && p !== 3) continue;
    const timeout = name.startsWith("resubscribe") ? 20000 : 8000;
    await runCase(`ioredis/resp${p}/${name}`, (t) => fn(t, p), timeout);
  }
}
finish();
