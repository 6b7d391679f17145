// Cross-node interop: two Socket.IO servers with @socket.io/redis-adapter, server A attached
// to pubsubd node A and server B to node B, broadcasting to each other's sockets through the
// NATS backbone. The classic adapter (ioredis: PSUBSCRIBE/PUBLISH, msgpack) and the sharded
// one (node-redis: SSUBSCRIBE/SPUBLISH), RESP3.
//
// Run by tests/interop/backbone/run.sh (INTEROP_PORT_A, INTEROP_PORT_B, INTEROP_NATS_MONITOR).
// The adapters' server count (PUBSUB NUMSUB / SHARDNUMSUB) is per node, as in Redis Cluster,
// so fetchSockets() and serverSideEmit acknowledgements only see servers on the same node;
// broadcasts (io.emit, rooms) reach every node.

import { createServer } from "node:http";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import Redis from "ioredis";
import { createClient } from "redis";
import { Server } from "socket.io";
import { io as ioClient } from "socket.io-client";
import { Inbox, WAIT, eq, check, finish, once, runCase, sleep } from "./common.mjs";

const HOST = process.env.INTEROP_HOST ?? "127.0.0.1";
const PORTS = { A: Number(process.env.INTEROP_PORT_A), B: Number(process.env.INTEROP_PORT_B) };
const MONITOR = Number(process.env.INTEROP_NATS_MONITOR);
const ROOM = "комната-🚀";

/** The NATS subject pubsubd maps a channel to (short names: no hashing). */
function subjectOf(ns, channel) {
  const safe = (b) => /[A-Za-z0-9\-_:#/@+=,!]/.test(String.fromCharCode(b));
  const tokens = Buffer.from(channel).toString("latin1").split(".").map((t) => {
    if (t === "") return "~";
    return [...Buffer.from(t, "latin1")].map((b) => (safe(b) ? String.fromCharCode(b)
      : "~" + b.toString(16).toUpperCase().padStart(2, "0"))).join("");
  });
  return `pubsubd.${ns}.${tokens.join(".")}`;
}

/** Until nats-server holds `n` subscriptions matching `subject`. */
async function interest(subject, n) {
  const url = `http://${HOST}:${MONITOR}/subsz?subs=1&test=${encodeURIComponent(subject)}`;
  const deadline = Date.now() + WAIT;
  for (;;) {
    const total = (await (await fetch(url)).json()).total ?? 0;
    if (total >= n) return;
    check(Date.now() < deadline, `${n} subscriptions for ${subject} on NATS (have ${total})`);
    await sleep(20);
  }
}

async function pair(library, port, cleanups) {
  if (library === "ioredis") {
    const make = () => {
      const c = new Redis({ host: HOST, port, lazyConnect: true, connectTimeout: WAIT,
        retryStrategy: () => null });
      c.on("error", () => {});
      cleanups.push(() => c.disconnect());
      return c;
    };
    const [pub, sub] = [make(), make()];
    await Promise.all([pub.connect(), sub.connect()]);
    return { pub, sub };
  }
  const pub = createClient({ socket: { host: HOST, port, connectTimeout: WAIT }, RESP: 3 });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) {
    c.on("error", () => {});
    // close() lets the adapter's last SUNSUBSCRIBEs complete; destroy() if it hangs.
    cleanups.push(() => Promise.race([c.close(), sleep(1000)]).catch(() => {})
      .finally(() => c.isOpen && c.destroy()));
  }
  await Promise.all([pub.connect(), sub.connect()]);
  return { pub, sub };
}

async function setUp(variant, t) {
  const cleanups = [];
  t.defer(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const servers = {};
  for (const label of ["A", "B"]) {
    const { pub, sub } = await pair(variant.library, PORTS[label], cleanups);
    const adapter = variant.sharded ? createShardedAdapter(pub, sub) : createAdapter(pub, sub);
    const http = createServer();
    const io = new Server(http, { adapter });
    cleanups.push(() => new Promise((r) => io.close(() => r())));
    await new Promise((r) => http.listen(0, "127.0.0.1", r));
    io.on("connection", (socket) => {
      socket.on("join", async (room, ack) => { await socket.join(room); ack(); });
    });
    servers[label] = { io, port: http.address().port };
  }
  const client = async (label) => {
    const s = ioClient(`http://127.0.0.1:${servers[label].port}`, {
      transports: ["websocket"], forceNew: true, reconnection: false });
    cleanups.push(() => s.disconnect());
    s.inboxes = {};
    s.onAny((event, ...args) => (s.inboxes[event] ??= new Inbox()).push(args));
    s.inbox = (event) => (s.inboxes[event] ??= new Inbox());
    await once(s, "connect");
    return s;
  };
  const a1 = await client("A");
  const b1 = await client("B");
  // Each node's adapter subscription has reached NATS.
  if (variant.sharded) await interest(subjectOf("s", "socket.io#/#"), 2);
  else await interest(subjectOf("g", "socket.io#/#"), 2);
  return { A: servers.A.io, B: servers.B.io, a1, b1 };
}

const variants = [
  { name: "classic_ioredis", library: "ioredis", sharded: false },
  { name: "sharded_node_redis", library: "node-redis", sharded: true },
];

for (const variant of variants) {
  await runCase(`cross_node_socketio_${variant.name}_io_emit_both_ways`, async (t) => {
    const { A, B, a1, b1 } = await setUp(variant, t);
    A.emit("hello", { from: "A" }, Buffer.from([0, 1, 255]));
    B.emit("hello", { from: "B" }, "text");
    for (const c of [a1, b1]) {
      const got = [await c.inbox("hello").next("first hello"), await c.inbox("hello").next("second hello")];
      const froms = got.map((g) => g[0].from).sort();
      eq(froms, ["A", "B"], "io.emit from both servers received");
    }
  }, 20000);

  await runCase(`cross_node_socketio_${variant.name}_room_on_the_other_node`, async (t) => {
    const { A, a1, b1 } = await setUp(variant, t);
    await b1.timeout(WAIT).emitWithAck("join", ROOM);
    if (variant.sharded) await interest(subjectOf("s", `socket.io#/#${ROOM}#`), 1);
    A.to(ROOM).emit("room", "to the room");
    eq(await b1.inbox("room").next("room message on B"), ["to the room"], "room emit across nodes");
    A.emit("marker", 1);
    eq(await a1.inbox("marker").next("marker on A"), [1], "marker");
    eq(a1.inbox("room").items?.length ?? 0, 0, "a1 is not in the room");
  }, 20000);
}

finish();
