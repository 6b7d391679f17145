"""redis-py, synchronous API: the pub/sub code its users write, over RESP2 and RESP3."""

import threading
import time
from contextlib import ExitStack

import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry
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


def client(stack, protocol, **kwargs):
    kwargs.setdefault("socket_timeout", 5)
    kwargs.setdefault("socket_connect_timeout", 5)
    r = redis.Redis(host=HOST, port=PORT, protocol=protocol, **kwargs)
    stack.callback(r.close)
    return r


def pubsub(stack, r, **kwargs):
    ps = r.pubsub(**kwargs)
    stack.callback(ps.close)
    return ps


def next_message(ps, timeout=WAIT):
    deadline = Deadline(timeout)
    while not deadline.expired():
        msg = ps.get_message(timeout=deadline.left())
        if msg is not None:
            return msg
    raise AssertionError(f"no pub/sub message within {timeout:g}s")


def expect(ps, kind, channel, data, pattern=None):
    msg = next_message(ps)
    want = {"type": kind, "pattern": pattern, "channel": channel, "data": data}
    eq(msg, want, f"{kind} on {channel!r}")


def wait_numsub(r, channel, count):
    """Polls PUBSUB NUMSUB until another connection's subscription is in place."""
    deadline = Deadline()
    while True:
        got = r.pubsub_numsub(channel)
        if got == [(channel, count)]:
            return
        if deadline.expired():
            raise AssertionError(f"PUBSUB NUMSUB {channel!r}: expected {count}, got {got!r}")
        time.sleep(0.02)


def subscribe_get_message(p):
    ch = unique("sub")
    with ExitStack() as stack:
        r = client(stack, p)
        ps = pubsub(stack, r)
        ps.subscribe(ch)
        expect(ps, "subscribe", ch, 1)
        eq(r.publish(ch, b"hello"), 1, "PUBLISH receiver count")
        expect(ps, "message", ch, b"hello")
        ps.unsubscribe(ch)
        expect(ps, "unsubscribe", ch, 0)
        eq(r.publish(ch, b"after"), 0, "PUBLISH count after UNSUBSCRIBE")


def subscription_counts(p):
    a, b, s = unique("a"), unique("b"), unique("s")
    pat = unique("pat") + b".*"
    with ExitStack() as stack:
        r = client(stack, p)
        ps = pubsub(stack, r)
        ps.subscribe(a, b)
        expect(ps, "subscribe", a, 1)
        expect(ps, "subscribe", b, 2)
        ps.psubscribe(pat)
        expect(ps, "psubscribe", pat, 3)
        # Shard channels are counted on their own.
        ps.ssubscribe(s)
        expect(ps, "ssubscribe", s, 1)
        ps.punsubscribe(pat)
        expect(ps, "punsubscribe", pat, 2)
        ps.sunsubscribe(s)
        expect(ps, "sunsubscribe", s, 0)
        ps.unsubscribe(a)
        expect(ps, "unsubscribe", a, 1)
        ps.unsubscribe(b)
        expect(ps, "unsubscribe", b, 0)


def unsubscribe_when_not_subscribed(p):
    # Celery and friends send UNSUBSCRIBE with nothing subscribed and expect one
    # [unsubscribe, nil, 0] reply, not an error.
    ch = unique("unsub")
    with ExitStack() as stack:
        r = client(stack, p)
        ps = pubsub(stack, r)
        ps.subscribe(ch)
        expect(ps, "subscribe", ch, 1)
        ps.unsubscribe(ch)
        expect(ps, "unsubscribe", ch, 0)
        ps.unsubscribe()
        # get_message() reads nothing once redis-py thinks it is unsubscribed.
        reply = ps.parse_response(block=False, timeout=WAIT)
        eq(reply, [b"unsubscribe", None, 0], "reply to a bare UNSUBSCRIBE")
        ps.punsubscribe()
        reply = ps.parse_response(block=False, timeout=WAIT)
        eq(reply, [b"punsubscribe", None, 0], "reply to a bare PUNSUBSCRIBE")


def psubscribe_pmessage(p):
    base = unique("pat")
    pat, ch = base + b".*", base + b".x"
    with ExitStack() as stack:
        r = client(stack, p)
        ps = pubsub(stack, r)
        ps.psubscribe(pat)
        expect(ps, "psubscribe", pat, 1)
        eq(r.publish(ch, b"v1"), 1, "PUBLISH count for a pattern match")
        eq(r.publish(base + b"-nomatch", b"v2"), 0, "PUBLISH count without a match")
        expect(ps, "pmessage", ch, b"v1", pattern=pat)


