"""Interop cases for redis-py (sync and asyncio, RESP2 and RESP3).

Run through tests/interop/run.sh, which sets INTEROP_HOST/INTEROP_PORT. Prints one
`PASS name` / `FAIL name: reason` line per case; exits 1 if any case failed.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import redis  # noqa: E402

import async_cases  # noqa: E402
import harness  # noqa: E402
import sync_cases  # noqa: E402


def main():
    print(f"redis-py {redis.__version__}", file=sys.stderr)
    for name, fn, timeout in sync_cases.cases():
        harness.run_sync(name, fn, timeout)

    async def run_async_cases():
        for name, fn, timeout in async_cases.cases():
            await harness.run_async(name, fn, timeout)

    asyncio.run(run_async_cases())
    _, failed = harness.summary()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
