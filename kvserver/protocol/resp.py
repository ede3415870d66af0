"""RESP, Redis's serialization protocol: requests in, replies out, no I/O.

The append-only log is a stream of RESP arrays (the format of Redis's own
appendonly.aof), so this module is also what writes and replays the log.

``RespParser`` accepts what Redis accepts from a client: arrays of bulk
strings, and (unless ``inline=False``, as for the log) inline commands, split
like the text protocol. It keeps where it stopped inside a partly received
array, so a large request arriving in many pieces is parsed once, and it
checks each declared length against Redis's limits before reading the bytes.

When the ``hiredis`` package is installed, whole arrays already in the buffer
are found by its C reader first (0.7 us per pipelined GET against 2.3 us in
Python: bench/RESULTS.md). hiredis is laxer than Redis (it takes any reply
type as an element and does not check the CRLF after a bulk), so its answer
is only taken when the bytes it consumed are exactly the RESP encoding of
what it returned, byte for byte: the one form the Python parser accepts for
a non-empty array of bulk strings. Anything else (inline commands, a frame
still arriving, anything malformed) goes the Python way, which stays the
reference and gives Redis's errors.
"""

from __future__ import annotations

try:
    import hiredis
except ImportError:  # optional: the Python parser does everything without it
    hiredis = None

from kvserver import errors
from kvserver.config import MAX_INLINE_BYTES
from kvserver.errors import CommandError, KvError
from kvserver.protocol import (
    NEED_DATA,
    NO_REPLY,
    BigNumber,
    DoubleText,
    NullArray,
    Push,
    Pushes,
    SetReply,
    Status,
    Verbatim,
    format_double,
)
from kvserver.protocol.text import InvalidRequest, split_args

# Redis's proto-max-bulk-len: no single argument may be larger.
MAX_BULK_BYTES = 512 * 1024 * 1024
# Redis's limit on the element count of one request array.
MAX_MULTIBULK_COUNT = 1024 * 1024
# Redis's limits for a client that has not authenticated yet (CVE-2021-32675):
# AUTH and HELLO AUTH need at most 5 elements and a password of any sane
# length, so a stranger cannot make the server set aside room for a million
# elements, or a 512 MB bulk, with a few bytes of header.
UNAUTHENTICATED_MAX_MULTIBULK = 10
UNAUTHENTICATED_MAX_BULK = 16 * 1024


