"""redis-py, asyncio API (redis.asyncio): the same pub/sub code in its async form."""

import asyncio
from contextlib import AsyncExitStack

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.utils import str_if_bytes

from harness import (
    HOST,
    NON_ASCII_PAYLOAD,
    PAYLOADS,
    PORT,
    WAIT,
    Deadline,
    check,
    eq,
    non_ascii_names,
    restart_server,
    short,
    unique,
)


async def client(stack, protocol, **kwargs):
    kwargs.setdefault("socket_timeout", 5)
    kwargs.setdefault("socket_connect_timeout", 5)
    r = aredis.Redis(host=HOST, port=PORT, protocol=protocol, **kwargs)
    stack.push_async_callback(r.aclose)
    return r


async def pubsub(stack, r, **kwargs):
    ps = r.pubsub(**kwargs)
    stack.push_async_callback(ps.aclose)
    return ps


async def next_message(ps, timeout=WAIT):
    deadline = Deadline(timeout)
    while not deadline.expired():
        msg = await ps.get_message(timeout=deadline.left())
        if msg is not None:
            return msg
    raise AssertionError(f"no pub/sub message within {timeout:g}s")


async def expect(ps, kind, channel, data, pattern=None):
    msg = await next_message(ps)
    want = {"type": kind, "pattern": pattern, "channel": channel, "data": data}
    eq(msg, want, f"{kind} on {channel!r}")


async def subscribe_get_message(p):
    ch = unique("asub")
    async with AsyncExitStack() as stack:
        r = await client(stack, p)
        ps = await pubsub(stack, r)
        await ps.subscribe(ch)
        await expect(ps, "subscribe", ch, 1)
        eq(await r.publish(ch, b"hello"), 1, "PUBLISH receiver count")
        await expect(ps, "message", ch, b"hello")
        await ps.unsubscribe(ch)
        await expect(ps, "unsubscribe", ch, 0)


async def psubscribe_pmessage(p):
    base = unique("apat")
    pat, ch = base + b".*", base + b".x"
    async with AsyncExitStack() as stack:
        r = await client(stack, p)
        ps = await pubsub(stack, r)
        await ps.psubscribe(pat)
        await expect(ps, "psubscribe", pat, 1)
        eq(await r.publish(ch, b"v1"), 1, "PUBLISH count for a pattern match")
        await expect(ps, "pmessage", ch, b"v1", pattern=pat)
        await ps.punsubscribe(pat)
        await expect(ps, "punsubscribe", pat, 0)


async def ssubscribe_spublish(p):
    ch = unique("ashard")
    async with AsyncExitStack() as stack:
        r = await client(stack, p)
        ps = await pubsub(stack, r)
        await ps.ssubscribe(ch)
        await expect(ps, "ssubscribe", ch, 1)
        eq(await r.spublish(ch, b"sharded"), 1, "SPUBLISH receiver count")
        msg = await ps.get_message(timeout=WAIT)
        eq(msg, {"type": "smessage", "pattern": None, "channel": ch, "data": b"sharded"},
           "smessage")


async def listen_in_order(p):
    ch = unique("alisten")
    n = 200
    async with AsyncExitStack() as stack:
        r = await client(stack, p)
        ps = await pubsub(stack, r)
        await ps.subscribe(ch)
        # The confirmation first: a PUBLISH racing the SUBSCRIBE may reach nobody.
        await expect(ps, "subscribe", ch, 1)
        for i in range(n):
            eq(await r.publish(ch, f"m{i}"), 1, f"PUBLISH count of m{i}")
        got = []
        async for msg in ps.listen():
            got.append(msg)
            if len(got) == n:
                break
        eq([m["data"] for m in got], [f"m{i}".encode() for i in range(n)],
           "messages in publish order")


