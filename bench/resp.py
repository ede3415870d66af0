"""RESP as kv-bench speaks it: commands as arrays of bulk strings, replies
split into whole frames, so a run can target redis-server as well as
kvserver's RESP port.

No I/O here: ``ReplyReader.feed(bytes)`` and ``next_reply()``, which returns
one complete reply frame, exactly the bytes the server sent, or None until
it has all arrived. Replies are checked by comparing those bytes with what
Redis answers (``+OK``, a bulk string, ``$-1`` for a missing key). There is
no greeting. Anything that is not RESP raises ValueError: the connection
cannot be trusted after it.
"""

from __future__ import annotations

GREETING = None
OK = b"+OK\r\n"
NIL = b"$-1\r\n"  # RESP2's null bulk string (kv-bench never sends HELLO 3)

_LINE_TYPES = frozenset(b"+-:_,#(")  # simple string, error, integer and RESP3 scalars
_BULK_TYPES = frozenset(b"$!=")  # bulk string, bulk error, verbatim string
_AGGREGATE_TYPES = frozenset(b"*~>")  # array, set, push
_PAIR_TYPES = frozenset(b"%|")  # map, attribute: two frames per entry


def set_request(key: bytes, value: bytes) -> bytes:
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(key), key, len(value), value)


def get_request(key: bytes) -> bytes:
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(key), key)


def value_reply(value: bytes | None) -> bytes:
    """What GET must answer for a key holding ``value`` (None: missing)."""
    return NIL if value is None else b"$%d\r\n%b\r\n" % (len(value), value)


class ReplyReader:
    """Splits the byte stream into reply frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._start = 0  # where the next reply begins

    def feed(self, data: bytes) -> None:
        if self._start:
            del self._buffer[: self._start]
            self._start = 0
        self._buffer += data

    def next_reply(self) -> bytes | None:
        end = self._frame_end(self._start)
        if end is None:
            return None
        frame = bytes(self._buffer[self._start : end])
        self._start = end
        return frame

    def _frame_end(self, pos: int) -> int | None:
        """Where the frame starting at ``pos`` ends; None if incomplete."""
        buffer = self._buffer
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        kind = buffer[pos]
        if kind in _LINE_TYPES:
            return line_end + 2
        count = int(buffer[pos + 1 : line_end])  # ValueError if not a number
        if kind in _BULK_TYPES:
            if count < 0:
                return line_end + 2
            end = line_end + 2 + count + 2
            if len(buffer) < end:
                return None
            if buffer[end - 2 : end] != b"\r\n":
                raise ValueError(f"bulk string of {count} bytes not followed by CRLF")
            return end
        if kind in _AGGREGATE_TYPES or kind in _PAIR_TYPES:
            pos = line_end + 2
            for _ in range(count * 2 if kind in _PAIR_TYPES else count):
                end = self._frame_end(pos)
                if end is None:
                    return None
                pos = end
            return pos
        raise ValueError(f"not a RESP reply: {bytes(buffer[pos:line_end + 2])!r}")