class RespParser:
    """Split a byte stream into requests (lists of bytes). Sans-I/O."""

    __slots__ = (
        "_buffer",
        "_pos",
        "_discarded",
        "_args",
        "_remaining",
        "_inline",
        "_max_inline",
        "_partial_bytes",
        "_reader",
        "_mirrored",
        "_max_count",
        "_max_bulk",
        "_fast",
    )

    def __init__(self, *, inline: bool = True, max_inline: int = MAX_INLINE_BYTES) -> None:
        self._buffer = bytearray()
        self._pos = 0  # start of unparsed bytes in _buffer
        self._discarded = 0  # bytes dropped from the front of _buffer so far
        self._args: list[bytes] | None = None  # a partly parsed array
        self._remaining = 0  # elements still to read into _args
        self._inline = inline
        self._max_inline = max_inline
        self._partial_bytes = 0  # bytes of a partly parsed array already used
        # hiredis's reader (see the module docstring), and whether it holds
        # exactly the unparsed bytes, buffer[_pos:]. It falls out of step
        # whenever the Python parser consumes bytes, and is refilled only
        # when the next request looks like an array.
        self._reader = None
        self._mirrored = False
        # The limits in force (see set_authenticated), and whether whole
        # arrays may go through hiredis (only under the full limits: it
        # would read a stranger's array before any check).
        self._max_count = MAX_MULTIBULK_COUNT
        self._max_bulk = MAX_BULK_BYTES
        self._fast = hiredis is not None

    def set_authenticated(self, authenticated: bool) -> None:
        """Apply Redis's limits for a client that has not authenticated
        (False) or the full ones (True, the default), from the next header
        parsed on. The network code calls it between requests."""
        self._max_count = MAX_MULTIBULK_COUNT if authenticated else UNAUTHENTICATED_MAX_MULTIBULK
        self._max_bulk = MAX_BULK_BYTES if authenticated else UNAUTHENTICATED_MAX_BULK
        self._fast = authenticated and hiredis is not None
        if not self._fast:
            self._mirrored = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        if self._mirrored:
            self._reader.feed(data)

    @property
    def consumed(self) -> int:
        """Bytes of the stream that make up the requests returned so far.

        While an array is partly parsed this still points at its start, so
        it is always the end of the last whole request: the log replay
        truncates a torn tail there.
        """
        return self._discarded + self._pos - self._partial_bytes

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as requests."""
        return len(self._buffer) - self._pos + self._partial_bytes

    def next_request(self) -> list[bytes] | InvalidRequest | object:
        """The next request, an ``InvalidRequest`` (inline only), or ``NEED_DATA``.

        Raises ``ProtocolError`` when the stream cannot be parsed.
        """
        while True:
            if self._args is None:
                if self._pos >= len(self._buffer):
                    self._compact()
                    return NEED_DATA
                if self._buffer[self._pos] != 0x2A:  # '*'
                    self._mirrored = False
                    request = self._next_inline()
                    if request is NEED_DATA:
                        self._compact()
                    if request is None:
                        continue  # an empty line: nothing to answer
                    return request
                # hiredis sizes an array's list from its header before the
                # elements arrive, so only small ones go its way: a header
                # of "*N\r\n" with one or two digits, every real command but
                # a huge MSET. (A stream of "*1000000" headers once made
                # the socket fuzzer 7x slower.)
                if self._fast and 0 <= self._buffer.find(b"\r\n", self._pos + 2, self._pos + 5):
                    request = self._next_array_fast()
                    if request is not None:
                        return request
                    self._mirrored = False  # the Python parser takes this one
                if not self._start_array():
                    self._compact()
                    return NEED_DATA
                if self._args is None:
                    continue  # an empty array: Redis ignores it
            if not self._read_bulks():
                self._compact()
                return NEED_DATA
            args, self._args = self._args, None
            return args

    def next_requests(self, out: list) -> None:
        """Append to ``out`` every request ``next_request`` would return
        before ``NEED_DATA``, in order; raises as it does, after appending
        the requests before the bad one. The reactor's call: a pipelined
        read's whole arrays go through hiredis in one loop."""
        if self._fast and self._args is None:
            self._take_fast(out)
        append = out.append
        while (request := self.next_request()) is not NEED_DATA:
            append(request)

    # -- internals -----------------------------------------------------------

    def _take_fast(self, out: list, most: int | None = None) -> None:
        """Append to ``out`` the requests at _pos that hiredis finds, up to
        ``most`` (None: no limit), for as long as the next one is a small array found whole
        and exactly canonical (see the module docstring); stops at anything
        else, which the Python parser then takes."""
        buffer = self._buffer
        pos = self._pos
        size = len(buffer)
        if pos >= size or buffer[pos] != 0x2A:  # '*'
            return
        if not self._mirrored:
            self._reader = hiredis.Reader()
            with memoryview(buffer) as view:  # released at once: _buffer must stay resizable
                self._reader.feed(view[pos:])
            self._mirrored = True
        gets = self._reader.gets
        find = buffer.find
        startswith = buffer.startswith
        append = out.append
        taken = 0
        try:
            # A one- or two-digit count (see next_request), then hiredis.
            while pos < size and buffer[pos] == 0x2A and 0 <= find(b"\r\n", pos + 2, pos + 5):
                request = gets()
                if request is False:
                    break  # incomplete: hiredis is still where we are
                if not request or type(request) is not list:
                    self._mirrored = False  # *0 / *-1 / not an array: the Python parser takes it
                    break
                encoded = encode_command(request)  # TypeError if an element is no bulk
                if (
                    len(encoded) > MAX_BULK_BYTES
                    or len(request) > MAX_MULTIBULK_COUNT
                    or not startswith(encoded, pos)
                ):
                    self._mirrored = False
                    break
                pos += len(encoded)
                append(request)
                taken += 1
                if taken == most:
                    break
            else:
                if pos < size:  # an inline command or a big array next: Python's
                    self._mirrored = False
        except Exception:  # hiredis.ProtocolError, TypeError: the Python parser says why
            self._mirrored = False
        finally:
            self._pos = pos

    def _next_array_fast(self) -> list[bytes] | None:
        """The array at _pos through hiredis, or None to let the Python
        parser take it (incomplete, empty, over a limit, or not exactly
        canonical RESP; see the module docstring)."""
        out: list = []
        self._take_fast(out, most=1)
        return out[0] if out else None

    def _start_array(self) -> bool:
        buffer = self._buffer
        end = buffer.find(b"\r\n", self._pos)
        if end < 0:
            if len(buffer) - self._pos > self._max_inline:
                raise errors.protocol_error("too big mbulk count string")
            return False
        count = _length(buffer[self._pos + 1 : end])
        if count is None or count > self._max_count:
            if count is None or count > MAX_MULTIBULK_COUNT:
                raise errors.protocol_error("invalid multibulk length")
            raise errors.ProtocolError(errors.UNAUTHENTICATED_MULTIBULK)
        header = end + 2 - self._pos
        self._pos = end + 2
        if count <= 0:
            return True  # leaves _args None: nothing to run
        self._args = []
        self._remaining = count
        self._partial_bytes = header
        return True

    def _read_bulks(self) -> bool:
        buffer = self._buffer
        args = self._args
        pos = self._pos
        size = len(buffer)
        max_bulk = self._max_bulk
        while self._remaining:
            if pos >= size:
                break
            if buffer[pos] != 0x24:  # '$'
                raise errors.protocol_error(f"expected '$', got '{chr(buffer[pos])}'")
            end = buffer.find(b"\r\n", pos)
            if end < 0:
                if size - pos > self._max_inline:
                    raise errors.protocol_error("too big bulk count string")
                break
            raw = buffer[pos + 1 : end]
            # _length's rule, inlined on this hot path; a bulk length is never
            # negative, so digits only (the 10-digit cap keeps int() cheap).
            if not raw.isdigit() or len(raw) > 10 or (raw[0] == 0x30 and len(raw) > 1):
                raise errors.protocol_error("invalid bulk length")
            length = int(raw)
            if length > max_bulk:
                if length > MAX_BULK_BYTES:
                    raise errors.protocol_error("invalid bulk length")
                raise errors.ProtocolError(errors.UNAUTHENTICATED_BULK)
            data_end = end + 2 + length
            if data_end + 2 > size:
                break  # the bytes have not all arrived; come back later
            if buffer[data_end : data_end + 2] != b"\r\n":
                raise errors.protocol_error("bulk string not terminated by CRLF")
            args.append(bytes(buffer[end + 2 : data_end]))
            pos = data_end + 2
            self._remaining -= 1
        self._partial_bytes += pos - self._pos
        self._pos = pos
        if self._remaining:
            return False
        self._partial_bytes = 0
        return True

    def _next_inline(self) -> list[bytes] | InvalidRequest | object | None:
        if not self._inline:
            got = chr(self._buffer[self._pos])
            raise errors.protocol_error(f"expected '*', got '{got}'")
        buffer = self._buffer
        end = buffer.find(b"\n", self._pos)
        if end < 0:
            # A CR at the end may be the first half of the CRLF that ends a
            # line of exactly max_inline bytes.
            if len(buffer) - self._pos - buffer.endswith(b"\r") > self._max_inline:
                raise errors.ProtocolError(errors.TOO_BIG_INLINE)
            return NEED_DATA  # nothing consumed: wait for the rest of the line
        # The CR of a CRLF is part of the line end, not of the line.
        if end - self._pos - (end > self._pos and buffer[end - 1] == 0x0D) > self._max_inline:
            raise errors.ProtocolError(errors.TOO_BIG_INLINE)
        line = bytes(buffer[self._pos : end])
        self._pos = end + 1
        try:
            args = split_args(line)
        except CommandError as exc:
            return InvalidRequest(exc)
        return args or None

    def _compact(self) -> None:
        # Drop parsed bytes so the buffer holds only what is still needed
        # (the arguments of a partly parsed array are already in _args).
        if self._pos:
            del self._buffer[: self._pos]
            self._discarded += self._pos
            self._pos = 0