def ssubscribe_spublish(p):
    ch = unique("shard")
    with ExitStack() as stack:
        r = client(stack, p)
        ps = pubsub(stack, r)
        ps.ssubscribe(ch)
        expect(ps, "ssubscribe", ch, 1)
        eq(r.spublish(ch, b"sharded"), 1, "SPUBLISH receiver count")
        # A shard channel is not a global channel.
        eq(r.publish(ch, b"global"), 0, "PUBLISH count on a shard-only channel")
        msg = ps.get_sharded_message(timeout=WAIT)
        eq(msg, {"type": "smessage", "pattern": None, "channel": ch, "data": b"sharded"},
           "smessage")
        ps.sunsubscribe(ch)
        expect(ps, "sunsubscribe", ch, 0)


def listen_in_order(p):
    ch = unique("listen")
    n = 200
    with ExitStack() as stack:
        r = client(stack, p)
        ps = pubsub(stack, r)
        ps.subscribe(ch)
        # The confirmation first: a PUBLISH racing the SUBSCRIBE may reach nobody.
        expect(ps, "subscribe", ch, 1)
        for i in range(n):
            eq(r.publish(ch, f"m{i}"), 1, f"PUBLISH count of m{i}")
        got = []
        for msg in ps.listen():
            got.append(msg)
            if len(got) == n:
                break
        eq([m["data"] for m in got], [f"m{i}".encode() for i in range(n)],
           "messages in publish order")


def run_in_thread(p):
    ch = unique("thread")
    n = 20
    received = []
    done = threading.Event()

    def handler(msg):
        received.append(msg["data"])
        if len(received) == n:
            done.set()

    with ExitStack() as stack:
        r = client(stack, p)
        ps = pubsub(stack, r)
        ps.subscribe(**{ch.decode(): handler})
        worker = ps.run_in_thread(sleep_time=0.01, daemon=True)
        try:
            wait_numsub(r, ch, 1)
            for i in range(n):
                eq(r.publish(ch, f"t{i}"), 1, "PUBLISH count")
            check(done.wait(WAIT), f"handler got {len(received)} of {n} messages")
            eq(received, [f"t{i}".encode() for i in range(n)], "messages seen by the handler")
        finally:
            worker.stop()
            worker.join(WAIT)
        check(not worker.is_alive(), "worker thread did not stop")


def publish_counts(p):
    base = unique("count")
    ch, pat = base + b".c", base + b".*"
    with ExitStack() as stack:
        r = client(stack, p)
        both = pubsub(stack, r)
        both.subscribe(ch)
        expect(both, "subscribe", ch, 1)
        both.psubscribe(pat)
        expect(both, "psubscribe", pat, 2)
        other = pubsub(stack, r)
        other.subscribe(ch)
        expect(other, "subscribe", ch, 1)
        # A connection matching by channel and by pattern is counted, and served, twice.
        eq(r.publish(ch, b"x"), 3, "PUBLISH count: channel + pattern on one connection + channel")
        expect(both, "message", ch, b"x")
        expect(both, "pmessage", ch, b"x", pattern=pat)
        expect(other, "message", ch, b"x")
        eq(r.publish(base + b"-none", b"y"), 0, "PUBLISH count with no subscriber")


def publish_in_pipeline(p):
    a, b = unique("pipe-a"), unique("pipe-b")
    with ExitStack() as stack:
        r = client(stack, p)
        ps = pubsub(stack, r)
        ps.subscribe(a)
        expect(ps, "subscribe", a, 1)
        # transaction=True (the default) wraps the commands in MULTI/EXEC.
        for transaction in (True, False):
            pipe = r.pipeline(transaction=transaction)
            pipe.publish(a, b"p1").publish(b, b"p2").publish(a, b"p3")
            eq(pipe.execute(), [1, 0, 1], f"pipeline(transaction={transaction}) results")
            expect(ps, "message", a, b"p1")
            expect(ps, "message", a, b"p3")


