// Cluster-aware Node clients against a cluster (tests/interop/cluster/run.sh): ioredis
// `Redis.Cluster` (with `shardedSubscribers`, the mode that routes SSUBSCRIBE per shard) and
// node-redis `createCluster`, over RESP2 and RESP3, each subscribing with SSUBSCRIBE to
// channels spread over every part of the slot space and receiving SPUBLISH from another
// cluster client; classic SUBSCRIBE/PUBLISH through cluster clients; and the Socket.IO sharded
// adapter over node-redis cluster clients with two Socket.IO servers.
//
// INTEROP_CLUSTER_NODES lists the seed nodes (`host:port,…`).

import { execFile } from "node:child_process";
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { createShardedAdapter } from "@socket.io/redis-adapter";
import calculateSlot from "cluster-key-slot";
import Redis from "ioredis";
import { createCluster } from "redis";
import { Server } from "socket.io";
import { io as ioClient } from "socket.io-client";
import { WAIT, Inbox, check, eq, finish, once, runCase, sleep, until, within } from "./common.mjs";

const SEEDS = (process.env.INTEROP_CLUSTER_NODES ?? "127.0.0.1:6379").split(",").map((a) => {
  const [host, port] = a.split(":");
  return { host, port: Number(port) };
});

/** Channels covering the slot space: two in each sixteenth, so every node owns some. */
function spreadChannels(tag) {
  const out = [];
  const id = randomBytes(4).toString("hex");
  for (let part = 0; part < 16; part++) {
    for (let i = 0, found = 0; found < 2; i++) {
      const ch = `interop:cluster:${tag}:${id}:${part}:${i}`;
      if (Math.floor(calculateSlot(ch) / 1024) === part) {
        out.push(ch);
        found++;
      }
    }
  }
  return out;
}

async function ioredisCluster(protocol, t) {
  const c = new Redis.Cluster(SEEDS, {
    shardedSubscribers: true,
    redisOptions: { protocol, connectTimeout: WAIT },
    clusterRetryStrategy: (n) => (n > 50 ? null : 100),
  });
  c.on("error", () => {});
  t.defer(() => c.disconnect());
  await within(new Promise((resolve, reject) => {
    c.once("ready", resolve);
    c.once("end", () => reject(new Error("cluster client ended")));
  }), WAIT, "ioredis cluster ready");
  return c;
}

async function nodeRedisCluster(protocol, t) {
  const c = createCluster({
    rootNodes: SEEDS.map((s) => ({ socket: { host: s.host, port: s.port, connectTimeout: WAIT } })),
    RESP: protocol,
  });
  c.on("error", () => {});
  t.defer(() => c.destroy());
  await within(c.connect(), WAIT, "node-redis cluster connect()");
  return c;
}

/** Every channel's message arrives once, with its payload. */
async function expectAll(inbox, channels, what) {
  const got = await inbox.take(channels.length, what, 2 * WAIT);
  const want = channels.map((ch) => [ch, `payload of ${ch}`]).sort();
  eq(got.map(([ch, m]) => [String(ch), String(m)]).sort(), want, what);
}