async def run_with_handlers(p):
    ch = unique("arun")
    base = unique("arunp")
    pat = base + b".*"
    n = 20
    got_ch, got_pat = [], []
    done = asyncio.Event()

    async def on_message(msg):
        got_ch.append(msg["data"])

    def on_pmessage(msg):
        got_pat.append((msg["channel"], msg["data"]))
        if len(got_pat) == n:
            done.set()

    async with AsyncExitStack() as stack:
        r = await client(stack, p)
        ps = await pubsub(stack, r)
        await ps.subscribe(**{ch.decode(): on_message})
        await ps.psubscribe(**{pat.decode(): on_pmessage})
        task = asyncio.create_task(ps.run(poll_timeout=0.2))
        try:
            deadline = Deadline()
            while (await r.pubsub_numsub(ch)) != [(ch, 1)] or await r.pubsub_numpat() < 1:
                check(not deadline.expired(), "subscriptions not in place")
                await asyncio.sleep(0.02)
            for i in range(n):
                eq(await r.publish(ch, f"c{i}"), 1, "PUBLISH count on the channel")
                eq(await r.publish(base + b".x", f"p{i}"), 1, "PUBLISH count on the pattern")
            await asyncio.wait_for(done.wait(), WAIT)
            eq(got_ch, [f"c{i}".encode() for i in range(n)], "channel handler messages")
            eq(got_pat, [(base + b".x", f"p{i}".encode()) for i in range(n)],
               "pattern handler messages")
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


async def publish_counts(p):
    base = unique("acount")
    ch, pat = base + b".c", base + b".*"
    async with AsyncExitStack() as stack:
        r = await client(stack, p)
        both = await pubsub(stack, r)
        await both.subscribe(ch)
        await expect(both, "subscribe", ch, 1)
        await both.psubscribe(pat)
        await expect(both, "psubscribe", pat, 2)
        other = await pubsub(stack, r)
        await other.subscribe(ch)
        await expect(other, "subscribe", ch, 1)
        eq(await r.publish(ch, b"x"), 3, "PUBLISH count: channel + pattern + channel")
        await expect(both, "message", ch, b"x")
        await expect(both, "pmessage", ch, b"x", pattern=pat)
        await expect(other, "message", ch, b"x")


async def introspection(p):
    base = unique("aintro")
    a, none = base + b":a", base + b":none"
    async with AsyncExitStack() as stack:
        r = await client(stack, p)
        numpat_before = await r.pubsub_numpat()
        ps1, ps2 = await pubsub(stack, r), await pubsub(stack, r)
        await ps1.subscribe(a)
        await expect(ps1, "subscribe", a, 1)
        await ps2.subscribe(a)
        await expect(ps2, "subscribe", a, 1)
        await ps2.psubscribe(base + b":*")
        await expect(ps2, "psubscribe", base + b":*", 2)
        eq(await r.pubsub_channels(base + b":*"), [a], "PUBSUB CHANNELS pattern")
        eq(await r.pubsub_numsub(a, none), [(a, 2), (none, 0)], "PUBSUB NUMSUB")
        eq(await r.pubsub_numpat() - numpat_before, 1, "PUBSUB NUMPAT increase")


async def health_check_interval(p):
    ch = unique("ahealth")
    async with AsyncExitStack() as stack:
        r = await client(stack, p, health_check_interval=1)
        eq(await r.ping(), True, "PING through a health-checked connection")
        ps = await pubsub(stack, r)
        await ps.subscribe(ch)
        await expect(ps, "subscribe", ch, 1)
        await asyncio.sleep(1.2)
        conn = ps.connection
        check(asyncio.get_running_loop().time() > conn.next_health_check,
              "health check is not due yet")
        # The due check sends `PING redis-py-health-check` in subscribe mode; the reply must
        # be one get_message() recognises and drops (["pong", msg] in RESP2, the bulk
        # string in RESP3), else it would surface as a message.
        await ps.check_health()
        reply = await conn.read_response(timeout=WAIT, push_request=True)
        check(reply in ps.health_check_response,
              f"reply to the health-check PING: {reply!r}, redis-py accepts "
              f"{ps.health_check_response!r}")
        eq(await ps.get_message(timeout=0.2), None, "get_message after the health check")
        eq(await r.publish(ch, b"still-alive"), 1, "PUBLISH count")
        await expect(ps, "message", ch, b"still-alive")


async def client_name(p):
    name = f"interop-py-async-resp{p}"
    async with AsyncExitStack() as stack:
        r = await client(stack, p, client_name=name)
        # RESP2 replies come back decoded by redis-py's GETNAME callback, RESP3 ones as bytes.
        eq(str_if_bytes(await r.client_getname()), name, "CLIENT GETNAME")


async def ping_in_pubsub(p):
    ch = unique("aping")
    async with AsyncExitStack() as stack:
        r = await client(stack, p)
        ps = await pubsub(stack, r)
        await ps.subscribe(ch)
        await expect(ps, "subscribe", ch, 1)
        await ps.ping()
        eq(await next_message(ps), {"type": "pong", "pattern": None, "channel": None,
                                    "data": b""}, "reply to PING in subscribe mode")
        await ps.ping("hi")
        eq(await next_message(ps), {"type": "pong", "pattern": None, "channel": None,
                                    "data": b"hi"}, "reply to PING <msg> in subscribe mode")