def introspection(p):
    base = unique("intro")
    a, b, none, s = base + b":a", base + b":b", base + b":none", base + b":s"
    with ExitStack() as stack:
        r = client(stack, p)
        numpat_before = r.pubsub_numpat()
        ps1, ps2, ps3 = pubsub(stack, r), pubsub(stack, r), pubsub(stack, r)
        ps1.subscribe(a, b)
        expect(ps1, "subscribe", a, 1)
        expect(ps1, "subscribe", b, 2)
        ps2.subscribe(a)
        expect(ps2, "subscribe", a, 1)
        ps3.psubscribe(base + b":*", base + b":?")
        expect(ps3, "psubscribe", base + b":*", 1)
        expect(ps3, "psubscribe", base + b":?", 2)
        ps3.ssubscribe(s)
        expect(ps3, "ssubscribe", s, 1)
        eq(sorted(r.pubsub_channels(base + b":*")), [a, b], "PUBSUB CHANNELS pattern")
        eq(r.pubsub_numsub(a, b, none), [(a, 2), (b, 1), (none, 0)], "PUBSUB NUMSUB")
        eq(r.pubsub_numpat() - numpat_before, 2, "PUBSUB NUMPAT increase")
        eq(r.pubsub_shardchannels(base + b":*"), [s], "PUBSUB SHARDCHANNELS")
        eq(r.pubsub_shardnumsub(s, none), [(s, 1), (none, 0)], "PUBSUB SHARDNUMSUB")
        ps2.unsubscribe(a)
        expect(ps2, "unsubscribe", a, 0)
        eq(r.pubsub_numsub(a), [(a, 1)], "PUBSUB NUMSUB after one UNSUBSCRIBE")


def health_check_interval(p):
    ch = unique("health")
    with ExitStack() as stack:
        r = client(stack, p, health_check_interval=1)
        eq(r.ping(), True, "PING through a health-checked connection")
        ps = pubsub(stack, r)
        ps.subscribe(ch)
        expect(ps, "subscribe", ch, 1)
        time.sleep(1.2)
        conn = ps.connection
        check(time.monotonic() > conn.next_health_check, "health check is not due yet")
        # This get_message sends `PING redis-py-health-check` in subscribe mode and must
        # recognise the reply (["pong", msg] in RESP2, the bulk string in RESP3) and drop it.
        msg = ps.get_message(timeout=WAIT)
        eq(msg, None, "get_message after the health-check PING")
        eq(ps.health_check_response_counter, 0, "unanswered health-check PINGs")
        eq(r.publish(ch, b"still-alive"), 1, "PUBLISH count")
        expect(ps, "message", ch, b"still-alive")
        # The command connection's own check: a PING that must answer PONG.
        time.sleep(1.2)
        eq(r.publish(ch, b"again"), 1, "PUBLISH count after the command connection's check")
        expect(ps, "message", ch, b"again")


def client_name(p):
    name = f"interop-py-sync-resp{p}"
    with ExitStack() as stack:
        r = client(stack, p, client_name=name)
        # RESP2 replies come back decoded by redis-py's GETNAME callback, RESP3 ones as bytes.
        eq(str_if_bytes(r.client_getname()), name, "CLIENT GETNAME")
        eq(r.client_setname(name + "-renamed"), True, "CLIENT SETNAME")
        eq(str_if_bytes(r.client_getname()), name + "-renamed", "CLIENT GETNAME after SETNAME")


def client_list_shows_subscriber(p):
    name = unique(f"list{p}").decode().replace(":", "-")
    ch = unique("list")
    with ExitStack() as stack:
        admin = client(stack, p)
        ps = pubsub(stack, client(stack, p, client_name=name))
        ps.subscribe(ch)
        expect(ps, "subscribe", ch, 1)
        entries = [c for c in admin.client_list() if c.get("name") == name]
        eq(len(entries), 1, f"CLIENT LIST entries named {name}")
        eq(entries[0].get("sub"), "1", "sub= of the subscriber in CLIENT LIST")


def ping_in_pubsub(p):
    ch = unique("ping")
    with ExitStack() as stack:
        r = client(stack, p)
        ps = pubsub(stack, r)
        ps.subscribe(ch)
        expect(ps, "subscribe", ch, 1)
        ps.ping()
        eq(next_message(ps), {"type": "pong", "pattern": None, "channel": None, "data": b""},
           "reply to PING in subscribe mode")
        ps.ping("are you there")
        eq(next_message(ps),
           {"type": "pong", "pattern": None, "channel": None, "data": b"are you there"},
           "reply to PING <msg> in subscribe mode")
        eq(r.publish(ch, b"after-ping"), 1, "PUBLISH count")
        expect(ps, "message", ch, b"after-ping")


def payload(p, payload_name):
    data = PAYLOADS[payload_name]
    ch = unique("payload")
    with ExitStack() as stack:
        r = client(stack, p)
        ps = pubsub(stack, r)
        ps.subscribe(ch)
        expect(ps, "subscribe", ch, 1)
        eq(r.publish(ch, data), 1, "PUBLISH count")
        eq(r.spublish(ch, data), 0, "SPUBLISH count (nobody on the shard channel)")
        msg = next_message(ps)
        eq(msg["type"], "message", "message type")
        check(msg["data"] == data,
              f"payload changed in transit: sent {len(data)} bytes, got {short(msg['data'])}")