for (const protocol of [2, 3]) {
  await runCase(`ioredis-cluster/resp${protocol}/ssubscribe_spread_over_slots`, async (t) => {
    const sub = await ioredisCluster(protocol, t);
    const pub = await ioredisCluster(protocol, t);
    const channels = spreadChannels("io-s");
    const inbox = new Inbox();
    sub.on("smessage", (ch, msg) => inbox.push([ch, msg]));
    for (const ch of channels) await within(sub.ssubscribe(ch), WAIT, `ssubscribe ${ch}`);
    for (const ch of channels) {
      eq(await pub.spublish(ch, `payload of ${ch}`), 1, `SPUBLISH ${ch} receivers`);
    }
    await expectAll(inbox, channels, "smessages");
  }, 20000);

  await runCase(`ioredis-cluster/resp${protocol}/classic_subscribe_publish`, async (t) => {
    const sub = await ioredisCluster(protocol, t);
    const pub = await ioredisCluster(protocol, t);
    const channels = spreadChannels("io-c").slice(0, 8);
    const inbox = new Inbox();
    sub.on("message", (ch, msg) => inbox.push([ch, msg]));
    await within(sub.subscribe(...channels), WAIT, "subscribe");
    for (const ch of channels) await pub.publish(ch, `payload of ${ch}`);
    await expectAll(inbox, channels, "messages");
  });

  await runCase(`node-redis-cluster/resp${protocol}/ssubscribe_spread_over_slots`, async (t) => {
    const sub = await nodeRedisCluster(protocol, t);
    const pub = await nodeRedisCluster(protocol, t);
    const channels = spreadChannels("nr-s");
    const inbox = new Inbox();
    for (const ch of channels) {
      await within(sub.sSubscribe(ch, (msg, c) => inbox.push([c, msg])), WAIT, `sSubscribe ${ch}`);
    }
    for (const ch of channels) {
      eq(await pub.sPublish(ch, `payload of ${ch}`), 1, `SPUBLISH ${ch} receivers`);
    }
    await expectAll(inbox, channels, "smessages");
  }, 20000);

  await runCase(`node-redis-cluster/resp${protocol}/classic_subscribe_publish`, async (t) => {
    const sub = await nodeRedisCluster(protocol, t);
    const pub = await nodeRedisCluster(protocol, t);
    const channels = spreadChannels("nr-c").slice(0, 8);
    const inbox = new Inbox();
    await within(sub.subscribe(channels, (msg, c) => inbox.push([c, msg])), WAIT, "subscribe");
    for (const ch of channels) await pub.publish(ch, `payload of ${ch}`);
    await expectAll(inbox, channels, "messages");
  });

  await runCase(`socketio-sharded-node-redis-cluster/resp${protocol}/broadcasts_across_servers`, async (t) => {
    const servers = [];
    for (const label of ["A", "B"]) {
      const pub = await nodeRedisCluster(protocol, t);
      const sub = await nodeRedisCluster(protocol, t);
      const http = createServer();
      const io = new Server(http, { adapter: createShardedAdapter(pub, sub) });
      t.defer(() => new Promise((resolve) => io.close(() => resolve())));
      await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
      io.label = label;
      io.port = http.address().port;
      io.on("connection", (socket) => {
        socket.on("join", async (room, ack) => {
          await socket.join(room);
          ack();
        });
      });
      servers.push(io);
    }
    const [A, B] = servers;
    const connect = async (server) => {
      const socket = ioClient(`http://127.0.0.1:${server.port}`, {
        transports: ["websocket"], forceNew: true, reconnection: false,
      });
      t.defer(() => socket.disconnect());
      socket.inbox = new Inbox();
      socket.onAny((event, ...args) => socket.inbox.push([event, ...args]));
      await once(socket, "connect");
      return socket;
    };
    const a1 = await connect(A);
    const b1 = await connect(B);
    const b2 = await connect(B);
    for (const io of servers) {
      await until(async () => (await io.of("/").adapter.serverCount()) === 2,
        `server ${io.label} does not see 2 servers`);
    }
    A.emit("hello", "from A");
    for (const s of [a1, b1, b2]) eq(await s.inbox.next("hello"), ["hello", "from A"], "io.emit");
    const rooms = ["room-1", "комната-🚀", "room-3"];
    for (const room of rooms) {
      await within(b2.emitWithAck("join", room), WAIT, `join ${room}`);
    }
    // The sharded adapter subscribes to a room's channel after the join is acknowledged, so
    // the first emit may precede the subscription: emit until it arrives.
    for (const room of rooms) {
      await until(async () => {
        A.to(room).emit("room", room);
        const got = await b2.inbox.next("room", 300).catch(() => null);
        return got && got[1] === room;
      }, `to(${room}) never reached b2`);
    }
    const sockets = await A.fetchSockets();
    eq(sockets.length, 3, "fetchSockets() across servers");
    check(b1.inbox.items.length === 0, `b1 received room messages: ${b1.inbox.items.length}`);
  }, 20000);
}

// --- node failure (several pubsubd nodes on a backbone: INTEROP_CLUSTER_FAILOVER) ----------

const ctl = (...args) =>
  promisify(execFile)(process.env.INTEROP_CLUSTER_CTL, args, { timeout: 30000 });

