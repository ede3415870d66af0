"""The text protocol as kv-bench speaks it: request lines out, reply lines in.

No I/O here: ``ReplyReader.feed(bytes)`` takes what the socket gave and
``next_reply()`` returns one reply line (without its line ending) or None
until a whole line has arrived. The server greets every connection first.
Keys and values kv-bench makes are plain tokens (letters, digits, ``:``),
so they need no quoting and GET prints them back unchanged.
"""

from __future__ import annotations

GREETING = b"OK mini-redis ready"
OK = b"OK"  # the reply to SET
NIL = b"nil"  # GET of a missing key


def set_request(key: bytes, value: bytes) -> bytes:
    return b"SET %b %b\r\n" % (key, value)


def get_request(key: bytes) -> bytes:
    return b"GET %b\r\n" % key


def value_reply(value: bytes | None) -> bytes:
    """What GET must answer for a key holding ``value`` (None: missing)."""
    return NIL if value is None else value


class ReplyReader:
    """Splits the byte stream into reply lines (LF or CRLF endings)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._start = 0  # where the next reply begins
        self._scanned = 0  # no line ending before here: a long line is scanned once

    def feed(self, data: bytes) -> None:
        if self._start:
            del self._buffer[: self._start]
            self._scanned -= self._start
            self._start = 0
        self._buffer += data

    def next_reply(self) -> bytes | None:
        end = self._buffer.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self._buffer)
            return None
        line_end = end - 1 if end > self._start and self._buffer[end - 1] == 13 else end
        line = bytes(self._buffer[self._start : line_end])
        self._start = self._scanned = end + 1
        return line
