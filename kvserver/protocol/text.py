"""The mini_redis text protocol: one command a line in, one reply line out.

A request is a line ending in LF (a CR before it is dropped), split into
arguments the way redis-cli and Redis's inline commands split them
(``sdssplitargs``): runs of whitespace separate arguments; double quotes allow
``\\n \\r \\t \\b \\a \\" \\\\ \\xHH`` escapes; single quotes allow ``\\'``; a
closing quote must be followed by whitespace or the end of the line.

A reply is one line. Strings are printed as they are when that cannot be
misread, and otherwise in double quotes with the same escapes (as redis-cli
prints them), so what ``GET`` prints can always be pasted back into ``SET``.

Rules this module keeps:

* No I/O: ``TextParser.feed`` takes bytes, ``next_request`` returns requests.
* A line that is empty or only whitespace is skipped without a reply (Redis).
* A line with unbalanced quotes is returned as an ``InvalidRequest``: it gets
  an error reply and the connection goes on.
* A line longer than ``max_line`` bytes (or that many bytes with no line end
  yet) raises ``ProtocolError``: reply, then close that connection. Nothing
  past the limit is ever kept in memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kvserver import errors
from kvserver.config import MAX_INLINE_BYTES
from kvserver.errors import CommandError, KvError
from kvserver.protocol import NEED_DATA, NO_REPLY, BigNumber, DoubleText, NullArray, Pushes, Status, Verbatim, format_double

GREETING = b"OK mini-redis ready\r\n"

# The longest line a client that has not authenticated may send (with
# requirepass): AUTH needs far less, and the RESP port's bulk limit for
# such clients is the same 16 KiB (resp.UNAUTHENTICATED_MAX_BULK).
UNAUTHENTICATED_MAX_LINE = 16 * 1024

_WHITESPACE = b" \t\n\r\x0b\x0c"  # C's isspace(): skipped between arguments and after a quote
# What ends an unquoted argument in sdssplitargs: not \v or \f, so "a\vb" is
# one argument there although isspace() skips a \v before or after it.
_SEPARATORS = b" \t\n\r"
# bytes.split() splits as sdssplitargs does only when none of these occur:
# quotes, and \v \f, which it takes for separators.
_SLOW_PATH = re.compile(rb"[\"'\x0b\x0c]")
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = frozenset(b"0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class InvalidRequest:
    """A line that could not be split into arguments; answered with ``error``."""

    error: CommandError


class TextParser:
    """Split a byte stream into requests. Sans-I/O: see the module docstring."""

    __slots__ = ("_buffer", "_scanned", "_max_line", "_full_line")

    def __init__(self, max_line: int = MAX_INLINE_BYTES) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer already searched for a line end
        self._max_line = max_line  # the limit in force (see set_authenticated)
        self._full_line = max_line

    def set_authenticated(self, authenticated: bool) -> None:
        """Limit lines to UNAUTHENTICATED_MAX_LINE (False) or to the full
        ``max_line`` (True, the default), from the next line on."""
        self._max_line = self._full_line if authenticated else min(self._full_line, UNAUTHENTICATED_MAX_LINE)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as requests."""
        return len(self._buffer)

    def next_requests(self, out: list) -> None:
        """Append every request ``next_request`` returns before ``NEED_DATA``."""
        while (request := self.next_request()) is not NEED_DATA:
            out.append(request)

    def next_request(self) -> list[bytes] | InvalidRequest | object:
        """The next request, ``InvalidRequest``, or ``NEED_DATA``."""
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", self._scanned)
            if end < 0:
                # A CR at the end may be the first half of the CRLF that ends
                # a line of exactly max_line bytes.
                if len(buffer) - buffer.endswith(b"\r") > self._max_line:
                    raise errors.ProtocolError(errors.TOO_BIG_INLINE)
                self._scanned = len(buffer)
                return NEED_DATA
            # The CR of a CRLF is part of the line end, not of the line.
            if end - (end > 0 and buffer[end - 1] == 0x0D) > self._max_line:
                raise errors.ProtocolError(errors.TOO_BIG_INLINE)
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            self._scanned = 0
            try:
                args = split_args(line)
            except CommandError as exc:
                return InvalidRequest(exc)
            if args:
                return args
            # An empty line: Redis ignores it without a reply; look further.


