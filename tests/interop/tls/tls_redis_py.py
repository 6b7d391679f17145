"""redis-py over TLS with ACL users: `rediss://user:pass@127.0.0.1:port` with client certificates,
RESP3 and RESP2, publish/subscribe within the user's channels and NOPERM outside them."""

import os
import ssl
import sys
import time

import redis

PORT = int(os.environ["TLS_PORT"])
DIR = os.environ["TLS_DIR"]
PUBSUBD = os.environ.get("INTEROP_SERVER") == "pubsubd"
TLS = dict(
    ssl_ca_certs=f"{DIR}/ca.crt",
    ssl_certfile=f"{DIR}/client.crt",
    ssl_keyfile=f"{DIR}/client.key",
    ssl_cert_reqs="required",
)


def url(user, pw, proto):
    return f"rediss://{user}:{pw}@127.0.0.1:{PORT}/0?protocol={proto}"


def case(name, fn):
    try:
        fn()
        print(f"PASS {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is a FAIL line
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)


def publish_and_receive(proto):
    def run():
        pub = redis.Redis.from_url(url("app", "apppw", proto), **TLS)
        sub = redis.Redis.from_url(url("reader", "readerpw", proto), **TLS)
        ps = sub.pubsub()
        ps.subscribe("app.events")
        deadline = time.time() + 3
        msg = None
        while time.time() < deadline and (msg is None or msg["type"] != "subscribe"):
            msg = ps.get_message(timeout=0.2)
        assert msg and msg["type"] == "subscribe", msg
        assert pub.publish("app.events", b"hello") == 1
        msg = None
        while time.time() < deadline and msg is None:
            msg = ps.get_message(timeout=0.2)
        assert msg and msg["data"] == b"hello", msg
        ps.close()
        pub.close()
        sub.close()
    return run


def noperm(proto):
    def run():
        r = redis.Redis.from_url(url("app", "apppw", proto), **TLS)
        try:
            r.publish("elsewhere", "x")
        except redis.exceptions.NoPermissionError as e:
            if PUBSUBD:
                assert str(e) == "No permissions to access a channel", str(e)
        else:
            raise AssertionError("PUBLISH outside the user's channels was allowed")
        r.close()
    return run


def wrong_password():
    r = redis.Redis.from_url(url("app", "nope", 3), **TLS)
    try:
        r.ping()
    except redis.exceptions.AuthenticationError as e:
        assert "invalid username-password pair" in str(e), str(e)
    else:
        raise AssertionError("a wrong password was accepted")


def no_client_certificate():
    tls = dict(TLS)
    del tls["ssl_certfile"], tls["ssl_keyfile"]
    r = redis.Redis.from_url(url("app", "apppw", 3), socket_timeout=3, **tls)
    try:
        r.ping()
    except (redis.exceptions.ConnectionError, ssl.SSLError, OSError):
        pass
    else:
        raise AssertionError("a client without a certificate was served")


for proto in (3, 2):
    case(f"redis-py-rediss-resp{proto}-publish-subscribe", publish_and_receive(proto))
    case(f"redis-py-rediss-resp{proto}-noperm", noperm(proto))
case("redis-py-rediss-wrong-password", wrong_password)
case("redis-py-rediss-no-client-certificate", no_client_certificate)
sys.exit(0)
