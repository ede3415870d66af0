"""A raw RESP client for tests: sends a command, returns the reply's exact
bytes, so replies can be compared byte for byte with a real redis-server."""

from __future__ import annotations

import socket

from kvserver.protocol.resp import encode_command

TIMEOUT_S = 10.0


class RawRespClient:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
        self.reader = self.sock.makefile("rb")

    def call(self, *args: bytes | str | int) -> bytes:
        """Send one command; the whole reply, as the bytes the server sent."""
        self.send(*args)
        return self.read_reply()

    def send(self, *args: bytes | str | int) -> None:
        self.sock.sendall(encode_command([_bytes(a) for a in args]))

    def read_reply(self) -> bytes:
        line = self.reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind in (b"$", b"="):  # bulk / verbatim string
            length = int(rest)
            return line if length < 0 else line + self.reader.read(length + 2)
        if kind in (b"*", b"~", b">"):  # array / set / push
            count = int(rest)
            return line + b"".join(self.read_reply() for _ in range(max(count, 0)))
        if kind == b"%":  # map
            return line + b"".join(self.read_reply() for _ in range(2 * int(rest)))
        return line  # + - : _ , # ( simple types

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def _bytes(value: bytes | str | int) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()
