// ioredis over TLS with ACL users (`tls: { ca, cert, key }`, username and password), RESP3:
// publish/subscribe within the user's channels, NOPERM outside them, a wrong password.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(new URL("../node/package.json", import.meta.url));
const Redis = require("ioredis");
const dir = process.env.TLS_DIR;
const port = Number(process.env.TLS_PORT);
const pubsubd = process.env.INTEROP_SERVER === "pubsubd";
const tls = {
  ca: readFileSync(`${dir}/ca.crt`),
  cert: readFileSync(`${dir}/client.crt`),
  key: readFileSync(`${dir}/client.key`),
};
const connect = (username, password, extra = {}) =>
  new Redis({ host: "127.0.0.1", port, username, password, tls, lazyConnect: true,
    maxRetriesPerRequest: 0, retryStrategy: () => null, ...extra });

async function kase(name, fn) {
  const timer = new Promise((_, rej) => setTimeout(() => rej(new Error("timed out")), 8000));
  try {
    await Promise.race([fn(), timer]);
    console.log(`PASS ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

await kase("ioredis-tls-publish-subscribe", async () => {
  const sub = connect("reader", "readerpw");
  const pub = connect("app", "apppw");
  await sub.connect();
  await pub.connect();
  const got = new Promise((resolve) => sub.on("message", (ch, m) => resolve([ch, m])));
  await sub.subscribe("app.io");
  const n = await pub.publish("app.io", "hi");
  if (n !== 1) throw new Error(`PUBLISH returned ${n}`);
  const [ch, m] = await got;
  if (ch !== "app.io" || m !== "hi") throw new Error(`got ${ch} ${m}`);
  sub.disconnect();
  pub.disconnect();
});

await kase("ioredis-tls-noperm", async () => {
  const c = connect("app", "apppw");
  await c.connect();
  try {
    await c.publish("elsewhere", "x");
    throw new Error("PUBLISH outside the user's channels was allowed");
  } catch (e) {
    if (!e.message.startsWith("NOPERM")) throw e;
    if (pubsubd && e.message !== "NOPERM No permissions to access a channel") throw e;
  } finally {
    c.disconnect();
  }
});

await kase("ioredis-tls-wrong-password", async () => {
  const c = connect("app", "nope");
  // ioredis reports a failed HELLO AUTH as an error event, then closes the connection.
  const refused = new Promise((resolve) => c.on("error", (e) => resolve(e.message)));
  c.connect().catch(() => {});
  const msg = await refused;
  c.disconnect();
  if (!/^WRONGPASS invalid username-password pair or user is disabled\.$/.test(msg)) {
    throw new Error(`got ${msg}`);
  }
});
process.exit(0);
