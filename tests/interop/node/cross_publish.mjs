// Cross-node helper for py/cross_node.py: an ioredis publisher (RESP3 by default, RESP2 with
// INTEROP_PROTOCOL=2) on node B publishes every payload of common.mjs's PAYLOADS, in order,
// on the channel given as the first argument, and prints each PUBLISH reply (B's own receiver
// count) on one line.

import Redis from "ioredis";
import { PAYLOADS } from "./common.mjs";

const [channel] = process.argv.slice(2);
const c = new Redis({ host: process.env.INTEROP_HOST ?? "127.0.0.1",
  port: Number(process.env.INTEROP_PORT_B), protocol: Number(process.env.INTEROP_PROTOCOL ?? 3),
  lazyConnect: true, connectTimeout: 3000, retryStrategy: () => null });
c.on("error", () => {});
await c.connect();
const replies = [];
for (const name of ["empty", "nul", "crlf", "invalid_utf8", "1mib"]) {
  replies.push(await c.publish(Buffer.from(channel), PAYLOADS[name]));
}
console.log(replies.join(" "));
await c.quit();
