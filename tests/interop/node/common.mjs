// Case runner and helpers shared by the Node client programs.
//
// A case is an async function receiving a context `t`; it throws on failure and registers
// cleanups with `t.defer(fn)`. `runCase` bounds it with a timeout, prints `PASS name` or
// `FAIL name: reason` (one line per case, which run.sh counts) and always runs the cleanups,
// so one broken case neither hangs the program nor leaks connections into the next one.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { isDeepStrictEqual, inspect, promisify } from "node:util";

export const HOST = process.env.INTEROP_HOST ?? "127.0.0.1";
export const PORT = Number(process.env.INTEROP_PORT ?? 6379);
const SERVER_CTL = process.env.INTEROP_SERVER_CTL;

// Default bound for one case, and for one wait on the server inside a case.
export const CASE_TIMEOUT = 8000;
export const WAIT = 3000;

// Payloads every client sends through PUBLISH and must receive byte for byte.
export const PAYLOADS = {
  empty: Buffer.alloc(0),
  nul: Buffer.from("a\0b\0", "latin1"),
  crlf: Buffer.from("line1\r\nline2\r\n*1\r\n$3\r\nfoo\r\n", "latin1"),
  invalid_utf8: Buffer.from([0xff, 0xfe, 0x80, 0x20, 0xc3, 0x28, 0x20, 0xed, 0xa0, 0x80]),
  "1mib": Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 31 + 7) & 0xff)),
};
export const NON_ASCII_PAYLOAD = "ünïcødé ✓ 🚀";

// A library rejecting one of its own internal promises while a client is being closed is
// not a case failure; report it and carry on. Case assertions are awaited, never orphaned.
process.on("unhandledRejection", (err) => {
  console.error(`unhandled rejection inside a library: ${err?.stack ?? err}`);
});

let passed = 0;
let failed = 0;

export class CaseTimeout extends Error {}

/** A channel name no other case or earlier run uses. */
export function unique(tag) {
  return `interop:node:${tag}:${randomBytes(5).toString("hex")}`;
}

/** A channel name that is not ASCII, and a pattern matching it, unique to one case. */
export function nonAsciiNames() {
  const tag = randomBytes(5).toString("hex");
  return [`интероп:${tag}:频道:🚀`, `интероп:${tag}:*`];
}

/** inspect() cut to a readable length: payloads may be 1 MiB. */
export function short(value, limit = 160) {
  if (value instanceof Error) return `${value.name}: ${value.message}`.slice(0, limit);
  const text = Buffer.isBuffer(value)
    ? `<Buffer ${value.length} bytes ${value.subarray(0, 24).toString("hex")}>`
    : inspect(value, { depth: 4, breakLength: Infinity, maxArrayLength: 20, maxStringLength: 80 });
  return text.length <= limit ? text : `${text.slice(0, limit)}... (${text.length} chars)`;
}

export function eq(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Error(`${what}: expected ${short(expected)}, got ${short(actual)}`);
  }
}

export function check(condition, what) {
  if (!condition) throw new Error(what);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with `what` unless the promise settles within ms. */
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CaseTimeout(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves with the arguments of the next `event` on emitter. */
export function once(emitter, event, ms = WAIT) {
  return within(
    new Promise((resolve) => emitter.once(event, (...args) => resolve(args))),
    ms,
    `event '${event}'`,
  );
}

/** Polls fn() until it returns something truthy; returns that value. */
export async function until(fn, what, ms = WAIT) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`${what} (last: ${short(last)})`);
    await sleep(20);
  }
}

/** Items pushed by listeners, taken in order by the case. */
export class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
  }

  push = (...item) => {
    const value = item.length === 1 ? item[0] : item;
    const waiter = this.waiters.shift();
    if (waiter) waiter(value);
    else this.items.push(value);
  };

  next(what = "message", ms = WAIT) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    let waiter;
    const arrival = new Promise((resolve) => {
      waiter = resolve;
      this.waiters.push(resolve);
    });
    // A wait that times out gives up its place: the next item must not go to a waiter nobody
    // is waiting on any more (it would be lost, and every later item one place behind).
    return within(arrival, ms, `waiting for ${what}`).catch((err) => {
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
      throw err;
    });
  }

  async take(n, what = "messages", ms = WAIT) {
    const out = [];
    const end = Date.now() + ms;
    while (out.length < n) {
      try {
        out.push(await this.next(what, Math.max(1, end - Date.now())));
      } catch (err) {
        throw new Error(`${what}: got ${out.length} of ${n} (${err.message})`);
      }
    }
    return out;
  }
}

/** Restarts the server on the same port, via the helper run.sh provides. */
export async function restartServer() {
  if (!SERVER_CTL) throw new Error("INTEROP_SERVER_CTL is not set: run through run.sh");
  await promisify(execFile)(SERVER_CTL, ["restart"], { timeout: 30000 });
}

export async function runCase(name, fn, timeout = CASE_TIMEOUT) {
  const cleanups = [];
  const t = { defer: (cleanup) => cleanups.push(cleanup) };
  let error = null;
  try {
    await within(fn(t), timeout, "case timed out");
  } catch (err) {
    error = err ?? new Error("rejected without a reason");
  }
  for (const cleanup of cleanups.reverse()) {
    try {
      await within(Promise.resolve().then(cleanup), 2000, "cleanup");
    } catch {
      // A client that cannot close cleanly must not fail the next case.
    }
  }
  if (error === null) {
    passed++;
    console.log(`PASS ${name}`);
  } else {
    failed++;
    const reason = (error.message || String(error)).replace(/\s+/g, " ").trim();
    console.log(`FAIL ${name}: ${reason}${where(error)}`);
    if (process.env.INTEROP_VERBOSE) console.error(error);
  }
}

/** " (at file:line)" of the innermost frame in this suite's own files, if any. */
function where(error) {
  const dir = new URL(".", import.meta.url).pathname;
  for (const line of String(error?.stack ?? "").split("\n").slice(1)) {
    const m = line.match(/\(?(?:file:\/\/)?([^()\s]+):(\d+):\d+\)?\s*$/);
    if (m && m[1].startsWith(dir) && !m[1].includes("node_modules") &&
        !m[1].endsWith("common.mjs")) {
      return ` (at ${m[1].slice(dir.length)}:${m[2]})`;
    }
  }
  return "";
}

/** Ends the program: exit code 1 if any case failed. Dangling handles are not waited for. */
export function finish() {
  process.exitCode = failed ? 1 : 0;
  // Clients that failed to close keep sockets and timers alive; do not wait for them.
  setTimeout(() => process.exit(process.exitCode), 100).unref();
  return { passed, failed };
}