/** Waits until every live seed reports `n` known nodes. */
async function knownNodes(n, skip = []) {
  for (const [i, s] of SEEDS.entries()) {
    if (skip.includes(i + 1)) continue;
    const c = new Redis({ host: s.host, port: s.port, lazyConnect: true, retryStrategy: null });
    c.on("error", () => {});
    try {
      await c.connect();
      await until(async () => (await c.cluster("INFO")).includes(`cluster_known_nodes:${n}\r\n`),
        `node ${i + 1} never saw ${n} nodes`, 20000);
    } finally {
      c.disconnect();
    }
  }
}

/**
 * Publishes rounds (errors ignored: the publisher recovers too) until every channel has
 * received one, then one last message per channel, which each must receive exactly once.
 */
async function recovers(inbox, channels, publish, what) {
  const tag = randomBytes(3).toString("hex");
  const recovered = new Set();
  const end = Date.now() + 60000;
  for (let round = 1; recovered.size < channels.length; round++) {
    if (Date.now() > end) {
      throw new Error(`${what}: ${channels.length - recovered.size} of ${channels.length} channels never received again`);
    }
    await Promise.all(channels.filter((ch) => !recovered.has(ch))
      .map((ch) => publish(ch, `${tag}:${round}`).catch(() => {})));
    await sleep(250);
    for (const [ch, msg] of inbox.items.splice(0)) {
      if (String(msg).startsWith(`${tag}:`)) recovered.add(String(ch));
    }
  }
  await sleep(300);
  inbox.items.splice(0);
  const last = `last:${tag}`;
  for (const ch of channels) {
    await until(async () => { await publish(ch, last); return true; }, `${what}: publish to ${ch}`, 10000);
  }
  const counts = new Map();
  await until(() => {
    for (const [ch, msg] of inbox.items.splice(0)) {
      if (String(msg) === last) counts.set(String(ch), (counts.get(String(ch)) ?? 0) + 1);
    }
    return counts.size === channels.length;
  }, `${what}: the last message reached ${counts.size} of ${channels.length} channels`, 10000);
  await sleep(500);
  for (const [ch, msg] of inbox.items.splice(0)) {
    if (String(msg) === last) counts.set(String(ch), counts.get(String(ch)) + 1);
  }
  const twice = [...counts].filter(([, n]) => n !== 1);
  check(twice.length === 0, `${what}: received more than once: ${twice.map(([c, n]) => `${c} x${n}`)}`);
}

/** Subscribes, kills node 2, recovers; restarts it (it rejoins), recovers again. */
async function survivesNodeLoss(t, inbox, channels, publish) {
  t.defer(() => ctl("start", "2").catch(() => {}));
  for (const ch of channels) await publish(ch, `payload of ${ch}`);
  await expectAll(inbox, channels, "smessages before the failure");
  await ctl("kill", "2");
  await recovers(inbox, channels, publish, "after node 2 was killed");
  await knownNodes(SEEDS.length - 1, [2]);
  await ctl("start", "2");
  await knownNodes(SEEDS.length);
  await recovers(inbox, channels, publish, "after node 2 rejoined");
}

if (process.env.INTEROP_CLUSTER_FAILOVER) {
  for (const protocol of [3]) {
    await runCase(`ioredis-cluster/resp${protocol}/node_killed_and_restarted`, async (t) => {
      const sub = await ioredisCluster(protocol, t);
      const pub = await ioredisCluster(protocol, t);
      const channels = spreadChannels("io-f");
      const inbox = new Inbox();
      sub.on("smessage", (ch, msg) => inbox.push([ch, msg]));
      for (const ch of channels) await within(sub.ssubscribe(ch), WAIT, `ssubscribe ${ch}`);
      await survivesNodeLoss(t, inbox, channels, (ch, m) => pub.spublish(ch, m));
    }, 180000);

    await runCase(`node-redis-cluster/resp${protocol}/node_killed_and_restarted`, async (t) => {
      const sub = await nodeRedisCluster(protocol, t);
      const pub = await nodeRedisCluster(protocol, t);
      const channels = spreadChannels("nr-f");
      const inbox = new Inbox();
      for (const ch of channels) {
        await within(sub.sSubscribe(ch, (msg, c) => inbox.push([c, msg])), WAIT, `sSubscribe ${ch}`);
      }
      await survivesNodeLoss(t, inbox, channels, (ch, m) => pub.sPublish(ch, m));
    }, 180000);
  }
}

finish();