def split_args(line: bytes) -> list[bytes]:
    """Split one line into arguments as ``sdssplitargs`` does.

    Raises ``CommandError`` for unbalanced quotes.
    """
    if not _SLOW_PATH.search(line):
        return line.split()  # the common case: no quoting at all
    return _split_quoted(line)


def _split_quoted(line: bytes) -> list[bytes]:
    args: list[bytes] = []
    n = len(line)
    i = 0
    while True:
        while i < n and line[i] in _WHITESPACE:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            c = line[i] if i < n else None
            if in_double:
                if c is None:
                    raise CommandError(errors.UNBALANCED_QUOTES)
                if (
                    c == 0x5C  # backslash
                    and i + 3 < n
                    and line[i + 1] == 0x78  # x
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    current.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x22:  # closing "
                    if i + 1 < n and line[i + 1] not in _WHITESPACE:
                        raise CommandError(errors.UNBALANCED_QUOTES)
                    in_double = False
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if c is None:
                    raise CommandError(errors.UNBALANCED_QUOTES)
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    current.append(0x27)
                elif c == 0x27:  # closing '
                    if i + 1 < n and line[i + 1] not in _WHITESPACE:
                        raise CommandError(errors.UNBALANCED_QUOTES)
                    in_single = False
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if c is None or c in _SEPARATORS:
                    break
                if c == 0x22:
                    in_double = True
                elif c == 0x27:
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))


# --- replies ---------------------------------------------------------------

# Bytes that force a string to be quoted: anything outside printable ASCII
# (whitespace included), quotes and the backslash.
_NEEDS_QUOTING = re.compile(rb"[^\x21-\x7e]|[\"'\\]")
_REPR_ESCAPES = {
    0x5C: b"\\\\",
    0x22: b'\\"',
    0x0A: b"\\n",
    0x0D: b"\\r",
    0x09: b"\\t",
    0x07: b"\\a",
    0x08: b"\\b",
}
_REPR_TABLE = [
    _REPR_ESCAPES.get(b, bytes([b]) if 0x20 <= b <= 0x7E else b"\\x%02x" % b) for b in range(256)
]


def quote(value: bytes) -> bytes:
    """``value`` as the text protocol prints it (see the module docstring)."""
    if value and value != b"nil" and not _NEEDS_QUOTING.search(value):
        return value
    table = _REPR_TABLE
    return b'"' + b"".join([table[b] for b in value]) + b'"'


def encode_reply(reply: object, resp: int = 2) -> bytes:
    """One reply value as one CRLF-terminated line (``resp`` does not matter
    here; it is taken so every protocol's encoder has one signature)."""
    if reply is NO_REPLY:
        return b""
    if type(reply) is Pushes:  # SUBSCRIBE a b: a line per confirmation
        return b"".join([_encode_item(item) + b"\r\n" for item in reply])
    return _encode_item(reply) + b"\r\n"


def _encode_item(reply: object) -> bytes:
    if type(reply) is bytes:
        return quote(reply)
    if type(reply) is Status:
        return reply.encode()
    if reply is None or reply is NullArray:
        return b"nil"
    if type(reply) is int:
        return b"%d" % reply
    if isinstance(reply, (list, dict)):
        # Nested arrays are flattened (a map as key value key value ...); an
        # empty one adds nothing to the line.
        items = reply if isinstance(reply, list) else [x for pair in reply.items() for x in pair]
        return b" ".join([piece for piece in map(_encode_item, items) if piece])
    if type(reply) is float:
        return format_double(reply)
    if type(reply) is bool:
        return b"1" if reply else b"0"
    if type(reply) is Verbatim or type(reply) is BigNumber or type(reply) is DoubleText:
        return quote(bytes(reply))
    if isinstance(reply, KvError):
        # One line, whatever the message holds.
        return reply.message.replace("\r", " ").replace("\n", " ").encode()
    raise TypeError(f"no text encoding for reply {reply!r}")
