// Interop cases for Socket.IO with @socket.io/redis-adapter: two Socket.IO servers on
// different ports share the broker, with clients on each. Covers io.emit and
// io.to(room).emit across servers, fetchSockets() and serverSideEmit (request/response
// over pub/sub, servers counted with PUBSUB NUMSUB), binary payloads, and the sharded
// adapter (SSUBSCRIBE/SPUBLISH, servers counted with PUBSUB SHARDNUMSUB).
//
// Every adapter runs with ioredis and with node-redis clients, over RESP2 and RESP3.

import { createServer } from "node:http";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import Redis from "ioredis";
import { createClient } from "redis";
import { Server } from "socket.io";
import { io as ioClient } from "socket.io-client";
import {
  HOST, PORT, PAYLOADS, NON_ASCII_PAYLOAD, WAIT,
  Inbox, check, eq, finish, once, runCase, short, until, within,
} from "./common.mjs";

const version = async (name) =>
  (await import(`${name}/package.json`, { with: { type: "json" } })).default.version;
console.error(`socket.io ${await version("socket.io")}, socket.io-client ${
  await version("socket.io-client")}, @socket.io/redis-adapter ${
  await version("@socket.io/redis-adapter")}`);

const ROOM = "комната-🚀";

/** A pub/sub client pair of the given library, as the adapter's docs set them up. */
async function redisPair(library, protocol, cleanups) {
  if (library === "ioredis") {
    const make = () => {
      const c = new Redis({ host: HOST, port: PORT, protocol, lazyConnect: true,
        connectTimeout: WAIT, retryStrategy: (n) => (n > 100 ? null : 50) });
      c.on("error", () => {});
      // quit() lets the adapter's last UNSUBSCRIBEs complete; disconnect() if it hangs.
      cleanups.push(() => Promise.race([c.quit(), new Promise((r) => setTimeout(r, 1000))])
        .catch(() => {}).finally(() => c.disconnect()));
      return c;
    };
    const pub = make();
    const sub = make();
    await within(Promise.all([pub.connect(), sub.connect()]), WAIT, "ioredis connect()");
    return { pub, sub };
  }
  const pub = createClient({ socket: { host: HOST, port: PORT, connectTimeout: WAIT },
    RESP: protocol });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) {
    c.on("error", () => {});
    // close() lets the adapter's last UNSUBSCRIBEs complete; destroy() if it hangs.
    cleanups.push(() => Promise.race([c.close(), new Promise((r) => setTimeout(r, 1000))])
      .finally(() => c.isOpen && c.destroy()));
  }
  await within(Promise.all([pub.connect(), sub.connect()]), WAIT, "node-redis connect()");
  return { pub, sub };
}

/**
 * Two Socket.IO servers (A and B) on their own ports, each with its own pair of broker
 * connections; clients a1 and a2 connect to A, b1 to B.
 */
async function startCluster(variant, cleanups) {
  const servers = [];
  for (const label of ["A", "B"]) {
    const { pub, sub } = await redisPair(variant.library, variant.protocol, cleanups);
    const adapter = variant.sharded ? createShardedAdapter(pub, sub) : createAdapter(pub, sub);
    const http = createServer();
    const io = new Server(http, { adapter });
    cleanups.push(() => new Promise((resolve) => io.close(() => resolve())));
    await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
    io.label = label;
    io.port = http.address().port;
    io.pub = pub;
    io.on("connection", (socket) => {
      socket.on("join", async (room, ack) => {
        await socket.join(room);
        ack();
      });
    });
    servers.push(io);
  }
  const [A, B] = servers;
  const connectClient = async (server, name) => {
    const socket = ioClient(`http://127.0.0.1:${server.port}`, {
      transports: ["websocket"], forceNew: true, reconnection: false,
    });
    cleanups.push(() => socket.disconnect());
    socket.label = name;
    socket.inboxes = {};
    socket.onAny((event, ...args) => {
      socket.inboxes[event] ??= new Inbox();
      socket.inboxes[event].push(args);
    });
    socket.inbox = (event) => (socket.inboxes[event] ??= new Inbox());
    await once(socket, "connect");
    return socket;
  };
  const clients = {
    a1: await connectClient(A, "a1"),
    a2: await connectClient(A, "a2"),
    b1: await connectClient(B, "b1"),
  };
  // Both adapters have subscribed once each sees the other one in the server count.
  for (const io of servers) {
    await until(async () => (await io.of("/").adapter.serverCount()) === 2,
      `server ${io.label} does not see 2 servers`);
  }
  return { A, B, clients };
}

/** Client-side join through the server (socket.join), acknowledged. */
async function join(socket, room) {
  await socket.timeout(WAIT).emitWithAck("join", room);
}