async def payload(p, payload_name):
    data = PAYLOADS[payload_name]
    ch = unique("apayload")
    async with AsyncExitStack() as stack:
        r = await client(stack, p)
        ps = await pubsub(stack, r)
        await ps.subscribe(ch)
        await expect(ps, "subscribe", ch, 1)
        eq(await r.publish(ch, data), 1, "PUBLISH count")
        msg = await next_message(ps)
        eq(msg["type"], "message", "message type")
        check(msg["data"] == data,
              f"payload changed in transit: sent {len(data)} bytes, got {short(msg['data'])}")


async def non_ascii_channel(p):
    ch, pat = non_ascii_names()
    async with AsyncExitStack() as stack:
        r = await client(stack, p)
        ps = await pubsub(stack, r)
        await ps.subscribe(ch)
        await expect(ps, "subscribe", ch, 1)
        await ps.psubscribe(pat)
        await expect(ps, "psubscribe", pat, 2)
        eq(await r.publish(ch, NON_ASCII_PAYLOAD), 2, "PUBLISH count")
        await expect(ps, "message", ch, NON_ASCII_PAYLOAD)
        await expect(ps, "pmessage", ch, NON_ASCII_PAYLOAD,
                     pattern=pat)


async def resubscribe(p, disrupt):
    base = unique("areconnect")
    ch, pat, pat_ch, sch = base + b":c", base + b":p*", base + b":p1", base + b":s"
    name = base.decode().replace(":", "-")
    retry = Retry(ConstantBackoff(0.1), 50)
    async with AsyncExitStack() as stack:
        admin = await client(stack, p, retry=retry)
        ps = await pubsub(stack, await client(stack, p, client_name=name, retry=retry))
        await ps.subscribe(ch)
        await expect(ps, "subscribe", ch, 1)
        await ps.psubscribe(pat)
        await expect(ps, "psubscribe", pat, 2)
        await ps.ssubscribe(sch)
        await expect(ps, "ssubscribe", sch, 1)
        await disrupt(admin, name)
        confirmed = set()
        deadline = Deadline(6)
        while confirmed != {"subscribe", "psubscribe", "ssubscribe"}:
            check(not deadline.expired(), f"re-subscribe confirmations seen: {sorted(confirmed)}")
            try:
                msg = await ps.get_message(timeout=deadline.left())
            except RedisConnectionError:
                continue
            if msg is not None:
                confirmed.add(msg["type"])
        eq(await admin.publish(ch, b"m"), 1, "PUBLISH count after reconnect")
        eq(await admin.publish(pat_ch, b"pm"), 1, "PUBLISH count for the pattern")
        eq(await admin.spublish(sch, b"sm"), 1, "SPUBLISH count after reconnect")
        await expect(ps, "message", ch, b"m")
        await expect(ps, "pmessage", pat_ch, b"pm", pattern=pat)
        await expect(ps, "smessage", sch, b"sm")


async def kill_by_name(admin, name):
    ids = [c["id"] for c in await admin.client_list() if c.get("name") == name]
    eq(len(ids), 1, f"CLIENT LIST entries named {name}")
    eq(await admin.client_kill_filter(_id=ids[0]), 1, "CLIENT KILL ID count")


async def restart(_admin, _name):
    await asyncio.get_running_loop().run_in_executor(None, restart_server)


def cases():
    """(name, coroutine function, timeout) for every asyncio case, both protocols."""
    out = []
    for p in (2, 3):
        pre = f"redis-py/asyncio/resp{p}/"
        simple = [
            subscribe_get_message, psubscribe_pmessage, ssubscribe_spublish, listen_in_order,
            run_with_handlers, publish_counts, introspection, client_name, ping_in_pubsub,
            non_ascii_channel,
        ]
        for fn in simple:
            out.append((pre + fn.__name__, lambda fn=fn, p=p: fn(p), 8))
        out.append((pre + "health_check_interval", lambda p=p: health_check_interval(p), 10))
        for name in PAYLOADS:
            out.append((pre + f"payload_{name}", lambda p=p, n=name: payload(p, n), 8))
        out.append((pre + "resubscribe_after_client_kill",
                    lambda p=p: resubscribe(p, kill_by_name), 10))
        out.append((pre + "resubscribe_after_restart", lambda p=p: resubscribe(p, restart), 20))
    return out

