"""Cross-node interop: a redis-py subscriber on pubsubd node A receives what an ioredis
publisher sends on node B, through the NATS backbone (RESP2 and RESP3).

Run by tests/interop/backbone/run.sh, which starts nats-server and the two nodes and sets
INTEROP_PORT_A, INTEROP_PORT_B and INTEROP_NATS_MONITOR (nats-server's monitoring port, used
to wait until the subscription's interest has reached NATS).
"""

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import redis  # noqa: E402

import harness  # noqa: E402

HOST = os.environ.get("INTEROP_HOST", "127.0.0.1")
PORT_A = int(os.environ["INTEROP_PORT_A"])
MONITOR = int(os.environ["INTEROP_NATS_MONITOR"])
NODE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node")
ORDER = ["empty", "nul", "crlf", "invalid_utf8", "1mib"]


def wait_interest(subject, n):
    """Until nats-server holds n subscriptions matching `subject` (its /subsz?test=)."""
    deadline = time.monotonic() + harness.WAIT
    url = f"http://{HOST}:{MONITOR}/subsz?subs=1&test={urllib.parse.quote(subject, safe='')}"
    while True:
        with urllib.request.urlopen(url, timeout=harness.WAIT) as r:
            if json.load(r).get("total", 0) >= n:
                return
        harness.check(time.monotonic() < deadline, f"interest in {subject} reached NATS")
        time.sleep(0.02)


def publish_on_b(channel, protocol):
    out = subprocess.run(
        [os.environ.get("NODE_BIN", "node"), os.path.join(NODE, "cross_publish.mjs"), channel],
        env={**os.environ, "INTEROP_PROTOCOL": str(protocol)},
        capture_output=True, timeout=20, check=True,
    )
    # B has no subscriber: every PUBLISH counts 0 (receivers on the node it was sent to).
    harness.eq(out.stdout.decode().split(), ["0"] * len(ORDER), "PUBLISH replies on B")


def case(protocol):
    def run():
        channel = f"cross.p{protocol}-{uuid.uuid4().hex[:10]}"
        r = redis.Redis(host=HOST, port=PORT_A, protocol=protocol, socket_timeout=harness.WAIT)
        p = r.pubsub()
        try:
            p.subscribe(channel)
            p.psubscribe("cross.*")
            for _ in range(2):
                harness.check(p.get_message(timeout=harness.WAIT) is not None, "confirmation")
            # The channel's own subscription and the narrow pattern one (pubsubd.g.cross.>).
            wait_interest("pubsubd.g." + channel, 2)
            publish_on_b(channel, 3 if protocol == 2 else 2)
            for name in ORDER:
                want = harness.PAYLOADS[name]
                for kind in ("message", "pmessage"):
                    m = p.get_message(timeout=harness.WAIT)
                    harness.check(m is not None, f"{kind} {name} arrived")
                    harness.eq((m["type"], m["data"]), (kind, want), f"{kind} {name}")
            harness.eq(p.get_message(timeout=0.2), None, "nothing more (no duplicates)")
        finally:
            p.close()
            r.close()

    return run


def main():
    print(f"redis-py {redis.__version__} on node A, ioredis on node B", file=sys.stderr)
    for protocol in (2, 3):
        harness.run_sync(f"cross_node_redis_py_sub_ioredis_pub_resp{protocol}", case(protocol), 20)
    _, failed = harness.summary()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
