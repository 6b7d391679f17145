"""redis-py's RedisCluster against a cluster (tests/interop/cluster/run.sh), over RESP2 and RESP3:
a ClusterPubSub subscribing with SSUBSCRIBE to channels spread over every part of the slot
space and receiving SPUBLISH from another RedisCluster client; classic SUBSCRIBE/PUBLISH
through cluster clients; the slot map and CLUSTER replies the client reads.

INTEROP_CLUSTER_NODES lists the seed nodes (`host:port,...`)."""

import os
import secrets
import subprocess
import sys
import time

import redis
from redis.cluster import ClusterNode, RedisCluster, key_slot

from harness import WAIT, Deadline, check, eq, run_sync, summary

SEEDS = [
    ClusterNode(a.split(":")[0], int(a.split(":")[1]))
    for a in os.environ.get("INTEROP_CLUSTER_NODES", "127.0.0.1:6379").split(",")
]


def spread_channels(tag):
    """Two channels in each sixteenth of the slot space, so every node owns some."""
    out, ident = [], secrets.token_hex(4)
    for part in range(16):
        i = found = 0
        while found < 2:
            ch = f"interop:cluster:{tag}:{ident}:{part}:{i}"
            if key_slot(ch.encode()) // 1024 == part:
                out.append(ch)
                found += 1
            i += 1
    return out


def cluster(protocol):
    return RedisCluster(startup_nodes=SEEDS, protocol=protocol, socket_timeout=WAIT)


def sharded_messages(p, n):
    got, d = [], Deadline(2 * WAIT)
    while len(got) < n and not d.expired():
        m = p.get_sharded_message(ignore_subscribe_messages=True, timeout=0.05)
        if m is not None and m["type"] == "smessage":
            got.append((m["channel"].decode(), m["data"].decode()))
    return got


def case_ssubscribe_spread(protocol):
    sub, pub = cluster(protocol), cluster(protocol)
    p = sub.pubsub()
    try:
        channels = spread_channels("py-s")
        for ch in channels:
            p.ssubscribe(ch)
        # Each per-node connection confirms its channels before anything is published.
        confirmed, d = 0, Deadline()
        while confirmed < len(channels) and not d.expired():
            m = p.get_sharded_message(timeout=0.05)
            if m is not None and m["type"] == "ssubscribe":
                confirmed += 1
        eq(confirmed, len(channels), "ssubscribe confirmations")
        for ch in channels:
            eq(pub.spublish(ch, f"payload of {ch}"), 1, f"SPUBLISH {ch} receivers")
        got = sharded_messages(p, len(channels))
        eq(sorted(got), sorted((ch, f"payload of {ch}") for ch in channels), "smessages")
    finally:
        p.close()
        sub.close()
        pub.close()


def case_classic(protocol):
    sub, pub = cluster(protocol), cluster(protocol)
    p = sub.pubsub()
    try:
        channels = spread_channels("py-c")[:8]
        p.subscribe(*channels)
        confirmed, d = 0, Deadline()
        while confirmed < len(channels) and not d.expired():
            m = p.get_message(timeout=0.05)
            if m is not None and m["type"] == "subscribe":
                confirmed += 1
        eq(confirmed, len(channels), "subscribe confirmations")
        for ch in channels:
            pub.publish(ch, f"payload of {ch}")
        got, d = [], Deadline(2 * WAIT)
        while len(got) < len(channels) and not d.expired():
            m = p.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if m is not None and m["type"] == "message":
                got.append((m["channel"].decode(), m["data"].decode()))
        eq(sorted(got), sorted((ch, f"payload of {ch}") for ch in channels), "messages")
    finally:
        p.close()
        sub.close()
        pub.close()


def case_slot_map(protocol):
    rc = cluster(protocol)
    try:
        nodes = rc.get_primaries()
        check(len(nodes) >= 1, "no primaries")
        covered = sorted(
            s for s in range(16384) if rc.nodes_manager.get_node_from_slot(s) is not None
        )
        eq(len(covered), 16384, "slots covered by the client's map")
        for n in nodes:
            info = rc.cluster_info(target_nodes=n)
            eq(info["cluster_state"], "ok", f"cluster_state of {n.name}")
            eq(int(info["cluster_slots_assigned"]), 16384, "cluster_slots_assigned")
        eq(rc.keyslot("foo{bar}"), 5061, "CLUSTER KEYSLOT")
        eq(rc.cluster_keyslot("{}x"), 10595, "CLUSTER KEYSLOT with an empty tag")
    finally:
        rc.close()


def ctl(*args):
    subprocess.run([os.environ["INTEROP_CLUSTER_CTL"], *args], check=True, timeout=30)