def _length(raw: bytearray) -> int | None:
    """``raw`` as Redis's string2ll reads it, or None where it refuses it.

    An optional '-', then at most 19 digits with no leading zero. int() alone
    would also take " 3", "+3", "03" and "1_0", and fails on 5000 digits.
    """
    digits = raw[1:] if raw[:1] == b"-" else raw
    if not digits.isdigit() or len(digits) > 19 or (digits[0] == 0x30 and len(raw) > 1):
        return None
    return int(raw)


# --- encoding ----------------------------------------------------------------


def encode_command(args: list[bytes]) -> bytes:
    """A request as a RESP array of bulk strings (what the log stores)."""
    # One %-format per record, its template cached by argument count: every
    # logged write comes through here with the write lock held (0.45 us for
    # a SET record against 0.59 us building and joining a list).
    count = len(args)
    # Two to four arguments (GET, SET, HSET, the parser's check of each such
    # request): unpacked into the format, no list (0.45 -> 0.31 us for 3).
    if count == 4:
        first, second, third, fourth = args
        return _FOUR_ARGUMENTS % (len(first), first, len(second), second, len(third), third, len(fourth), fourth)
    if count == 3:
        first, second, third = args
        return _THREE_ARGUMENTS % (len(first), first, len(second), second, len(third), third)
    if count == 2:
        first, second = args
        return _TWO_ARGUMENTS % (len(first), first, len(second), second)
    template = _COMMAND_TEMPLATES.get(count)
    if template is None:
        template = b"*%d\r\n" % count + b"$%d\r\n%s\r\n" * count
        if count <= _CACHED_TEMPLATES:
            _COMMAND_TEMPLATES[count] = template
    fields = []
    for arg in args:
        fields.append(len(arg))
        fields.append(arg)
    return template % tuple(fields)