const cases = {
  async server_count({ A, B }, variant) {
    // Classic adapter: PUBSUB NUMSUB socket.io-request#/#; sharded: PUBSUB SHARDNUMSUB.
    eq(await A.of("/").adapter.serverCount(), 2, "serverCount() on A");
    eq(await B.of("/").adapter.serverCount(), 2, "serverCount() on B");
    const [cmd, channel] = variant.sharded
      ? ["SHARDNUMSUB", "socket.io#/#"] : ["NUMSUB", "socket.io-request#/#"];
    const reply = variant.library === "ioredis"
      ? await A.pub.call("PUBSUB", cmd, channel)
      : await A.pub.sendCommand(["PUBSUB", cmd, channel]);
    eq(reply.map(String), [channel, "2"], `PUBSUB ${cmd} ${channel}`);
  },

  async io_emit_reaches_both_servers({ A, clients }) {
    A.emit("hello", { from: "A", n: 1 }, "text");
    for (const c of Object.values(clients)) {
      eq(await c.inbox("hello").next(`hello on ${c.label}`), [{ from: "A", n: 1 }, "text"],
        `io.emit received by ${c.label}`);
    }
  },

  async room_emit_across_servers({ A, B, clients }, variant) {
    const { a1, a2, b1 } = clients;
    await join(a1, ROOM);
    await join(b1, ROOM);
    if (variant.sharded) {
      // The sharded adapter subscribes to a room's own channel when a local socket joins.
      await until(async () => {
        const reply = await readShardNumSub(A.pub, variant, `socket.io#/#${ROOM}#`);
        return reply === 2;
      }, "room channel not subscribed by both servers");
    }
    B.to(ROOM).emit("room", "to-room", 1);
    eq(await a1.inbox("room").next("room on a1"), ["to-room", 1], "room emit on a1 (server A)");
    eq(await b1.inbox("room").next("room on b1"), ["to-room", 1], "room emit on b1 (server B)");
    // A fence after the room message: a2 must see the fence and never the room message.
    B.emit("fence");
    await a2.inbox("fence").next("fence on a2");
    eq(a2.inbox("room").items.length, 0, "room messages received by a2, not in the room");
    // The opposite selection: everyone outside the room, on both servers.
    A.except(ROOM).emit("outside", "x");
    eq(await a2.inbox("outside").next("outside on a2"), ["x"], "except(room) reaches a2");
    B.emit("fence2");
    for (const c of [a1, b1]) {
      await c.inbox("fence2").next(`fence2 on ${c.label}`);
      eq(c.inbox("outside").items.length, 0, `except(room) messages received by ${c.label}`);
    }
  },

  async fetch_sockets({ A, B, clients }) {
    const ids = Object.values(clients).map((c) => c.id).sort();
    eq((await A.fetchSockets()).map((s) => s.id).sort(), ids, "fetchSockets() from A");
    eq((await B.fetchSockets()).map((s) => s.id).sort(), ids, "fetchSockets() from B");
    await join(clients.b1, "only-b1");
    const remote = await A.in("only-b1").fetchSockets();
    eq(remote.map((s) => s.id), [clients.b1.id], "A.in(room).fetchSockets()");
    // A remote socket proxies emits back through the broker.
    remote[0].emit("direct", "via-remote");
    eq(await clients.b1.inbox("direct").next("direct on b1"), ["via-remote"],
      "emit on a RemoteSocket");
  },

  async server_side_emit_with_ack({ A, B }) {
    B.on("question", (n, ack) => ack({ answer: n * 2, from: "B" }));
    A.on("question", (n, ack) => ack({ answer: n * 2, from: "A" }));
    // Waits for as many responses as PUBSUB NUMSUB (SHARDNUMSUB) counts other servers.
    const fromA = await A.serverSideEmitWithAck("question", 21);
    eq(fromA, [{ answer: 42, from: "B" }], "responses to A's serverSideEmit");
    const fromB = await B.serverSideEmitWithAck("question", 5);
    eq(fromB, [{ answer: 10, from: "A" }], "responses to B's serverSideEmit");
    const plain = new Inbox();
    B.on("note", plain.push);
    A.serverSideEmit("note", "no ack expected");
    eq(await plain.next("note on B"), "no ack expected", "serverSideEmit without ack");
  },

  async binary_payloads({ A, clients }) {
    // Broadcasts with binary attachments are msgpack-encoded on the broker.
    const sent = { ...PAYLOADS, text: NON_ASCII_PAYLOAD };
    A.emit("bin", sent);
    const [got] = await clients.b1.inbox("bin").next("bin on b1", 6000);
    for (const [name, data] of Object.entries(sent)) {
      const value = got[name];
      if (typeof data === "string") {
        eq(value, data, `${name} payload`);
        continue;
      }
      const bytes = Buffer.isBuffer(value) ? value : value && Buffer.from(value);
      check(bytes && bytes.equals(data),
        `${name} payload changed in transit: sent ${data.length} bytes, got ${short(value)}`);
    }
  },
};

async function readShardNumSub(pub, variant, channel) {
  const reply = variant.library === "ioredis"
    ? await pub.call("PUBSUB", "SHARDNUMSUB", channel)
    : await pub.sendCommand(["PUBSUB", "SHARDNUMSUB", channel]);
  return Number(reply[1]);
}

const variants = [];
for (const sharded of [false, true]) {
  for (const library of ["ioredis", "node-redis"]) {
    for (const protocol of [2, 3]) variants.push({ sharded, library, protocol });
  }
}

for (const variant of variants) {
  const prefix = `socketio/${variant.sharded ? "sharded" : "classic"}-${variant.library}/` +
    `resp${variant.protocol}`;
  const cleanups = [];
  let cluster = null;
  // Starting the two servers is a case of its own; the rest need it.
  // The cluster's cleanups run after the variant's last case, not after this one.
  await runCase(`${prefix}/two_servers_start`, async () => {
    cluster = await startCluster(variant, cleanups);
  }, 10000);
  for (const [name, fn] of Object.entries(cases)) {
    await runCase(`${prefix}/${name}`, async () => {
      if (!cluster) throw new Error("the two Socket.IO servers did not start");
      await fn(cluster, variant);
    }, 10000);
  }
  for (const cleanup of cleanups.reverse()) {
    try {
      await Promise.race([Promise.resolve().then(cleanup), new Promise((r) => setTimeout(r, 2000))]);
    } catch {
      // Closing must not fail the next variant.
    }
  }
}
finish();