def known_nodes(r):
    # redis-py parses CLUSTER INFO into a dict (its cluster response callback); read it raw.
    raw = r.execute_command("CLUSTER INFO", NEVER_DECODE=True)
    if isinstance(raw, dict):
        return int(raw.get("cluster_known_nodes", 0))
    for line in raw.decode().splitlines():
        if line.startswith("cluster_known_nodes:"):
            return int(line.split(":", 1)[1])
    return 0


def wait_known(n, skip=()):
    for i, seed in enumerate(SEEDS, 1):
        if i in skip:
            continue
        r = redis.Redis(host=seed.host, port=seed.port, socket_timeout=WAIT)
        d = Deadline(20)
        while known_nodes(r) != n:
            check(not d.expired(), f"node {i} never saw {n} nodes")
            time.sleep(0.05)
        r.close()


def drain(p, into):
    """Sharded messages received so far. A node's lost connection is not an error here, nor is
    a -MOVED answering a resubscription redis-py sent with a map it has not refreshed yet (its
    ClusterPubSub hands both to the caller of get_sharded_message, with Redis Cluster too; an
    application's read loop carries on, as this one does)."""
    while True:
        try:
            m = p.get_sharded_message(ignore_subscribe_messages=True, timeout=0.02)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return
        except redis.exceptions.MovedError as e:
            print(f"get_sharded_message: MOVED {e}", file=sys.stderr)
            return
        if m is None:
            return
        if m["type"] == "smessage":
            into.append((m["channel"].decode(), m["data"].decode()))


def recovers(rc, p, channels, what):
    """Publishes rounds through the subscriber's own RedisCluster (redis-py re-homes shard
    subscriptions when that client refreshes its map) until every channel received one, then
    one last message per channel, which each must receive exactly once."""
    tag, recovered, d = secrets.token_hex(3), set(), Deadline(60)
    rnd = 0
    while len(recovered) < len(channels):
        check(not d.expired(), f"{what}: {len(channels) - len(recovered)} channels never received again")
        rnd += 1
        for ch in channels:
            if ch not in recovered:
                try:
                    rc.spublish(ch, f"{tag}:{rnd}")
                except redis.RedisError:
                    pass
        time.sleep(0.25)
        got = []
        drain(p, got)
        recovered.update(ch for ch, m in got if m.startswith(f"{tag}:"))
    time.sleep(0.3)
    drain(p, [])
    last = f"last:{tag}"
    for ch in channels:
        d2 = Deadline(10)
        while True:
            try:
                rc.spublish(ch, last)
                break
            except redis.RedisError:
                check(not d2.expired(), f"{what}: cannot publish to {ch}")
                time.sleep(0.1)
    got, d3 = [], Deadline(10)
    while len({ch for ch, m in got if m == last}) < len(channels) and not d3.expired():
        drain(p, got)
    time.sleep(0.5)
    drain(p, got)
    counts = {}
    for ch, m in got:
        if m == last:
            counts[ch] = counts.get(ch, 0) + 1
    eq(sorted(counts), sorted(channels), f"{what}: channels that received the last message")
    eq([c for c, n in counts.items() if n != 1], [], f"{what}: received more than once")


def case_node_killed_and_restarted(protocol):
    rc = cluster(protocol)
    p = rc.pubsub()
    try:
        channels = spread_channels("py-f")
        for ch in channels:
            p.ssubscribe(ch)
        recovers(rc, p, channels, "before the failure")
        ctl("kill", "2")
        recovers(rc, p, channels, "after node 2 was killed")
        wait_known(len(SEEDS) - 1, skip=(2,))
        ctl("start", "2")
        wait_known(len(SEEDS))
        recovers(rc, p, channels, "after node 2 rejoined")
    finally:
        if not os.path.exists(os.path.join(os.environ["INTEROP_CLUSTER_STATE"], "node2", "pid")):
            ctl("start", "2")
        p.close()
        rc.close()


print(f"redis-py {redis.__version__}", file=sys.stderr)
for proto in (2, 3):
    run_sync(f"redis-py-cluster/resp{proto}/ssubscribe_spread_over_slots",
             lambda: case_ssubscribe_spread(proto), timeout=30)
    run_sync(f"redis-py-cluster/resp{proto}/classic_subscribe_publish",
             lambda: case_classic(proto), timeout=20)
    run_sync(f"redis-py-cluster/resp{proto}/slot_map", lambda: case_slot_map(proto), timeout=20)
if os.environ.get("INTEROP_CLUSTER_FAILOVER"):
    run_sync("redis-py-cluster/resp3/node_killed_and_restarted",
             lambda: case_node_killed_and_restarted(3), timeout=180)
passed, failed = summary()
sys.exit(1 if failed else 0)
