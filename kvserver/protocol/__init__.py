"""Wire formats, with no I/O in them.

Each parser is fed bytes (``feed(data)``) and hands out requests
(``next_request()``: a list of byte-string arguments, or ``NEED_DATA`` until a
whole request has arrived). Each encoder turns a reply value into bytes. The
network code and the log replay call these; nothing here touches a socket or
a file, so every rule can be tested byte by byte.

Reply values are plain Python objects, the same for every protocol:

=================  ======================  ==================  =================
value              RESP2                   RESP3               text line
=================  ======================  ==================  =================
``Status("OK")``   ``+OK``                 ``+OK``             ``OK``
``bytes``          bulk string             bulk string         as is, or quoted
``int``            ``:N``                  ``:N``              ``N``
``None``           null bulk ``$-1``       null ``_``          ``nil``
``float``          bulk string (%.17g)     double ``,``        ``%.17g``
``list``           array                   array               items, spaced
``SetReply``       array                   set ``~``           items, spaced
``Verbatim``       bulk string             verbatim ``=txt:``  as is, or quoted
``dict``           flat array k, v, ...    map ``%``           k v ..., spaced
``NullArray``      null array ``*-1``      null ``_``          ``nil``
``NO_REPLY``       nothing                 nothing             nothing
``BigNumber``      bulk string             big number ``(``   as is
``Push``           array                   push ``>``          items, spaced
``Pushes``         each Push in turn       each Push in turn   one line each
``DoubleText``     bulk string             double ``,``        as is
``CommandError``   ``-ERR ...``            ``-ERR ...``        ``ERR ...``
=================  ======================  ==================  =================
"""

from __future__ import annotations


class Status(str):
    """A simple-string reply (``+OK``), as opposed to a bulk string."""

    __slots__ = ()


class SetReply(list):
    """An array that RESP3 sends as a set (``~``), as Redis does for SMEMBERS."""

    __slots__ = ()


class Verbatim(bytes):
    """Text meant for people (INFO, CLIENT LIST): RESP3 sends it as a
    verbatim string of format ``txt``, as Redis does; RESP2 as a bulk string."""

    __slots__ = ()


class BigNumber(bytes):
    """An integer's digits beyond 64 bits, as a script returns it
    (``{big_number='123'}``): RESP3 sends a big number ``(``, RESP2 a bulk string."""

    __slots__ = ()


class Push(list):
    """Data the server sends out of band (pub/sub messages and
    confirmations): RESP3 sends a push frame (``>``), RESP2 an array."""

    __slots__ = ()


class Pushes(list):
    """Several pushes as one command's reply (SUBSCRIBE a b: a
    confirmation per channel), sent one after the other, with no header."""

    __slots__ = ()


class DoubleText(bytes):
    """A double already written out (GEOPOS's coordinates, which Redis
    prints as a long double, %.17Lf trimmed): RESP3 sends it as a double
    ``,``, RESP2 as a bulk string."""

    __slots__ = ()


def format_double(value: float) -> bytes:
    """A double as Redis 7.0's addReplyDouble prints it (%.17g, inf, nan)."""
    if value != value:
        return b"nan"
    if value in (float("inf"), float("-inf")):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % value


class _NullArray:
    """The null array: EXEC's reply when a watched key changed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NullArray"


NullArray = _NullArray()


class _NoReply:
    """Nothing at all is sent (SHUTDOWN: the connection just closes)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_REPLY"


NO_REPLY = _NoReply()

OK = Status("OK")
PONG = Status("PONG")


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


# Returned by next_request() when the buffer holds no complete request yet.
NEED_DATA = _NeedData()
