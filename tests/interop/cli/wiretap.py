"""A one-connection TCP relay that records both directions, and a RESP reader for the record.

    wiretap.py serve UPSTREAM_PORT DIR    listen on a free 127.0.0.1 port, print it, relay
                                          one connection to UPSTREAM_PORT, write DIR/c2s and
                                          DIR/s2c, exit when either side closes
    wiretap.py exchanges DIR              print each command with a summary of its reply

Used to check what redis-cli sends on its interactive start (HELLO 3 with -3, then
COMMAND DOCS) and that the server's replies are what redis-cli can use.
"""

import select
import socket
import sys


def serve(upstream_port, out_dir):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)
    print(listener.getsockname()[1], flush=True)
    client, _ = listener.accept()
    server = socket.create_connection(("127.0.0.1", upstream_port), timeout=10)
    with open(f"{out_dir}/c2s", "wb") as c2s, open(f"{out_dir}/s2c", "wb") as s2c:
        while True:
            ready, _, _ = select.select([client, server], [], [], 10)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(1 << 16)
                if not data:
                    return
                if sock is client:
                    c2s.write(data)
                    c2s.flush()
                    server.sendall(data)
                else:
                    s2c.write(data)
                    s2c.flush()
                    client.sendall(data)


class Incomplete(Exception):
    """The data ends inside a frame."""


class Reader:
    """Parses RESP2 and RESP3 frames from a byte string."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def line(self):
        end = self.data.find(b"\r\n", self.pos)
        if end < 0:
            raise Incomplete()
        out = self.data[self.pos:end]
        self.pos = end + 2
        return out

    def frame(self):
        if self.pos >= len(self.data):
            raise Incomplete()
        kind = self.data[self.pos:self.pos + 1]
        self.pos += 1
        head = self.line()
        if kind in (b"+", b"("):
            return ("simple", head)
        if kind in (b"-",):
            return ("error", head)
        if kind == b":":
            return ("integer", int(head))
        if kind == b",":
            return ("double", head)
        if kind == b"#":
            return ("boolean", head == b"t")
        if kind == b"_":
            return ("null", None)
        if kind in (b"$", b"!", b"="):
            n = int(head)
            if n < 0:
                return ("null", None)
            if self.pos + n + 2 > len(self.data):
                raise Incomplete()
            out = self.data[self.pos:self.pos + n]
            self.pos += n + 2
            return ("error" if kind == b"!" else "bulk", out)
        if kind in (b"*", b"~", b">"):
            n = int(head)
            if n < 0:
                return ("null", None)
            name = {b"*": "array", b"~": "set", b">": "push"}[kind]
            return (name, [self.frame() for _ in range(n)])
        if kind in (b"%", b"|"):
            n = int(head)
            items = [(self.frame(), self.frame()) for _ in range(n)]
            return ("map" if kind == b"%" else "attribute", items)
        if kind.isalpha():
            # An inline command (redis-cli --pipe, telnet): words up to CRLF.
            return ("inline", [("bulk", w) for w in (kind + head).split()])
        raise ValueError(f"unknown RESP type {kind!r} at byte {self.pos - 1}")

    def frames(self):
        while self.pos < len(self.data):
            yield self.frame()


def plain(frame):
    """A frame as plain Python values: bytes, ints, lists, dicts (map keys made hashable)."""
    kind, value = frame
    if kind in ("array", "set", "push", "inline"):
        return [plain(f) for f in value]
    if kind == "map":
        return {_key(plain(k)): plain(v) for k, v in value}
    if kind == "error":
        return Exception(value.decode(errors="replace"))
    return value


def _key(value):
    return tuple(value) if isinstance(value, list) else value


def summary(frame):
    kind, value = frame
    if kind == "error":
        return f"error {value.decode(errors='replace')}"
    if kind == "map":
        keys = [plain(k) for k, _ in value]
        fields = {plain(k): plain(v) for k, v in value}
        text = f"map of {len(value)}"
        if b"proto" in fields:
            text += f" proto={fields[b'proto']}"
        if b"publish" in fields:
            text += " has:publish"
        if b"subscribe" in fields:
            text += " has:subscribe"
        return text if keys else "map of 0"
    if kind == "array":
        items = plain(frame)
        text = f"array of {len(items)}"
        # COMMAND DOCS in RESP2: a flat list name, docs, name, docs, ...
        names = set(items[0::2]) if all(isinstance(i, bytes) for i in items[0::2]) else set()
        if b"publish" in names:
            text += " has:publish"
        if b"subscribe" in names:
            text += " has:subscribe"
        return text
    return f"{kind} {value!r}"


def _pairs(frame):
    """Key/value pairs of a map, or of a RESP2 array laid out as key, value, ..."""
    kind, value = frame
    if kind == "map":
        return [(plain(k), v) for k, v in value]
    if kind == "array":
        return [(plain(value[i]), value[i + 1]) for i in range(0, len(value) - 1, 2)]
    return []


def docs_problems(frame):
    """What redis-cli's help loader would trip on in a COMMAND DOCS reply: it reads an
    argument's nested "arguments" for types oneof and block unconditionally, and asserts
    that "flags" entries are status replies (+flag)."""
    problems = []

    def arguments(path, frame):
        for arg in frame[1] if frame[0] in ("array", "set") else []:
            fields = dict(_pairs(arg))
            name = plain(fields.get(b"name", ("bulk", b"?"))).decode(errors="replace")
            kind = plain(fields.get(b"type", ("bulk", b"?")))
            where = f"{path} argument {name}"
            if kind in (b"oneof", b"block") and b"arguments" not in fields:
                problems.append(f"{where}: type {kind.decode()} without nested arguments")
            flags = fields.get(b"flags")
            if flags and any(f[0] != "simple" for f in flags[1]):
                problems.append(f"{where}: flags not sent as status replies")
            if b"arguments" in fields:
                arguments(where, fields[b"arguments"])

    def commands(frame):
        for name, doc in _pairs(frame):
            fields = dict(_pairs(doc))
            if b"arguments" in fields:
                arguments(name.decode(errors="replace"), fields[b"arguments"])
            if b"subcommands" in fields:
                commands(fields[b"subcommands"])

    commands(frame)
    return problems


def exchanges(out_dir):
    with open(f"{out_dir}/c2s", "rb") as f:
        commands = list(Reader(f.read()).frames())
    with open(f"{out_dir}/s2c", "rb") as f:
        replies = list(Reader(f.read()).frames())
    for i, command in enumerate(commands):
        words = " ".join(w.decode(errors="replace") for w in plain(command))
        reply = summary(replies[i]) if i < len(replies) else "no reply"
        if words.upper() == "COMMAND DOCS" and i < len(replies):
            problems = docs_problems(replies[i])
            if problems:
                reply += f" PROBLEMS: {'; '.join(problems)}"
        print(f"{words} => {reply}")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "exchanges":
        exchanges(sys.argv[2])
    else:
        sys.exit(__doc__)