def non_ascii_channel(p):
    ch, pat = non_ascii_names()
    with ExitStack() as stack:
        r = client(stack, p)
        ps = pubsub(stack, r)
        ps.subscribe(ch)
        expect(ps, "subscribe", ch, 1)
        ps.psubscribe(pat)
        expect(ps, "psubscribe", pat, 2)
        eq(r.publish(ch, NON_ASCII_PAYLOAD), 2, "PUBLISH count")
        expect(ps, "message", ch, NON_ASCII_PAYLOAD)
        expect(ps, "pmessage", ch, NON_ASCII_PAYLOAD, pattern=pat)
        eq(r.pubsub_numsub(ch), [(ch, 1)], "PUBSUB NUMSUB")


def collect_after_reconnect(ps, r, ch, pat_ch, pat, sch):
    """After a reconnect, reads until the replayed subscriptions are confirmed, then
    publishes once per kind and checks each message arrives."""
    confirmed = set()
    deadline = Deadline(6)
    while confirmed != {"subscribe", "psubscribe", "ssubscribe"}:
        check(not deadline.expired(), f"re-subscribe confirmations seen: {sorted(confirmed)}")
        try:
            msg = ps.get_message(timeout=deadline.left())
        except redis.ConnectionError:
            continue
        if msg is not None:
            confirmed.add(msg["type"])
    eq(r.publish(ch, b"m"), 1, "PUBLISH count after reconnect")
    eq(r.publish(pat_ch, b"pm"), 1, "PUBLISH count for the pattern after reconnect")
    eq(r.spublish(sch, b"sm"), 1, "SPUBLISH count after reconnect")
    expect(ps, "message", ch, b"m")
    expect(ps, "pmessage", pat_ch, b"pm", pattern=pat)
    expect(ps, "smessage", sch, b"sm")


def subscribe_all_kinds(ps, ch, pat, sch):
    ps.subscribe(ch)
    expect(ps, "subscribe", ch, 1)
    ps.psubscribe(pat)
    expect(ps, "psubscribe", pat, 2)
    ps.ssubscribe(sch)
    expect(ps, "ssubscribe", sch, 1)


def resubscribe_after_client_kill(p):
    base = unique("kill")
    ch, pat, pat_ch, sch = base + b":c", base + b":p*", base + b":p1", base + b":s"
    name = base.decode().replace(":", "-")
    retry = Retry(ConstantBackoff(0.1), 20)
    with ExitStack() as stack:
        admin = client(stack, p)
        ps = pubsub(stack, client(stack, p, client_name=name, retry=retry))
        subscribe_all_kinds(ps, ch, pat, sch)
        ids = [c["id"] for c in admin.client_list() if c.get("name") == name]
        eq(len(ids), 1, f"CLIENT LIST entries named {name}")
        eq(admin.client_kill_filter(_id=ids[0]), 1, "CLIENT KILL ID count")
        collect_after_reconnect(ps, admin, ch, pat_ch, pat, sch)


def resubscribe_after_restart(p):
    base = unique("restart")
    ch, pat, pat_ch, sch = base + b":c", base + b":p*", base + b":p1", base + b":s"
    retry = Retry(ConstantBackoff(0.1), 50)
    with ExitStack() as stack:
        admin = client(stack, p, retry=retry)
        ps = pubsub(stack, client(stack, p, retry=retry))
        subscribe_all_kinds(ps, ch, pat, sch)
        restart_server()
        collect_after_reconnect(ps, admin, ch, pat_ch, pat, sch)


def cases():
    """(name, function, timeout) for every sync case, both protocols."""
    out = []
    for p in (2, 3):
        pre = f"redis-py/sync/resp{p}/"
        simple = [
            subscribe_get_message, subscription_counts, unsubscribe_when_not_subscribed,
            psubscribe_pmessage, ssubscribe_spublish, listen_in_order, run_in_thread,
            publish_counts, publish_in_pipeline, introspection, client_name,
            client_list_shows_subscriber, ping_in_pubsub, non_ascii_channel,
            resubscribe_after_client_kill,
        ]
        for fn in simple:
            out.append((pre + fn.__name__, lambda fn=fn, p=p: fn(p), 8))
        out.append((pre + "health_check_interval", lambda p=p: health_check_interval(p), 10))
        for name in PAYLOADS:
            out.append((pre + f"payload_{name}", lambda p=p, n=name: payload(p, n), 8))
        out.append((pre + "resubscribe_after_restart", lambda p=p: resubscribe_after_restart(p),
                    20))
    return out
