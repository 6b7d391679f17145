"""Case runner shared by the redis-py programs.

Each case is a function (sync) or coroutine (asyncio) that raises on failure. The runner
bounds it with a timeout, prints `PASS name` or `FAIL name: reason` on stdout (one line per
case, which run.sh counts) and carries on with the next case, so one broken case never
hides the others.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
import traceback
import uuid

HOST = os.environ.get("INTEROP_HOST", "127.0.0.1")
PORT = int(os.environ.get("INTEROP_PORT", "6379"))
SERVER_CTL = os.environ.get("INTEROP_SERVER_CTL")

# Default bound for one case. A broken server must fail a case in seconds, not hang it.
CASE_TIMEOUT = 8.0
# Bound for one wait on the server inside a case (a reply, a message).
WAIT = 3.0

# Payloads every client sends through PUBLISH and must receive byte for byte.
PAYLOADS = {
    "empty": b"",
    "nul": b"a\x00b\x00",
    "crlf": b"line1\r\nline2\r\n*1\r\n$3\r\nfoo\r\n",
    "invalid_utf8": b"\xff\xfe\x80 \xc3\x28 \xed\xa0\x80",
    "1mib": bytes((i * 31 + 7) & 0xFF for i in range(1 << 20)),
}
NON_ASCII_PAYLOAD = "ünïcødé ✓ 🚀".encode()

_passed = 0
_failed = 0


class CaseTimeout(Exception):
    pass


def unique(tag):
    """A channel name no other case or earlier run uses."""
    return f"interop:py:{tag}:{uuid.uuid4().hex[:10]}".encode()


def non_ascii_names():
    """A channel name that is not ASCII, and a pattern matching it, unique to one case."""
    tag = uuid.uuid4().hex[:10]
    return f"интероп:{tag}:频道:🚀".encode(), f"интероп:{tag}:*".encode()


def short(value, limit=160):
    """repr() cut to a readable length: payloads may be 1 MiB."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def eq(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {short(expected)}, got {short(actual)}")


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def restart_server():
    """Restarts the server on the same port, via the helper run.sh provides."""
    if not SERVER_CTL:
        raise RuntimeError("INTEROP_SERVER_CTL is not set: run through run.sh")
    subprocess.run([SERVER_CTL, "restart"], check=True, timeout=30)


def _report(name, error):
    global _passed, _failed
    if error is None:
        _passed += 1
        print(f"PASS {name}", flush=True)
    else:
        _failed += 1
        reason = " ".join(str(error).split()) or type(error).__name__
        if not isinstance(error, (AssertionError, CaseTimeout)):
            reason = f"{type(error).__name__}: {reason}"
        print(f"FAIL {name}: {reason}{_where(error)}", flush=True)
        if os.environ.get("INTEROP_VERBOSE"):
            traceback.print_exception(error, file=sys.stderr)


def _where(error):
    """' (at file:line > line ...)': the frames of this suite's case files, outermost first."""
    here = os.path.dirname(os.path.abspath(__file__))
    frames = [
        f for f in traceback.extract_tb(error.__traceback__)
        if os.path.dirname(os.path.abspath(f.filename)) == here
        and not f.filename.endswith("harness.py")
    ]
    if not frames:
        return ""
    lines = " > ".join(str(f.lineno) for f in frames)
    return f" (at {os.path.basename(frames[0].filename)}:{lines})"


def _alarm(_signum, _frame):
    raise CaseTimeout("timed out")


def run_sync(name, fn, timeout=CASE_TIMEOUT):
    """Runs fn() with a wall-clock bound. SIGALRM interrupts blocking socket reads in the
    main thread, so a server that never answers fails the case instead of hanging it."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    error = None
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a FAIL line
        if isinstance(exc, KeyboardInterrupt):
            raise
        error = exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if isinstance(error, CaseTimeout):
        error = CaseTimeout(f"timed out after {timeout:g}s")
    _report(name, error)


async def run_async(name, coro_fn, timeout=CASE_TIMEOUT):
    error = None
    try:
        await asyncio.wait_for(coro_fn(), timeout)
    except asyncio.TimeoutError:
        error = CaseTimeout(f"timed out after {timeout:g}s")
    except Exception as exc:  # noqa: BLE001
        error = exc
    _report(name, error)


def summary():
    return _passed, _failed


class Deadline:
    """Remaining time of one bounded wait, for loops that poll."""

    def __init__(self, seconds=WAIT):
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end
