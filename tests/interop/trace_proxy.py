"""A logging TCP relay for the interop suite: every command a client sends and every frame
the server returns, one line each, per connection.

    trace_proxy.py UPSTREAM_PORT LOG_FILE     prints the port it listens on (127.0.0.1)

run.sh --trace LOG_FILE puts it between the client programs and the server, which is how a
failing case is turned into "the client sent X and expected Y". When the server closes a
connection (CLIENT KILL, restart) the proxy closes the client's side too, and a connection
the server refuses is closed at once, so clients see what they would see without it.
"""

import asyncio
import itertools
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "cli"))

from wiretap import Incomplete, Reader  # noqa: E402

LINE_LIMIT = 400
WORD_LIMIT = 60


def word(data):
    if len(data) > WORD_LIMIT:
        return f"{data[:WORD_LIMIT]!r}...({len(data)} bytes)"
    text = data.decode("utf-8", errors="replace")
    return text if text.isprintable() and " " not in text and text else repr(data)


def render(frame):
    kind, value = frame
    if kind == "simple":
        return f"+{value.decode(errors='replace')}"
    if kind == "error":
        return f"-{value.decode(errors='replace')}"
    if kind == "integer":
        return f":{value}"
    if kind == "null":
        return "_"
    if kind == "bulk":
        return word(value)
    if kind in ("double", "boolean"):
        return f"{kind}({value})"
    if kind in ("array", "set", "push", "inline"):
        mark = {"array": "*", "set": "~", "push": ">", "inline": "inline"}[kind]
        return f"{mark}[{', '.join(render(f) for f in value[:12])}{', ...' if len(value) > 12 else ''}]"
    if kind in ("map", "attribute"):
        mark = "%" if kind == "map" else "|"
        items = ", ".join(f"{render(k)}: {render(v)}" for k, v in value[:12])
        return f"{mark}{{{items}{', ...' if len(value) > 12 else ''}}}"
    return repr(frame)


class Log:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1, encoding="utf-8")
        self.start = time.monotonic()

    def write(self, conn, arrow, text):
        if len(text) > LINE_LIMIT:
            text = f"{text[:LINE_LIMIT]}... ({len(text)} chars)"
        self.file.write(f"{time.monotonic() - self.start:9.3f} #{conn} {arrow} {text}\n")


async def pump(reader, writer, log, conn, arrow):
    buffer = b""
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            writer.write(data)
            buffer += data
            parser = Reader(buffer)
            consumed = 0
            try:
                while parser.pos < len(buffer):
                    frame = parser.frame()
                    consumed = parser.pos
                    log.write(conn, arrow, render(frame))
            except Incomplete:
                pass
            except ValueError as exc:
                log.write(conn, arrow, f"unparsable bytes ({exc}): {buffer[consumed:][:80]!r}")
                consumed = len(buffer)
            buffer = buffer[consumed:]
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        log.write(conn, arrow, "closed")
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


async def main(upstream_port, log_path):
    log = Log(log_path)
    ids = itertools.count(1)

    async def handle(client_reader, client_writer):
        conn = next(ids)
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1",
                                                                         upstream_port)
        except OSError as exc:
            log.write(conn, "!", f"upstream refused: {exc}")
            client_writer.close()
            return
        log.write(conn, "!", f"connected from {client_writer.get_extra_info('peername')}")
        await asyncio.gather(
            pump(client_reader, server_writer, log, conn, ">"),
            pump(server_reader, client_writer, log, conn, "<"),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
    except KeyboardInterrupt:
        pass