_COMMAND_TEMPLATES: dict[int, bytes] = {}  # argument count -> encode_command's format
_TWO_ARGUMENTS = b"*2\r\n" + b"$%d\r\n%s\r\n" * 2
_THREE_ARGUMENTS = b"*3\r\n" + b"$%d\r\n%s\r\n" * 3
_FOUR_ARGUMENTS = b"*4\r\n" + b"$%d\r\n%s\r\n" * 4
# Templates up to this many arguments are kept (~40 KB in all): an MSET of
# 10 pairs (21) rebuilt its format twice per request, in the parser's check
# and in the log, before this was 16. More than that is rare: built each time.
_CACHED_TEMPLATES = 64


BULK_ARRAY_MIN = 4  # shorter arrays gain nothing from _bulk_array
_BULK_ARRAY_TEMPLATES: dict[int, bytes] = {}  # element count -> _bulk_array's format
_CACHED_BULK_ARRAYS = 256  # templates up to this count are kept (~300 KB in all)
_JUST_BYTES = {bytes}


def _bulk_array(items: list, count: int) -> bytes:
    """``items`` (bytes-like) as a RESP array of bulk strings; TypeError if
    one is not bytes-like."""
    template = _BULK_ARRAY_TEMPLATES.get(count)
    if template is None:
        template = b"*%d\r\n" % count + b"$%d\r\n%s\r\n" * count
        if count <= _CACHED_BULK_ARRAYS:
            _BULK_ARRAY_TEMPLATES[count] = template
    fields: list = [None] * (2 * count)
    fields[0::2] = map(len, items)
    fields[1::2] = items
    return template % tuple(fields)


def encode_reply(reply: object, resp: int = 2) -> bytes:
    """One reply value in RESP2, or RESP3 when ``resp`` is 3 (after HELLO 3)."""
    kind = type(reply)
    if kind is bytes:
        return b"$%d\r\n%s\r\n" % (len(reply), reply)
    if kind is Status:
        return b"+%s\r\n" % reply.encode()
    if kind is int:
        return b":%d\r\n" % reply
    if reply is None:
        return b"_\r\n" if resp == 3 else b"$-1\r\n"
    if kind is list:
        count = len(reply)
        # An array of bulk strings (LRANGE, MGET, HGETALL...): one %-format
        # of all of it, 2.5x quicker than an encode_reply per element (100
        # elements: 20 -> 8 us). In RESP2 every bytes-like element is a bulk
        # string, and anything else makes the format raise TypeError; RESP3
        # encodes bytes' subclasses otherwise, so there they are looked for.
        if count >= BULK_ARRAY_MIN and (resp == 2 or set(map(type, reply)) == _JUST_BYTES):
            try:
                return _bulk_array(reply, count)
            except TypeError:  # not all bulk strings: element by element
                pass
        return b"*%d\r\n" % count + b"".join([encode_reply(item, resp) for item in reply])
    if kind is float:
        text = format_double(reply)
        return b",%s\r\n" % text if resp == 3 else b"$%d\r\n%s\r\n" % (len(text), text)
    if kind is dict:
        head = b"%%%d\r\n" % len(reply) if resp == 3 else b"*%d\r\n" % (2 * len(reply))
        return head + b"".join(
            [encode_reply(k, resp) + encode_reply(v, resp) for k, v in reply.items()]
        )
    if kind is SetReply:
        head = b"~%d\r\n" if resp == 3 else b"*%d\r\n"
        return head % len(reply) + b"".join([encode_reply(item, resp) for item in reply])
    if kind is bool:  # RESP3 booleans; RESP2 has none and Redis sends 1/0
        return (b"#t\r\n" if reply else b"#f\r\n") if resp == 3 else b":%d\r\n" % reply
    if kind is Verbatim:
        if resp == 3:
            return b"=%d\r\ntxt:%s\r\n" % (len(reply) + 4, reply)
        return b"$%d\r\n%s\r\n" % (len(reply), reply)
    if kind is BigNumber:
        return b"(%s\r\n" % reply if resp == 3 else b"$%d\r\n%s\r\n" % (len(reply), reply)
    if kind is DoubleText:
        return b",%s\r\n" % reply if resp == 3 else b"$%d\r\n%s\r\n" % (len(reply), reply)
    if isinstance(reply, KvError):
        message = reply.message.replace("\r", " ").replace("\n", " ")
        return b"-%s\r\n" % message.encode()
    if reply is NullArray:
        return b"_\r\n" if resp == 3 else b"*-1\r\n"
    if reply is NO_REPLY:
        return b""
    if kind is Push:
        head = b">%d\r\n" if resp == 3 else b"*%d\r\n"
        return head % len(reply) + b"".join([encode_reply(item, resp) for item in reply])
    if kind is Pushes:
        return b"".join([encode_reply(item, resp) for item in reply])
    raise TypeError(f"no RESP encoding for reply {reply!r}")
